//! SQLite persistence: the op log (with the fiscal journal, the history tables and a snapshot
//! of the replica, all derived from it), behind one writer that commits in groups.
//!
//! `Node` is the handle every adapter uses. Reads go to the in-memory `Replica` (rebuilt at
//! open from the last snapshot and the log after it). Writes go to the writer thread, which
//! gathers requests arriving together into one transaction and one fsync, and answers each
//! caller only after that commit: whatever a caller is told happened is on disk.
//!
//! Just over 500 lines: `Node`'s public surface in one place (open, submit, read, recall,
//! checkpoint, close), each method a thin call into the writer or a submodule.

pub mod codec;
pub mod erasure;
mod error;
pub mod fiscal;
pub mod history;
mod history_table;
pub mod import;
pub mod journal;
pub mod order_history;
pub mod pg;
mod replay;
pub mod schema;
pub mod snapshot;
mod writer;

use crate::domain::{ActorId, DomainError, Effect, Op, OpId, Payload, Replica};
use rusqlite::{params, Connection, OpenFlags};
use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use tokio::sync::{broadcast, oneshot};

pub use codec::{decode_op, encode_op, CodecError};
pub use error::{IoKind, StoreError, SubmitError, TxStep};
pub use replay::replay_whole;
use replay::{replay, replay_packed, OpRows};
pub use schema::{Durability, Synchronous};

/// Most requests committed in one group transaction.
pub const GROUP_REQUESTS_MAX: usize = 512;
/// Writer queue bound: callers wait (back-pressure) when it is full.
pub const QUEUE_REQUESTS_MAX: usize = 4096;
/// Events buffered for slow subscribers before they start missing some.
pub const EVENTS_BUFFERED_MAX: usize = 4096;

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
/// Writes that follow an ingest in its transaction, told what the ingest did.
type IngestThen = Box<
    dyn FnOnce(&rusqlite::Transaction, &Ingested) -> rusqlite::Result<Box<dyn Any + Send>> + Send,
>;
type IngestReply = Result<(Ingested, Option<Box<dyn Any + Send>>), StoreError>;

type SubmitReply = Result<(Submitted, Option<Box<dyn Any + Send>>), SubmitError>;

/// The value a caller's closure returned in the writer, as the type the caller asked for. The
/// writer answers each request with what that request's closure made, so a mismatch cannot
/// happen; it would read as the writer gone.
fn unbox<R: 'static>(boxed: Option<Box<dyn Any + Send>>) -> Result<R, StoreError> {
    boxed
        .and_then(|b| b.downcast::<R>().ok())
        .map(|b| *b)
        .ok_or(StoreError::Closed)
}

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
        then: Option<IngestThen>,
        reply: oneshot::Sender<IngestReply>,
    },
    Write {
        f: WriteFn,
        reply: oneshot::Sender<Result<Box<dyn Any + Send>, StoreError>>,
    },
    /// Put evicted sales back in memory before the counter plans from them (`history`).
    Recall {
        sales: Vec<crate::domain::SaleId>,
        reply: oneshot::Sender<Result<(), StoreError>>,
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
        let (conn, replica, replayed) = replay_packed(conn, actor.clone())?;
        let cadence = snapshot::Cadence::new(replayed.tail_ops, snapshot::stored_bytes(&conn)?);
        let held = Some(replayed.through);
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
            .spawn(move || writer::run(conn, for_writer, rx, journal, cadence, held))
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
        Ok((submitted, unbox(r)?))
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
        Ok((submitted, unbox(r)?))
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
        self.send(Request::Ingest {
            ops,
            then: None,
            reply,
        })?;
        Ok(rx.await.map_err(|_| StoreError::Closed)??.0)
    }

    /// `ingest`, then `f` in the same transaction, told what the ingest did: side tables that
    /// follow the ops (HQ's routing) are committed with them, one commit instead of two. An
    /// error from `f` undoes the ingest too.
    pub async fn ingest_then<R: Send + 'static>(
        &self,
        ops: Vec<Op>,
        f: impl FnOnce(&rusqlite::Transaction, &Ingested) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<(Ingested, R), StoreError> {
        let (reply, rx) = oneshot::channel();
        let then: IngestThen =
            Box::new(move |tx, ingested| Ok(Box::new(f(tx, ingested)?) as Box<dyn Any + Send>));
        self.send(Request::Ingest {
            ops,
            then: Some(then),
            reply,
        })?;
        let (ingested, boxed) = rx.await.map_err(|_| StoreError::Closed)??;
        Ok((ingested, unbox(boxed)?))
    }

    /// `ingest` for synchronous callers.
    pub fn ingest_blocking(&self, ops: Vec<Op>) -> Result<Ingested, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Ingest {
            ops,
            then: None,
            reply,
        })?;
        Ok(rx.blocking_recv().map_err(|_| StoreError::Closed)??.0)
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
        unbox(Some(boxed))
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

    /// Put `sales` back in memory if they were evicted (`store::history`), for a caller that
    /// plans from the replica (a return at the counter): they stay in memory for the next
    /// couple of eviction passes.
    pub async fn recall(&self, sales: Vec<crate::domain::SaleId>) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Recall { sales, reply })?;
        rx.await.map_err(|_| StoreError::Closed)?
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
