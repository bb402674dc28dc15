//! SQLite persistence: the op log and the materialised state, behind one writer that commits
//! in groups.
//!
//! `Node` is the handle every adapter uses. Reads go to the in-memory `Replica` (rebuilt from
//! the log at open). Writes go to the writer thread, which gathers requests arriving together
//! into one transaction and one fsync, and answers each caller only after that commit:
//! whatever a caller is told happened is on disk.

pub mod codec;
pub mod erasure;
pub mod fiscal;
pub mod import;
pub mod journal;
pub mod materialize;
pub mod pg;
pub mod schema;
mod writer;

use crate::domain::{ActorId, DomainError, Effect, Op, OpId, Payload, Replica};
use rusqlite::{params, Connection, OpenFlags};
use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use tokio::sync::{broadcast, oneshot};

pub use codec::{decode_op, encode_op, CodecError};
pub use schema::{Durability, Synchronous};

/// Most requests committed in one group transaction.
pub const GROUP_REQUESTS_MAX: usize = 512;
/// Writer queue bound: callers wait (back-pressure) when it is full.
pub const QUEUE_REQUESTS_MAX: usize = 4096;
/// Events buffered for slow subscribers before they start missing some.
pub const EVENTS_BUFFERED_MAX: usize = 4096;

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

/// Committed local ops and the effects they caused.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub ops: Vec<Op>,
    pub effects: Vec<Effect>,
}

/// Outcome of ingesting peer ops; all applied ones are committed.
#[derive(Debug, Clone, Default)]
pub struct Ingested {
    pub applied: usize,
    pub duplicates: usize,
    pub rejected: Vec<(OpId, DomainError)>,
    pub effects: Vec<Effect>,
}

/// Something committed, for subscribers (sync publishes, the terminal's live page).
#[derive(Debug, Clone)]
pub enum NodeEvent {
    Applied {
        ops: Arc<Vec<Op>>,
        effects: Vec<Effect>,
        local: bool,
    },
}

type Extra =
    Box<dyn FnOnce(&rusqlite::Transaction, &[Op]) -> rusqlite::Result<Box<dyn Any + Send>> + Send>;
type WriteFn =
    Box<dyn FnOnce(&rusqlite::Transaction) -> rusqlite::Result<Box<dyn Any + Send>> + Send>;

type SubmitReply = Result<(Submitted, Option<Box<dyn Any + Send>>), SubmitError>;

/// Builds a submit's payloads inside the writer, from the replica as the group transaction
/// has it (every earlier request of the group applied) and the commit's `now_ms`: for values
/// that must be allocated in commit order, such as the next invoice number of a series and
/// the chain's last `Huella`. An error refuses the submit, nothing written.
pub type BuildPayloads = Box<dyn FnOnce(&Replica, u64) -> Result<Vec<Payload>, DomainError> + Send>;

/// A submit's payloads: given, or built in the writer.
enum Payloads {
    Ready(Vec<Payload>),
    Built(BuildPayloads),
}

enum Request {
    Submit {
        now_ms: u64,
        payloads: Payloads,
        extra: Option<Extra>,
        reply: oneshot::Sender<SubmitReply>,
    },
    Ingest {
        ops: Vec<Op>,
        reply: oneshot::Sender<Result<Ingested, StoreError>>,
    },
    Write {
        f: WriteFn,
        reply: oneshot::Sender<Result<Box<dyn Any + Send>, StoreError>>,
    },
    /// Copy the WAL into the main file (clean shutdown), outside any transaction.
    Checkpoint {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Close the writer's connection and stop the writer (end of a process).
    Close { reply: oneshot::Sender<()> },
}

/// State the writer thread shares with handles.
struct Shared {
    actor: ActorId,
    path: PathBuf,
    replica: RwLock<Replica>,
    events: broadcast::Sender<NodeEvent>,
    /// Group transactions committed and requests they carried, for `writer_stats`.
    groups: AtomicU64,
    grouped_requests: AtomicU64,
}

/// What the writer has committed since the node was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Group transactions committed.
    pub groups: u64,
    /// Requests (submits, ingests, writes) they carried.
    pub requests: u64,
}

/// Handle to one replica's database. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
    queue: mpsc::SyncSender<Request>,
    reader: Arc<Mutex<Connection>>,
}

