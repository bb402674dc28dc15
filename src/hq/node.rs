//! Stand-in for `store::Node` until the lead's store lands on main: the same method names and
//! shapes (open, read, submit, submit_with, ingest, write, query, subscribe, now_ms), backed by
//! one SQLite connection and a transaction per call. Replaced by `crate::store::Node` on merge.

use crate::domain::{ActorId, Applied, DomainError, Effect, Op, Payload, Replica};
use rusqlite::{params, Connection, Transaction};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::broadcast;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored op is unreadable: {0}")]
    Codec(String),
    #[error("writer task failed: {0}")]
    Join(String),
}

/// Why a local change was not committed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Local change(s) committed.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub ops: Vec<Op>,
    pub effects: Vec<Effect>,
}

/// Peer ops ingested.
#[derive(Debug, Clone, Default)]
pub struct Ingested {
    pub applied: usize,
    pub duplicates: usize,
    pub rejected: Vec<(crate::domain::OpId, DomainError)>,
    pub effects: Vec<Effect>,
}

/// What a subscriber hears after each commit.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    Applied {
        ops: Arc<Vec<Op>>,
        effects: Vec<Effect>,
        local: bool,
    },
}

struct Inner {
    actor: ActorId,
    replica: RwLock<Replica>,
    conn: Mutex<Connection>,
    path: std::path::PathBuf,
    events: broadcast::Sender<NodeEvent>,
}

/// One replica persisted in one SQLite file.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ops (actor TEXT NOT NULL, seq INTEGER NOT NULL, hlc_wall INTEGER NOT NULL,
  hlc_counter INTEGER NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL, applied INTEGER PRIMARY KEY AUTOINCREMENT,
  UNIQUE(actor, seq));
CREATE TABLE IF NOT EXISTS shim_migrations (version INTEGER PRIMARY KEY);
";

fn encode(op: &Op) -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend(postcard::to_allocvec(op).unwrap_or_default());
    out
}

fn decode(bytes: &[u8]) -> Result<Op, StoreError> {
    match bytes.split_first() {
        Some((1, rest)) => postcard::from_bytes(rest).map_err(|e| StoreError::Codec(e.to_string())),
        _ => Err(StoreError::Codec("unknown op format".into())),
    }
}

fn insert_op(tx: &Transaction, op: &Op) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO ops (actor, seq, hlc_wall, hlc_counter, kind, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            op.actor.as_str(),
            op.seq as i64,
            op.hlc.wall_ms() as i64,
            op.hlc.counter(),
            op.payload.kind(),
            encode(op)
        ],
    )?;
    Ok(())
}

impl Node {
    pub fn open(path: &Path, actor: ActorId) -> Result<Node, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let has_hq: bool = conn
            .query_row(
                "SELECT COUNT(*) FROM shim_migrations WHERE version = 4",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)?;
        if !has_hq {
            conn.execute_batch(include_str!("../../migrations/0004_hq.sql"))?;
            conn.execute("INSERT INTO shim_migrations (version) VALUES (4)", [])?;
        }
        let mut replica = Replica::new(actor.clone());
        {
            let mut stmt = conn.prepare("SELECT body FROM ops ORDER BY applied")?;
            let bodies = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
            for body in bodies {
                let op = decode(&body?)?;
                // Ops in the log were validated when they were first applied.
                let _ = replica.apply(&op);
            }
        }
        let (events, _) = broadcast::channel(1024);
        Ok(Node {
            inner: Arc::new(Inner {
                actor,
                replica: RwLock::new(replica),
                conn: Mutex::new(conn),
                path: path.to_path_buf(),
                events,
            }),
        })
    }

    pub fn actor(&self) -> &ActorId {
        &self.inner.actor
    }

    pub fn read<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        let guard = self.inner.replica.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    pub async fn submit(&self, payloads: Vec<Payload>) -> Result<Submitted, SubmitError> {
        self.submit_with(payloads, |_, _| Ok(()))
            .await
            .map(|(s, ())| s)
    }

    pub async fn submit_with<R: Send + 'static>(
        &self,
        payloads: Vec<Payload>,
        extra: impl FnOnce(&Transaction, &[Op]) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<(Submitted, R), SubmitError> {
        let inner = self.inner.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            let mut replica = inner.replica.write().unwrap_or_else(|e| e.into_inner());
            let mut draft = replica.clone();
            let mut ops = Vec::new();
            let mut effects = Vec::new();
            for p in payloads {
                let (op, fx) = draft.prepare(Node::now_ms(), p)?;
                ops.push(op);
                effects.extend(fx);
            }
            let tx = conn.transaction().map_err(StoreError::from)?;
            for op in &ops {
                insert_op(&tx, op).map_err(StoreError::from)?;
            }
            let r = extra(&tx, &ops).map_err(StoreError::from)?;
            tx.commit().map_err(StoreError::from)?;
            *replica = draft;
            let _ = inner.events.send(NodeEvent::Applied {
                ops: Arc::new(ops.clone()),
                effects: effects.clone(),
                local: true,
            });
            Ok::<_, SubmitError>((Submitted { ops, effects }, r))
        })
        .await
        .map_err(|e| SubmitError::Store(StoreError::Join(e.to_string())))?;
        result
    }

    pub async fn ingest(&self, ops: Vec<Op>) -> Result<Ingested, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            let mut replica = inner.replica.write().unwrap_or_else(|e| e.into_inner());
            let mut draft = replica.clone();
            let mut out = Ingested::default();
            let mut fresh = Vec::new();
            for op in ops {
                match draft.apply(&op) {
                    Ok(Applied::New(fx)) => {
                        out.applied += 1;
                        out.effects.extend(fx);
                        fresh.push(op);
                    }
                    Ok(Applied::Duplicate) => out.duplicates += 1,
                    Err(e) => out.rejected.push((op.id(), e)),
                }
            }
            let tx = conn.transaction()?;
            for op in &fresh {
                insert_op(&tx, op)?;
            }
            tx.commit()?;
            *replica = draft;
            if !fresh.is_empty() {
                let _ = inner.events.send(NodeEvent::Applied {
                    ops: Arc::new(fresh),
                    effects: out.effects.clone(),
                    local: false,
                });
            }
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    pub async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            let tx = conn.transaction()?;
            let r = f(&tx)?;
            tx.commit()?;
            Ok(r)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    pub async fn query<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = Connection::open(path)?;
            Ok(f(&conn)?)
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// Ops of `actor` after `after_seq`, in seq order.
    pub fn ops_since(
        conn: &Connection,
        actor: &ActorId,
        after_seq: u64,
        limit: usize,
    ) -> rusqlite::Result<Vec<Op>> {
        let mut stmt = conn
            .prepare("SELECT body FROM ops WHERE actor = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")?;
        let rows = stmt.query_map(
            params![actor.as_str(), after_seq as i64, limit as i64],
            |r| r.get::<_, Vec<u8>>(0),
        )?;
        let mut out = Vec::new();
        for body in rows {
            if let Ok(op) = decode(&body?) {
                out.push(op);
            }
        }
        Ok(out)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    pub fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}
