-- The replica as of one point of the log (store/snapshot.rs): the node starts from it plus the
-- ops logged after `through` (a rowid of `ops`) instead of replaying the whole log. A cache of
-- the log, never its source: one row at most, rewritten in the writer's transactions.
CREATE TABLE IF NOT EXISTS snapshot (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    format      INTEGER NOT NULL,
    through     INTEGER NOT NULL,
    written_ms  INTEGER NOT NULL,
    body        BLOB NOT NULL
);