/// Wall-clock milliseconds since the Unix epoch, for callers of the pure domain.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Node {
    /// Open (or create) the database for `actor`: check, migrate, replay, start the writer.
    /// Commits are fsynced (`Durability::default()`).
    pub fn open(path: &Path, actor: ActorId) -> Result<Node, StoreError> {
        Node::open_with(path, actor, Durability::default())
    }

    /// `open` with explicit durability settings (the crash checker's broken mode, tests).
    pub fn open_with(
        path: &Path,
        actor: ActorId,
        durability: Durability,
    ) -> Result<Node, StoreError> {
        Node::open_journaled(path, actor, durability, None)
    }

    /// `open_with`, and every group is committed to `journal` before the file (`store::pg`).
    pub fn open_journaled(
        path: &Path,
        actor: ActorId,
        durability: Durability,
        journal: Option<Box<dyn journal::Journal>>,
    ) -> Result<Node, StoreError> {
        schema::check_existing(path)?;
        let mut conn = Connection::open(path)?;
        schema::configure_writer(&conn, durability)?;
        schema::migrate(&mut conn, now_ms())?;
        let recorded: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'actor'", [], |r| {
                r.get(0)
            })
            .ok();
        match recorded {
            Some(found) if found != actor.as_str() => {
                return Err(StoreError::ActorMismatch {
                    found,
                    requested: actor.to_string(),
                })
            }
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('actor', ?1)",
                    params![actor.as_str()],
                )?;
            }
        }
        let (conn, replica) = replay_packed(conn, actor.clone())?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        let (events, _) = broadcast::channel(EVENTS_BUFFERED_MAX);
        let shared = Arc::new(Shared {
            actor,
            path: path.to_path_buf(),
            replica: RwLock::new(replica),
            events,
            groups: AtomicU64::new(0),
            grouped_requests: AtomicU64::new(0),
        });
        let (queue, rx) = mpsc::sync_channel(QUEUE_REQUESTS_MAX);
        let for_writer = shared.clone();
        std::thread::Builder::new()
            .name("storenode-writer".into())
            .spawn(move || writer::run(conn, for_writer, rx, journal))
            .map_err(|e| StoreError::Thread(format!("cannot start the writer thread: {e}")))?;
        Ok(Node {
            shared,
            queue,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Open an existing database with the actor recorded in it.
    pub fn open_existing(path: &Path) -> Result<Node, StoreError> {
        schema::check_existing(path)?;
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let actor: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'actor'", [], |r| {
                r.get(0)
            })
            .map_err(|_| StoreError::NoActor(path.display().to_string()))?;
        drop(conn);
        let actor = ActorId::parse(&actor).map_err(|e| {
            StoreError::Corrupt(
                path.display().to_string(),
                format!("the recorded actor is invalid: {e}"),
            )
        })?;
        Node::open(path, actor)
    }

    pub fn actor(&self) -> &ActorId {
        &self.shared.actor
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Read the in-memory replica.
    pub fn read<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        let guard = self
            .shared
            .replica
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&guard)
    }

    /// Group commits so far (requests per group shows how well writes are batched).
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            groups: self.shared.groups.load(Ordering::Relaxed),
            requests: self.shared.grouped_requests.load(Ordering::Relaxed),
        }
    }

    /// Committed changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.shared.events.subscribe()
    }

    fn send(&self, req: Request) -> Result<(), StoreError> {
        self.queue.send(req).map_err(|_| StoreError::Closed)
    }

    /// Local changes, all or nothing, answered after commit.
    pub async fn submit(&self, payloads: Vec<Payload>) -> Result<Submitted, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Submit {
            now_ms: now_ms(),
            payloads: Payloads::Ready(payloads),
            extra: None,
            reply,
        })?;
        let (submitted, _) = rx.await.map_err(|_| StoreError::Closed)??;
        Ok(submitted)
    }

    /// Like `submit`, and `extra` writes side rows in the same transaction as the ops.
    pub async fn submit_with<R: Send + 'static>(
        &self,
        payloads: Vec<Payload>,
        extra: impl FnOnce(&rusqlite::Transaction, &[Op]) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<(Submitted, R), SubmitError> {
        let (reply, rx) = oneshot::channel();
        let extra: Extra =
            Box::new(move |tx, ops| Ok(Box::new(extra(tx, ops)?) as Box<dyn Any + Send>));
        self.send(Request::Submit {
            now_ms: now_ms(),
            payloads: Payloads::Ready(payloads),
            extra: Some(extra),
            reply,
        })?;
        let (submitted, r) = rx.await.map_err(|_| StoreError::Closed)??;
        let r = r
            .and_then(|b| b.downcast::<R>().ok())
            .ok_or(StoreError::Closed)?;
        Ok((submitted, *r))
    }

    /// Like `submit_with`, with the payloads built in the writer by `build` (see
    /// `BuildPayloads`): what it reads of the replica cannot change before they commit.
    pub async fn submit_built<R: Send + 'static>(
        &self,
        build: BuildPayloads,
        extra: impl FnOnce(&rusqlite::Transaction, &[Op]) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<(Submitted, R), SubmitError> {
        let rx = self.send_built(now_ms(), build, extra)?;
        let (submitted, r) = rx.await.map_err(|_| StoreError::Closed)??;
        let r = r
            .and_then(|b| b.downcast::<R>().ok())
            .ok_or(StoreError::Closed)?;
        Ok((submitted, *r))
    }

    /// `submit_built` for synchronous callers (the soak writer), at `now_ms`.
    pub fn submit_built_blocking(
        &self,
        now_ms: u64,
        build: BuildPayloads,
    ) -> Result<Submitted, SubmitError> {
        let rx = self.send_built(now_ms, build, |_, _| Ok(()))?;
        let (submitted, _) = rx.blocking_recv().map_err(|_| StoreError::Closed)??;
        Ok(submitted)
    }

    fn send_built<R: Send + 'static>(
        &self,
        now_ms: u64,
        build: BuildPayloads,
        extra: impl FnOnce(&rusqlite::Transaction, &[Op]) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<oneshot::Receiver<SubmitReply>, StoreError> {
        let (reply, rx) = oneshot::channel();
        let extra: Extra =
            Box::new(move |tx, ops| Ok(Box::new(extra(tx, ops)?) as Box<dyn Any + Send>));
        self.send(Request::Submit {
            now_ms,
            payloads: Payloads::Built(build),
            extra: Some(extra),
            reply,
        })?;
        Ok(rx)
    }

    /// `submit` for synchronous callers (the CLI). Not for use inside an async runtime.
    pub fn submit_blocking(
        &self,
        now_ms: u64,
        payloads: Vec<Payload>,
    ) -> Result<Submitted, SubmitError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Submit {
            now_ms,
            payloads: Payloads::Ready(payloads),
            extra: None,
            reply,
        })?;
        let (submitted, _) = rx.blocking_recv().map_err(|_| StoreError::Closed)??;
        Ok(submitted)
    }

    /// Apply peer ops; committed when this returns.
    pub async fn ingest(&self, ops: Vec<Op>) -> Result<Ingested, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Ingest { ops, reply })?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// `ingest` for synchronous callers.
    pub fn ingest_blocking(&self, ops: Vec<Op>) -> Result<Ingested, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Ingest { ops, reply })?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Write side tables in the writer's next group transaction.
    pub async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, rx) = oneshot::channel();
        let f: WriteFn = Box::new(move |tx| Ok(Box::new(f(tx)?) as Box<dyn Any + Send>));
        self.send(Request::Write { f, reply })?;
        let boxed = rx.await.map_err(|_| StoreError::Closed)??;
        boxed
            .downcast::<R>()
            .map(|b| *b)
            .map_err(|_| StoreError::Closed)
    }

    /// Fold the write-ahead log into the database file, for a clean shutdown. Everything
    /// committed is durable without it; this only leaves one tidy file behind.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Checkpoint { reply })?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// `checkpoint` for synchronous callers.
    pub fn checkpoint_blocking(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Checkpoint { reply })?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Stop the writer after everything queued before, and close its connection; returns once
    /// it is closed, so a process can exit without cutting SQLite short. Writes through any
    /// clone of this node fail with `StoreError::Closed` afterwards.
    pub fn close_blocking(&self) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Close { reply })?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)
    }

    /// Read side tables or the op log on the reader connection.
    pub async fn query<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn).map_err(StoreError::from)
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// `query` for synchronous callers.
    pub fn query_blocking<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StoreError> {
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(StoreError::from)
    }

    /// Ops of `actor` with seq above `after_seq`, in seq order, at most `limit`.
    pub fn ops_since(
        conn: &Connection,
        actor: &ActorId,
        after_seq: u64,
        limit: usize,
    ) -> rusqlite::Result<Vec<Op>> {
        let mut stmt = conn.prepare_cached(
            "SELECT body FROM ops WHERE actor = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![actor.as_str(), after_seq as i64, limit as i64],
            |r| r.get::<_, Vec<u8>>(0),
        )?;
        let mut ops = Vec::new();
        for body in rows {
            let body = body?;
            match decode_op(&body) {
                Ok(op) => ops.push(op),
                Err(e) => {
                    return Err(rusqlite::Error::FromSqlConversionFailure(
                        0,
                        rusqlite::types::Type::Blob,
                        Box::new(e),
                    ))
                }
            }
        }
        Ok(ops)
    }

    /// Number of ops in the log.
    pub fn op_count(conn: &Connection) -> rusqlite::Result<u64> {
        conn.query_row("SELECT count(*) FROM ops", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
    }
}

