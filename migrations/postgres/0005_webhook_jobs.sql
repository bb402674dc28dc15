-- The shop's webhook jobs, shared by every HQ process (docs/ARCHITECTURE.md "HQ at chain
-- scale"). A job is inserted in the same transaction as the op that calls for it, once per
-- dedup key; any process sends it, taking one due row at a time with FOR UPDATE SKIP LOCKED
-- and holding the lock while it posts, so a process killed mid-send releases the row to
-- another (at least once). The body is fixed at queueing: every attempt sends the same bytes.
CREATE TABLE hq_webhook_jobs (
    id              bigserial   PRIMARY KEY,
    event_id        text        NOT NULL UNIQUE,
    type            text        NOT NULL,
    dedup           text        NOT NULL UNIQUE,
    body            text        NOT NULL,
    created_ms      bigint      NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz,
    delivered_by    text
);
CREATE INDEX hq_webhook_jobs_due ON hq_webhook_jobs (next_attempt_at, id)
    WHERE delivered_at IS NULL;
