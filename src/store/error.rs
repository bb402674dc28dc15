//! What can go wrong in the store, each naming the step that failed: opening, the begin or
//! commit of a group (`TxStep`), or the kind of I/O fault (`IoKind`) with a hint for the
//! operator. A caller is never told "writer stopped" when a commit failed.

use super::CodecError;
use crate::domain::DomainError;
use std::path::Path;

/// Why the database could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not an SQLite database; it was not modified.
    #[error("{0} is not an SQLite database; refusing to touch it")]
    NotSqlite(String),
    /// SQLite reports damage; the file was not modified.
    #[error("{0} is corrupt ({1}); refusing to touch it")]
    Corrupt(String, String),
    /// The disk failed under SQLite (full, or an I/O error): not damage to the database.
    /// Nothing committed is lost; fix the disk and start again.
    #[error("{kind} on {path} ({detail}); this is not database damage: {}", kind.hint())]
    Io {
        path: String,
        kind: IoKind,
        detail: String,
    },
    /// The file was written by a newer storenode.
    #[error("database schema version {found} is newer than this binary supports ({supported}); upgrade storenode")]
    NewerSchema { found: u32, supported: u32 },
    #[error("migration {0} failed: {1}")]
    Migration(u32, String),
    /// The database belongs to another replica.
    #[error("database belongs to actor {found}, not {requested}")]
    ActorMismatch { found: String, requested: String },
    /// The op log holds bytes this binary cannot read.
    #[error("op log entry {actor}/{seq}: {source}")]
    Codec {
        actor: String,
        seq: u64,
        source: CodecError,
    },
    /// Replaying the log failed: the log contradicts itself.
    #[error("replaying op {actor}/{seq}: {source}")]
    Replay {
        actor: String,
        seq: u64,
        source: DomainError,
    },
    /// A `sale_history` or `order_history` row that does not decode (store/history.rs,
    /// store/order_history.rs); `record` is the sale's or order's id.
    #[error("evicted record {record} does not decode: {detail}")]
    History { record: String, detail: String },
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// The writer could not begin, keep or commit the group transaction carrying the request:
    /// nothing of the request was stored, and memory was rebuilt from the file.
    #[error("{step} failed ({detail}); nothing of this request was stored")]
    Transaction { step: TxStep, detail: String },
    /// An existing file records no owner (a file created outside storenode, or emptied).
    #[error("{0} records no actor; say whose it is with --actor hq or --actor store:<id>")]
    NoActor(String),
    /// A thread the node needs (writer, replay) could not be started or panicked.
    #[error("{0}")]
    Thread(String),
    #[error("the writer has stopped")]
    Closed,
}

/// The step of the writer's group transaction that failed, for `StoreError::Transaction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStep {
    /// `BEGIN IMMEDIATE` (for example another connection holds the write lock).
    Begin,
    /// Undoing or releasing a failed request's savepoint: the group is rolled back whole.
    Savepoint,
    /// `COMMIT` (for example a deferred constraint, a full disk or an I/O error).
    Commit,
    /// Deleting the snapshot with an erasure (it may hold the customer's data): the group is
    /// rolled back whole.
    Snapshot,
    /// Committing the group to the shared op log (`Journal`) first: it is unreachable or
    /// refused the group.
    Journal,
}

impl std::fmt::Display for TxStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TxStep::Begin => "beginning the write transaction",
            TxStep::Savepoint => "undoing a failed request inside the write transaction",
            TxStep::Commit => "committing the write transaction",
            TxStep::Snapshot => "deleting the snapshot in the write transaction",
            TxStep::Journal => "committing to the shared op log",
        })
    }
}

/// What kind of disk failure an SQLite error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoKind {
    /// `SQLITE_FULL`: no space left (ENOSPC) or the file hit its size limit.
    DiskFull,
    /// `SQLITE_IOERR` (any extended code): the OS failed a read, write, fsync or lock (EIO).
    Io,
    /// `SQLITE_CANTOPEN`: the file (or its WAL/shm beside it) could not be opened or created.
    CannotOpen,
}

impl IoKind {
    /// The SQLite error as a disk failure, if it is one (`None`: damage, misuse, a
    /// constraint, ... — anything the disk did not cause).
    pub fn of(e: &rusqlite::Error) -> Option<IoKind> {
        match e.sqlite_error_code()? {
            rusqlite::ErrorCode::DiskFull => Some(IoKind::DiskFull),
            rusqlite::ErrorCode::SystemIoFailure => Some(IoKind::Io),
            rusqlite::ErrorCode::CannotOpen => Some(IoKind::CannotOpen),
            _ => None,
        }
    }

    fn hint(&self) -> &'static str {
        match self {
            IoKind::DiskFull => "free disk space, then start again",
            IoKind::Io => "check the disk and the system log, then start again",
            IoKind::CannotOpen => {
                "check the folder exists, is writable and has free space, then start again"
            }
        }
    }
}

impl std::fmt::Display for IoKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IoKind::DiskFull => "disk full",
            IoKind::Io => "I/O error",
            IoKind::CannotOpen => "cannot open the database file",
        })
    }
}

impl StoreError {
    /// The shared op log (PostgreSQL) could not take the write: retry once it is back.
    pub fn is_storage_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Transaction {
                step: TxStep::Journal,
                ..
            }
        )
    }

    /// An error from opening or checking the file at `path`: a disk failure is `Io`,
    /// anything else means the file is damaged (`Corrupt`).
    pub fn checking(path: &Path, e: rusqlite::Error) -> StoreError {
        let path = path.display().to_string();
        match IoKind::of(&e) {
            Some(kind) => StoreError::Io {
                path,
                kind,
                detail: e.to_string(),
            },
            None => StoreError::Corrupt(path, e.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    /// Disk failures (full, I/O) are told apart from other SQLite errors wherever they occur.
    fn from(e: rusqlite::Error) -> StoreError {
        match IoKind::of(&e) {
            Some(kind) => StoreError::Io {
                path: "the database".to_string(),
                kind,
                detail: e.to_string(),
            },
            None => StoreError::Sqlite(e),
        }
    }
}

/// A local change was refused (domain) or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