/// Free heap at the top of a malloc arena above this goes back to the kernel (glibc).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_TRIM_THRESHOLD_BYTES: i32 = 4 << 20;

/// Replay the log for `open` without leaving the replay's garbage resident. The replay runs on a
/// thread of its own, so its allocations (decoded ops, half-full map nodes, the page cache it
/// fills) land in that thread's malloc arena; the packed replica is then cloned here and the
/// original dropped, which frees that arena as a whole, and the freed pages go back to the OS.
/// An idle node's resident memory is then its state, not what building it left behind.
fn replay_packed(conn: Connection, actor: ActorId) -> Result<(Connection, Replica), StoreError> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` and `malloc_trim` only change when glibc gives free pages back to the
    // kernel; they touch no live allocation and may be called at any time from any thread.
    // A fixed trim threshold replaces glibc's dynamic one, which the replay's large transient
    // buffers would raise to tens of MiB (and with it the size below which big buffers are
    // carved from the arena instead of mapped), so the freed replay arena would stay resident.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES);
    }
    let replayed = std::thread::Builder::new()
        .name("storenode-replay".into())
        .spawn(move || {
            let replica = replay(&conn, actor).and_then(|mut r| {
                r.compact();
                conn.execute_batch("PRAGMA shrink_memory")?;
                Ok(r)
            });
            (conn, replica)
        })
        .map_err(|e| StoreError::Thread(format!("cannot start the replay thread: {e}")))?
        .join()
        .map_err(|_| StoreError::Thread("the replay thread panicked".to_string()))?;
    let (conn, built) = replayed;
    let built = built?;
    let replica = built.clone();
    drop(built);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: see `mallopt` above.
    unsafe {
        libc::malloc_trim(0);
    }
    Ok((conn, replica))
}

/// Rebuild the replica from the op log, in the order ops were applied.
fn replay(conn: &Connection, actor: ActorId) -> Result<Replica, StoreError> {
    let mut replica = Replica::new(actor);
    let mut stmt = conn.prepare("SELECT actor, seq, body FROM ops ORDER BY rowid")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let who: String = row.get(0)?;
        let seq: i64 = row.get(1)?;
        let body: Vec<u8> = row.get(2)?;
        let op = decode_op(&body).map_err(|source| StoreError::Codec {
            actor: who.clone(),
            seq: seq as u64,
            source,
        })?;
        replica.apply(&op).map_err(|source| StoreError::Replay {
            actor: who,
            seq: seq as u64,
            source,
        })?;
    }
    Ok(replica)
}

/// Insert one op into the log.
fn insert_op(tx: &rusqlite::Transaction, op: &Op) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO ops (actor, seq, hlc_wall, hlc_counter, kind, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        op.actor.as_str(),
        op.seq as i64,
        op.hlc.wall_ms() as i64,
        op.hlc.counter(),
        op.payload.kind(),
        encode_op(op),
    ])?;
    Ok(())
}
