-- HQ side tables: idempotency keys of order creation and the ready-webhook queue.
-- Both are written in the same transaction as the ops they belong to.

-- One row per Idempotency-Key: the hash of the request body and the first answer given.
CREATE TABLE hq_idempotency (
    key          TEXT PRIMARY KEY,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT    NOT NULL,
    order_id     TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL
);

-- One row per order that became ready: delivered once to the shop's webhook.
CREATE TABLE hq_webhook_jobs (
    order_id        TEXT PRIMARY KEY,
    store           TEXT    NOT NULL,
    pickup_code     TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    delivered_ms    INTEGER
);
CREATE INDEX hq_webhook_jobs_due ON hq_webhook_jobs (delivered_ms, next_attempt_ms);
