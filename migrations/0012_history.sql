-- Sales evicted from the in-memory replica once causally stable (store/history.rs): the body is
-- the record (a format byte, then postcard), `eviction` the number of the eviction that wrote
-- it. Read for returns, the customer card and rebuilding the replica; never the log's source.
CREATE TABLE IF NOT EXISTS sale_history (
    id       TEXT PRIMARY KEY,
    store    TEXT NOT NULL,
    customer TEXT,
    at_ms    INTEGER NOT NULL,
    eviction INTEGER NOT NULL,
    body     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS sale_history_customer ON sale_history (customer)
    WHERE customer IS NOT NULL;
CREATE INDEX IF NOT EXISTS sale_history_eviction ON sale_history (eviction);
