-- HQ's shared op log on PostgreSQL (`[storage] url`): the source of truth every HQ process
-- commits to before its local SQLite file, and restores that file from at start.
-- `(actor, seq)` is the primary key: an op is stored once, whichever process sees it first.
-- `xid` and `gseq` order the log for tailing: a row is read only once its transaction is
-- older than every transaction still running (`pg_snapshot_xmin`), so none is skipped.
CREATE TABLE ops (
    actor       text    NOT NULL,
    seq         bigint  NOT NULL CHECK (seq > 0),
    hlc_wall    bigint  NOT NULL,
    hlc_counter bigint  NOT NULL,
    kind        text    NOT NULL,
    body        bytea   NOT NULL,
    xid         xid8    NOT NULL DEFAULT pg_current_xact_id(),
    gseq        bigserial NOT NULL,
    PRIMARY KEY (actor, seq)
);
CREATE UNIQUE INDEX ops_gseq ON ops (gseq);
CREATE INDEX ops_tail ON ops (xid, gseq);
-- Only the ops that can carry personal data, for the rewrite an erasure does.
CREATE INDEX ops_personal ON ops (kind) WHERE kind IN ('customer_update', 'consent_set');
