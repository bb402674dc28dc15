//! What the terminal needs from the store node's replica: read it, submit local changes
//! (acknowledged only once committed), run side-table SQL, and hear about applied ops.
//!
//! `Ledger` is object-safe so the terminal can be tested without the rest of the node;
//! `MemoryLedger` is an in-process implementation over an in-memory replica and SQLite
//! connection that tests and small tools use.

use crate::domain::{ActorId, DomainError, Op, Payload, Replica};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::broadcast;

/// A boxed future, as object-safe traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// SQL run on the node's database (side tables only: sessions, staff, lockouts).
pub type DbJob = Box<dyn FnOnce(&rusqlite::Connection) -> rusqlite::Result<()> + Send>;

/// Why a change or a side-table query failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The domain refused the change: nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database or the writer failed.
    #[error("store: {0}")]
    Store(String),
}

/// Ops applied to the replica (local or from peers), for live updates.
#[derive(Debug, Clone)]
pub struct Applied {
    pub ops: Arc<Vec<Op>>,
    pub local: bool,
}

/// The store node's replica and database as the terminal uses them.
pub trait Ledger: Send + Sync + 'static {
    /// The replica's actor (`store:<id>`).
    fn actor(&self) -> ActorId;
    /// Run `f` against the current replica under a read lock; keep it short.
    fn read(&self, f: &mut dyn FnMut(&Replica));
    /// Issue local changes, all or nothing, in order; resolves once they are durable.
    fn submit(&self, payloads: Vec<Payload>) -> BoxFuture<'_, Result<Vec<Op>, LedgerError>>;
    /// Run side-table SQL in a write transaction.
    fn db(&self, job: DbJob) -> BoxFuture<'_, Result<(), LedgerError>>;
    /// Applied ops, local and remote.
    fn subscribe(&self) -> broadcast::Receiver<Applied>;
}

/// Terminal side tables, created by migration 0005.
pub const MIGRATION: &str = include_str!("../../migrations/0005_terminal.sql");

/// A ledger held in memory: a replica behind a lock and an in-memory SQLite database for
/// the terminal's side tables. Writes are applied in call order; nothing survives a restart.
pub struct MemoryLedger {
    replica: RwLock<Replica>,
    conn: Mutex<rusqlite::Connection>,
    events: broadcast::Sender<Applied>,
}

impl MemoryLedger {
    pub fn new(actor: ActorId) -> Result<MemoryLedger, LedgerError> {
        let conn = rusqlite::Connection::open_in_memory().map_err(store_err)?;
        conn.execute_batch(MIGRATION).map_err(store_err)?;
        Ok(MemoryLedger {
            replica: RwLock::new(Replica::new(actor)),
            conn: Mutex::new(conn),
            events: broadcast::channel(256).0,
        })
    }

    /// Apply ops authored elsewhere (HQ, seeds); duplicates are ignored.
    pub fn ingest(&self, ops: &[Op]) -> Result<(), LedgerError> {
        let mut replica = self.replica.write().map_err(|_| poisoned())?;
        for op in ops {
            replica.apply(op)?;
        }
        drop(replica);
        let _ = self.events.send(Applied {
            ops: Arc::new(ops.to_vec()),
            local: false,
        });
        Ok(())
    }
}

fn store_err(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Store(e.to_string())
}

fn poisoned() -> LedgerError {
    LedgerError::Store("replica lock poisoned".to_string())
}

/// Wall clock in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Ledger for MemoryLedger {
    fn actor(&self) -> ActorId {
        match self.replica.read() {
            Ok(r) => r.actor().clone(),
            Err(p) => p.into_inner().actor().clone(),
        }
    }

    fn read(&self, f: &mut dyn FnMut(&Replica)) {
        match self.replica.read() {
            Ok(r) => f(&r),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn submit(&self, payloads: Vec<Payload>) -> BoxFuture<'_, Result<Vec<Op>, LedgerError>> {
        Box::pin(async move {
            let ops = {
                let mut replica = self.replica.write().map_err(|_| poisoned())?;
                // All or nothing: prepare on a copy, keep it only if every payload passes.
                let mut draft = replica.clone();
                let mut ops = Vec::with_capacity(payloads.len());
                for p in payloads {
                    ops.push(draft.prepare(now_ms(), p)?.0);
                }
                *replica = draft;
                ops
            };
            let _ = self.events.send(Applied {
                ops: Arc::new(ops.clone()),
                local: true,
            });
            Ok(ops)
        })
    }

    fn db(&self, job: DbJob) -> BoxFuture<'_, Result<(), LedgerError>> {
        Box::pin(async move {
            let mut conn = self.conn.lock().map_err(|_| poisoned())?;
            let tx = conn.transaction().map_err(store_err)?;
            job(&tx).map_err(store_err)?;
            tx.commit().map_err(store_err)
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Applied> {
        self.events.subscribe()
    }
}
