-- The online shop's Idempotency-Keys of order creation, mirrored from HQ's SQLite side table
-- in the same PostgreSQL transaction as the order's op, so a key survives a lost HQ file
-- (and, once several HQ processes share the log, holds across them).
CREATE TABLE hq_idempotency (
    key          text    PRIMARY KEY,
    request_hash text    NOT NULL,
    status       integer NOT NULL,
    response     text    NOT NULL,
    order_id     text    NOT NULL,
    created_ms   bigint  NOT NULL
);
