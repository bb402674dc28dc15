-- Each store's link as the HQ process that syncs it sees it, so every HQ process's
-- `/api/v1/stores` and `/api/v1/availability` answer the same (docs/ARCHITECTURE.md "HQ at
-- chain scale"). One row per store, written by whichever process serves that store
-- (`holder`) and refreshed every second while it does; a row not refreshed for a few seconds
-- reads as offline (nobody hears the store). Another process takes the row over only with
-- fresher news of the store (a later `last_seen_ms`) or once the holder has gone quiet.
CREATE TABLE hq_store_link (
    store        text        PRIMARY KEY,
    online       boolean     NOT NULL,
    last_seen_ms bigint,
    outbox       bigint      NOT NULL,
    lag_ops      bigint      NOT NULL,
    holder       text        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
