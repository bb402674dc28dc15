-- Finished orders evicted from the in-memory replica once causally stable
-- (store/order_history.rs): the body is the record (a format byte, then postcard), `eviction`
-- the number of the eviction that wrote it (one count with sale_history). Read for the pickup
-- counter, the order API, the customer card, webhooks and rebuilding the replica; never the
-- log's source.
CREATE TABLE IF NOT EXISTS order_history (
    id        TEXT PRIMARY KEY,
    store     TEXT NOT NULL,
    customer  TEXT NOT NULL,
    placed_ms INTEGER NOT NULL,
    code      TEXT NOT NULL,
    eviction  INTEGER NOT NULL,
    body      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS order_history_customer ON order_history (customer);
CREATE INDEX IF NOT EXISTS order_history_code ON order_history (store, code);
CREATE INDEX IF NOT EXISTS order_history_eviction ON order_history (eviction);
