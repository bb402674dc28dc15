-- Core schema: the op log (source of truth) and the materialised state it produces.
-- Materialised tables are rewritten in the same transaction as the op that changes them.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Every operation this replica holds, local and remote, in the order it was applied.
CREATE TABLE ops (
    actor       TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    hlc_wall    INTEGER NOT NULL,
    hlc_counter INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    PRIMARY KEY (actor, seq)
);

CREATE TABLE catalog (
    sku         TEXT PRIMARY KEY,
    ean         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    price_cents INTEGER NOT NULL,
    vat_bp      INTEGER NOT NULL
);
CREATE INDEX catalog_ean ON catalog (ean);

-- Escrow counter per (store, sku): the total and the two replicas' rights.
CREATE TABLE stock (
    store        TEXT    NOT NULL,
    sku          TEXT    NOT NULL,
    available    INTEGER NOT NULL,
    store_rights INTEGER NOT NULL,
    hq_rights    INTEGER NOT NULL,
    reserved     INTEGER NOT NULL,
    PRIMARY KEY (store, sku)
);

CREATE TABLE orders (
    id           TEXT PRIMARY KEY,
    store        TEXT    NOT NULL,
    customer     TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    pickup_code  TEXT    NOT NULL,
    placed_at_ms INTEGER NOT NULL,
    conflict     INTEGER NOT NULL,
    lines_json   TEXT    NOT NULL
);
CREATE INDEX orders_store_status ON orders (store, status);

CREATE TABLE sales (
    id          TEXT PRIMARY KEY,
    store       TEXT    NOT NULL,
    total_cents INTEGER NOT NULL,
    tender      TEXT    NOT NULL,
    customer    TEXT,
    at_ms       INTEGER NOT NULL,
    lines_json  TEXT    NOT NULL
);

CREATE TABLE customers (
    id           TEXT PRIMARY KEY,
    name         TEXT,
    email        TEXT,
    phone        TEXT,
    loyalty_card TEXT,
    erased       INTEGER NOT NULL
);

CREATE TABLE cart_lines (
    customer TEXT    NOT NULL,
    sku      TEXT    NOT NULL,
    qty      INTEGER NOT NULL,
    PRIMARY KEY (customer, sku)
);
