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
    (
        6,
        "hq_returns",
        include_str!("../../migrations/0006_hq_returns.sql"),
    ),
    (
        7,
        "customers",
        include_str!("../../migrations/0007_customers.sql"),
    ),
    (
        8,
        "fiscal",
        include_str!("../../migrations/0008_fiscal.sql"),
    ),
    (
        9,
        "parked_sales",
        include_str!("../../migrations/0009_parked_sales.sql"),
    ),
    (
        10,
        "snapshot",
        include_str!("../../migrations/0010_snapshot.sql"),
    ),
    (
        11,
        "till_sessions",
        include_str!("../../migrations/0011_till_sessions.sql"),
    ),
    (
        12,
        "history",
        include_str!("../../migrations/0012_history.sql"),
    ),
    (
        13,
        "hq_rights_answers",
        include_str!("../../migrations/0013_hq_rights_answers.sql"),
    ),
    (
        14,
        "order_history",
        include_str!("../../migrations/0014_order_history.sql"),
    ),
    (
        15,
        "drop_materialised",
        include_str!("../../migrations/0015_drop_materialised.sql"),
    ),
];

/// Highest schema version this binary understands.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Refuse a file that is not SQLite, is corrupt, or has a newer schema, without writing to it.
/// The one write allowed first is SQLite's own rollback of a hot journal (see
/// `roll_back_hot_journal`), which restores the last committed state.
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
    // A full disk or an I/O error is not damage: `checking` tells them apart, so an
    // operator is sent to free space, not to restore a backup.
    let (conn, verdict) = match quick_check(path) {
        Err(e) if is_hot_journal(&e) => {
            roll_back_hot_journal(path).map_err(|e| StoreError::checking(path, e))?;
            quick_check(path)
        }
        checked => checked,
    }
    .map_err(|e| StoreError::checking(path, e))?;
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

/// A read-only connection on `path` and its `quick_check` verdict.
fn quick_check(path: &Path) -> rusqlite::Result<(Connection, String)> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let verdict = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    Ok((conn, verdict))
}

/// SQLite's answer to a read-only connection that finds a hot journal: a transaction in
/// rollback-journal mode was cut short by a crash or power cut (for example while a new
/// database switches itself to WAL: the header is written and fsynced, the journal not yet
/// deleted). That is not damage, but only a writable connection may roll it back.
fn is_hot_journal(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
}

/// Let SQLite roll back a hot journal, as any writable connection does on its first read;
/// the file then holds its last committed state and the journal is gone.
fn roll_back_hot_journal(path: &Path) -> rusqlite::Result<()> {
    tracing::warn!(path = %path.display(), "rolling back a transaction cut short by a crash");
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
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

/// How hard each commit is pushed to the disk: SQLite's `synchronous` mode of the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync the WAL on every commit: an acknowledged op survives a power cut. The only mode
    /// a node runs in.
    #[default]
    Full,
    /// fsync the WAL at checkpoints only: a process crash loses nothing, a power cut may lose
    /// the last commits. Only for HQ's SQLite cache when PostgreSQL holds the durable copy
    /// (`store::pg`): an op is acknowledged once PostgreSQL committed it, and a cache behind
    /// the log catches up from it at open.
    Normal,
    /// No fsync at all: a power cut loses acknowledged ops. Only for `storenode soak
    /// --unsafe-synchronous-off`, the deliberately broken mode proving the crash checker can
    /// fail.
    UnsafeOff,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
            Synchronous::UnsafeOff => "OFF",
        }
    }
}

/// Durability settings of a node's writer, given to `Node::open_with` (the library reads no
/// environment variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    pub synchronous: Synchronous,
    /// How long the writer waits for a lock another connection holds before it reports the
    /// group as not written.
    pub busy_timeout_ms: u64,
}

impl Default for Durability {
    fn default() -> Self {
        Durability {
            synchronous: Synchronous::Full,
            busy_timeout_ms: 5_000,
        }
    }
}

