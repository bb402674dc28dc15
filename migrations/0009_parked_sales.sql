-- Parked till tickets (DESIGN.md §18): a ticket put on hold while serving someone else, kept
-- on disk so it survives a restart, removed when resumed or discarded. Store-local: a parked
-- ticket is not a sale, so nothing of it is an op or leaves the store.
CREATE TABLE IF NOT EXISTS parked_sales (
    id         TEXT PRIMARY KEY,
    staff      TEXT NOT NULL,
    label      TEXT NOT NULL,
    ticket     TEXT NOT NULL,
    parked_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS parked_sales_time ON parked_sales (parked_ms);
