-- Sync metadata (src/sync). Both roles get every table; each uses its own.

-- Store: small counters, e.g. 'hq_acked_seq' (own ops HQ acknowledged) and 'down_idx'
-- (last entry of HQ's down-log applied here).
CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

-- HQ: per store, the ops it needs, in the order HQ decided so; entries point into the op log.
CREATE TABLE downlog (
    store TEXT NOT NULL,
    idx   INTEGER NOT NULL,
    actor TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (store, idx)
);

-- HQ: highest seq per actor whose ops have been routed to down-logs.
CREATE TABLE sync_routed (
    actor TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL
);

-- HQ: customers each store holds in scope (their past ops were appended on entry).
CREATE TABLE sync_scope (
    store    TEXT NOT NULL,
    customer TEXT NOT NULL,
    PRIMARY KEY (store, customer)
);

-- HQ: cart, profile, consent and erasure ops per customer, for stores the customer enters.
CREATE TABLE sync_customer_ops (
    customer TEXT NOT NULL,
    actor    TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (customer, actor, seq)
);

-- HQ: stores whose down-logs exist; a store added to the config later is backfilled once.
CREATE TABLE sync_stores (
    store TEXT PRIMARY KEY
);
