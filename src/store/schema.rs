//! Opening a database file safely and bringing its schema up to date.
//!
//! Before anything is written, the file is checked: it must be SQLite, pass `quick_check`,
//! and not come from a newer binary. A file that fails is left byte-for-byte untouched.
//! Migrations are the numbered files in `migrations/`, applied in order, each recorded in
//! `schema_version` in the same transaction as its statements.

use super::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

/// Every migration this binary knows, in order. Add new files at the end.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "core", include_str!("../../migrations/0001_core.sql")),
    (
        2,
        "print_queue",
        include_str!("../../migrations/0002_print_queue.sql"),
    ),
    (3, "sync", include_str!("../../migrations/0003_sync.sql")),
    (4, "hq", include_str!("../../migrations/0004_hq.sql")),
    (
        5,
        "terminal",
        include_str!("../../migrations/0005_terminal.sql"),
    ),
];

/// Highest schema version this binary understands.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Refuse a file that is not SQLite, is corrupt, or has a newer schema, without writing to it.
pub fn check_existing(path: &Path) -> Result<(), StoreError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // a new file
    };
    if meta.len() == 0 {
        return Ok(());
    }
    let mut header = [0u8; 16];
    let read =
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header));
    if read.is_err() || &header != SQLITE_HEADER {
        return Err(StoreError::NotSqlite(path.display().to_string()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Corrupt(path.display().to_string(), e.to_string()))?;
    let verdict: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| StoreError::Corrupt(path.display().to_string(), e.to_string()))?;
    if verdict != "ok" {
        return Err(StoreError::Corrupt(path.display().to_string(), verdict));
    }
    let version = current_version(&conn)?;
    if version > latest_version() {
        return Err(StoreError::NewerSchema {
            found: version,
            supported: latest_version(),
        });
    }
    Ok(())
}

/// Schema version recorded in the file (0 for a new database).
pub fn current_version(conn: &Connection) -> Result<u32, StoreError> {
    let has_table: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
        [],
        |r| r.get(0),
    )?;
    if !has_table {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?)
}

/// Set only by `storenode soak --unsafe-synchronous-off`, the deliberately broken mode that
/// proves the crash-loop test catches lost writes. Never set it anywhere else.
pub const UNSAFE_SYNCHRONOUS_OFF_ENV: &str = "STORENODE_UNSAFE_SYNCHRONOUS_OFF";

/// Pragmas of the writer connection: WAL, and a full fsync on every commit.
pub fn configure_writer(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    if std::env::var_os(UNSAFE_SYNCHRONOUS_OFF_ENV).is_some() {
        tracing::warn!("synchronous=OFF (crash-test self-check): acknowledged ops can be lost");
        conn.pragma_update(None, "synchronous", "OFF")?;
    } else {
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    throughput_pragmas(conn)?;
    Ok(())
}

/// Pages the WAL may grow to before a commit folds it into the database file (SQLite's
/// default is 1,000). A stock row is rewritten on most ops, so its page lands in the WAL many
/// times between checkpoints; a longer WAL checkpoints each page once for many commits.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 8_192;
/// Page cache of the writer connection, KiB (SQLite's default is 2,000): enough for the hot
/// pages of a 100k-SKU stock table and its index, so upserts do not re-read them.
pub const WRITER_CACHE_KIB: u32 = 8_192;

/// Throughput settings of the writer, shared with the raw baseline of `bench apply` so both
/// run with the same pragmas. Durability is unchanged: WAL with `synchronous=FULL` is set by
/// the caller.
pub fn throughput_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    conn.pragma_update(None, "cache_size", -i64::from(WRITER_CACHE_KIB))?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Apply every migration newer than the file's version. Returns the versions applied.
pub fn migrate(conn: &mut Connection, now_ms: u64) -> Result<Vec<u32>, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
    )?;
    let current = current_version(conn)?;
    if current > latest_version() {
        return Err(StoreError::NewerSchema {
            found: current,
            supported: latest_version(),
        });
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Migration(*version, e.to_string()))?;
        tx.execute(
            "INSERT INTO schema_version (version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
            rusqlite::params![version, name, now_ms as i64],
        )?;
        tx.commit()?;
        applied.push(*version);
    }
    Ok(applied)
}
