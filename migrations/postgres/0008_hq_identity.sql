-- What the syncing HQ processes on one PostgreSQL must agree on (src/store/pg/identity.rs).
-- The public half of the HQ signing key, recorded by the first process that syncs: stores
-- accept down-batches of one key only, so a process with another key refuses to start.
CREATE TABLE hq_signing_key (
    only_one    boolean PRIMARY KEY DEFAULT true CHECK (only_one),
    public_key  text NOT NULL,
    recorded_by text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
-- The process renewing a members row (random per process start): a second live process with
-- the same [mqtt] client_id finds the row renewed by another instance and refuses to start.
ALTER TABLE hq_member ADD COLUMN instance text NOT NULL DEFAULT '';