/// Pragmas of the writer connection: WAL, and (by default) a full fsync on every commit.
pub fn configure_writer(conn: &Connection, durability: Durability) -> Result<(), StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    if durability.synchronous == Synchronous::UnsafeOff {
        tracing::warn!(
            "synchronous={} (crash-test self-check): acknowledged ops can be lost",
            durability.synchronous.pragma()
        );
    }
    conn.pragma_update(None, "synchronous", durability.synchronous.pragma())?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Freed bytes are zeroed, so a rewritten (erased) op or row leaves nothing behind in
    // free pages or cells (DESIGN.md section 14).
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.busy_timeout(std::time::Duration::from_millis(durability.busy_timeout_ms))?;
    throughput_pragmas(conn)?;
    Ok(())
}

/// Pages the WAL may grow to before a commit folds it into the database file (SQLite's
/// default is 1,000). Every commit rewrites the op log's last pages and its key index's hot
/// pages, so each lands in the WAL many times between checkpoints; a longer WAL checkpoints
/// each page once for many commits.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 8_192;
/// Page cache of the writer connection, KiB (SQLite's default is 2,000): enough for the hot
/// pages of the op log's index and the history tables, so inserts do not re-read them.
pub const WRITER_CACHE_KIB: u32 = 8_192;
/// Prepared statements the writer keeps (rusqlite's default is 16): the writer runs some 35
/// distinct statements (ops, savepoints, fiscal records, history, snapshot, HQ's routing), and
/// one evicted from the cache is parsed again on its next use.
pub const WRITER_STATEMENTS: usize = 64;

/// Throughput settings of the writer, shared with the raw baseline of `bench apply` so both
/// run with the same pragmas. Durability is unchanged: WAL with `synchronous=FULL` is set by
/// the caller.
pub fn throughput_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    conn.pragma_update(None, "cache_size", -i64::from(WRITER_CACHE_KIB))?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(WRITER_STATEMENTS);
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
    let recorded: Vec<u32> = {
        let mut stmt = conn.prepare("SELECT version FROM schema_version ORDER BY version")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    if let Some(missing) = missing_below(&recorded, current) {
        return Err(StoreError::Migration(
            missing,
            format!(
                "the file records schema versions {recorded:?} but not {missing}: it was \
                 migrated by a build with a different migration list; refusing to guess"
            ),
        ));
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

/// A migration this binary knows, numbered below the file's version, that the file never
/// applied. Applying it late could run it after migrations that assumed it: refuse instead.
fn missing_below(recorded: &[u32], current: u32) -> Option<u32> {
    MIGRATIONS
        .iter()
        .map(|m| m.0)
        .filter(|v| *v < current)
        .find(|v| !recorded.contains(v))
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_one_by_one_from_one() {
        for (i, (version, name, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, i + 1, "migration {name} is out of order");
            assert!(!sql.trim().is_empty(), "migration {name} is empty");
        }
    }

    #[test]
    fn a_file_missing_a_lower_migration_is_refused_not_patched() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("s.db")).unwrap();
        assert_eq!(migrate(&mut conn, 1).unwrap().len(), MIGRATIONS.len());
        assert!(migrate(&mut conn, 2).unwrap().is_empty(), "nothing twice");
        conn.execute("DELETE FROM schema_version WHERE version = 2", [])
            .unwrap();
        let err = migrate(&mut conn, 3).unwrap_err().to_string();
        assert!(err.contains("not 2"), "{err}");
        assert_eq!(missing_below(&[1, 2, 3], 3), None);
        assert_eq!(missing_below(&[1, 3], 3), Some(2));
    }

    #[test]
    fn a_file_from_before_0015_loses_its_materialised_tables_and_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "secure_delete", "ON").unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (
                version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)",
        )
        .unwrap();
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 < 15) {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at_ms) VALUES (?1, ?2, 0)",
                rusqlite::params![version, name],
            )
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO customers (id, name, email, phone, loyalty_card, erased)
               VALUES ('C-1', 'Zenobia Quintanilla', 'zq@example.es', NULL, NULL, 0);
             INSERT INTO stock VALUES ('s1', 'SKU-1', 4, 4, 0, 0);
             INSERT INTO meta (key, value) VALUES ('derived_through', 7);",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn, 1).unwrap(), vec![15]);
        let left: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM sqlite_master WHERE name IN
                   ('catalog', 'stock', 'orders', 'sales', 'customers', 'cart_lines'))
                 + (SELECT count(*) FROM meta WHERE key = 'derived_through')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "tables or the mark left behind");
        drop(conn);
        let bytes = std::fs::read(&path).unwrap();
        let name = b"Zenobia Quintanilla";
        assert!(
            !bytes.windows(name.len()).any(|w| w == name),
            "the dropped customers row is still in the file"
        );
    }
}

