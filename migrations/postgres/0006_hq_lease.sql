-- Leases of the syncing role (docs/ARCHITECTURE.md "HQ at chain scale"): each store is served
-- by the one process holding its lease; `epoch` rises with every take, so a store follows the
-- newest holder's down stream only. Times are PostgreSQL's clock, never a process's.
CREATE TABLE hq_member (
    holder text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE TABLE hq_lease (
    store text PRIMARY KEY,
    holder text NOT NULL,
    epoch bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
