-- Durable print queue: a receipt is never lost because the printer was off.
-- A job is due when printed_at_ms IS NULL and next_attempt_at_ms <= now; the worker marks it
-- printed only after the printer accepted every byte.
CREATE TABLE IF NOT EXISTS print_job (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    printer            TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    payload            BLOB    NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    last_error         TEXT,
    printed_at_ms      INTEGER,
    reprint_of         INTEGER REFERENCES print_job(id)
);

CREATE INDEX IF NOT EXISTS print_job_due
    ON print_job (printer, next_attempt_at_ms)
    WHERE printed_at_ms IS NULL;