#[cfg(test)]
mod io_tests {
    use super::super::IoKind;
    use super::*;
    use rusqlite::ffi;

    #[test]
    fn a_transaction_cut_short_leaves_a_hot_journal_that_is_rolled_back_not_called_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let conn = Connection::open(&live).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (1);
             BEGIN; INSERT INTO t VALUES (2);",
        )
        .unwrap();
        // The files as a crash in that transaction's commit leaves them: SQLite has written
        // the journal's magic and record count (and fsynced it) before touching the database.
        let crashed = dir.path().join("crashed.db");
        std::fs::copy(&live, &crashed).unwrap();
        let mut journal = std::fs::read(dir.path().join("live.db-journal")).unwrap();
        journal[..8].copy_from_slice(&[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
        journal[8..12].copy_from_slice(&1u32.to_be_bytes());
        std::fs::write(dir.path().join("crashed.db-journal"), journal).unwrap();
        let e = quick_check(&crashed).expect_err("a hot journal");
        assert!(is_hot_journal(&e), "{e:?}");
        check_existing(&crashed).unwrap();
        assert!(!dir.path().join("crashed.db-journal").exists());
        let rows: i64 = Connection::open(&crashed)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1, "only the committed row is left");
    }

    fn failure(code: std::os::raw::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    #[test]
    fn a_full_disk_and_io_errors_are_disk_failures_not_corruption() {
        let path = Path::new("/data/store.db");
        let full = StoreError::checking(path, failure(ffi::SQLITE_FULL));
        assert!(
            matches!(
                full,
                StoreError::Io {
                    kind: IoKind::DiskFull,
                    ..
                }
            ),
            "{full:?}"
        );
        let text = full.to_string();
        assert!(text.starts_with("disk full on /data/store.db"), "{text}");
        assert!(text.contains("not database damage"), "{text}");
        assert!(!text.contains("corrupt"), "{text}");
        // Extended I/O codes (a failed write, fsync, shm mapping) are I/O errors too.
        for code in [
            ffi::SQLITE_IOERR,
            ffi::SQLITE_IOERR_WRITE,
            ffi::SQLITE_IOERR_FSYNC,
            ffi::SQLITE_IOERR_SHMMAP,
        ] {
            let e = StoreError::checking(path, failure(code));
            assert!(
                matches!(
                    e,
                    StoreError::Io {
                        kind: IoKind::Io,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(
                e.to_string().starts_with("I/O error on /data/store.db"),
                "{e}"
            );
        }
        let cant = StoreError::checking(path, failure(ffi::SQLITE_CANTOPEN));
        assert!(matches!(
            cant,
            StoreError::Io {
                kind: IoKind::CannotOpen,
                ..
            }
        ));
    }

    #[test]
    fn damage_is_still_reported_as_corrupt() {
        let path = Path::new("/data/store.db");
        for code in [ffi::SQLITE_CORRUPT, ffi::SQLITE_NOTADB] {
            let e = StoreError::checking(path, failure(code));
            assert!(matches!(e, StoreError::Corrupt(..)), "{e:?}");
            assert!(e.to_string().contains("is corrupt"), "{e}");
        }
    }

    #[test]
    fn sqlite_errors_met_while_writing_keep_the_same_distinction() {
        let e: StoreError = failure(ffi::SQLITE_FULL).into();
        assert!(
            e.to_string().starts_with("disk full on the database"),
            "{e}"
        );
        let e: StoreError = failure(ffi::SQLITE_IOERR_WRITE).into();
        assert!(
            matches!(
                e,
                StoreError::Io {
                    kind: IoKind::Io,
                    ..
                }
            ),
            "{e:?}"
        );
        let e: StoreError = failure(ffi::SQLITE_CONSTRAINT).into();
        assert!(matches!(e, StoreError::Sqlite(_)), "{e:?}");
        assert_eq!(IoKind::of(&rusqlite::Error::QueryReturnedNoRows), None);
    }
}
