-- HQ answers stores' RightsReturnRequested ops from its log, above a mark kept in sync_state
-- (src/sync/returns.rs). Requests already in a log when this migration runs were answered by
-- the older binary at the time: start the mark after them so none is answered twice.
INSERT INTO sync_state (key, value)
SELECT 'hq_returns_rowid', coalesce(max(rowid), 0) FROM ops WHERE true
ON CONFLICT(key) DO NOTHING;
