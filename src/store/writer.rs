//! The writer thread: one connection, group commit.
//! (Over 500 lines: the group's transaction, its failure paths and the journal hand-off are one
//! sequence whose order is the durability argument; read it whole.)
//!
//! Each loop takes every request already queued (up to `GROUP_REQUESTS_MAX`), runs each in its
//! own savepoint inside one `BEGIN IMMEDIATE` transaction, commits once, and only then answers
//! the callers and publishes events. Memory never runs ahead of the file: a request whose SQL
//! fails after it changed the replica is rolled back alone and the replica is rebuilt from the
//! transaction before the next request runs (so a resend in the same group is not taken for a
//! duplicate, the next local op reuses the seq, and a built submit never numbers an invoice
//! after a refused one); a failed begin or commit answers every request of the group with the
//! step that failed, and memory is rebuilt from the file. With a `Journal` (the shared op log
//! on PostgreSQL) the group's ops are committed there first, and SQLite commits only after.

use super::history::{self, Evictor};
use super::journal::{Journal, JournalError};
use super::snapshot::{self, Cadence};
use super::{
    erasure, fiscal, replay, Ingested, NodeEvent, OpRows, Payloads, Request, Shared, StoreError,
    SubmitError, Submitted, TxStep, GROUP_REQUESTS_MAX,
};
use crate::domain::{Applied, Op, Payload, Replica, SaleId};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::any::Any;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// An idle writer writes a due snapshot after this long without a request.
const IDLE_MS: u64 = 20;

/// Why a whole group did not commit; every request of the group is answered with it.
#[derive(Debug, Clone)]
struct Abort {
    step: TxStep,
    detail: String,
}

impl Abort {
    fn new(step: TxStep, e: rusqlite::Error) -> Abort {
        Abort {
            step,
            detail: StoreError::from(e).to_string(),
        }
    }

    fn journal(e: JournalError) -> Abort {
        Abort {
            step: TxStep::Journal,
            detail: e.to_string(),
        }
    }

    fn error(&self) -> StoreError {
        StoreError::Transaction {
            step: self.step,
            detail: self.detail.clone(),
        }
    }
}

/// A request's answer, sent once the group's fate is known (`Some`: it did not commit).
type Reply = Box<dyn FnOnce(Option<&Abort>) + Send>;

/// One request run inside the group transaction.
struct Handled {
    reply: Reply,
    /// The request failed after changing the replica: rebuild it before the next request.
    dirty: bool,
    /// Its savepoint could not be undone or released: the group must not commit.
    broken: Option<rusqlite::Error>,
}

/// The journal the writer commits each group to first, if any.
pub(super) type MaybeJournal = Option<Box<dyn Journal>>;

pub(super) fn run(
    mut conn: Connection,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Request>,
    mut journal: MaybeJournal,
    mut cadence: Cadence,
    mut held: Held,
) {
    let mut evictor = Evictor::default();
    let mut recalled: Vec<SaleId> = Vec::new();
    // A request taken from the queue to see whether one was waiting, run next.
    let mut waiting: Option<Request> = None;
    loop {
        let first = if let Some(req) = waiting.take() {
            Ok(req)
        } else if cadence.due_idle() {
            rx.recv_timeout(Duration::from_millis(IDLE_MS))
        } else {
            rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
        };
        let first = match first {
            Ok(first) => first,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                write_snapshot(&mut conn, &shared, &mut cadence, held, &mut evictor);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                write_snapshot(&mut conn, &shared, &mut cadence, held, &mut evictor);
                return;
            }
        };
        // Requests arriving together form one group; a checkpoint or close ends it and runs
        // after its commit (a group of none when it came first).
        let mut group = Vec::new();
        let mut checkpoint_reply = None;
        let mut close_reply = None;
        let mut next = Some(first);
        while let Some(req) = next.take() {
            match req {
                Request::Checkpoint { reply } => checkpoint_reply = Some(reply),
                Request::Close { reply } => close_reply = Some(reply),
                req => {
                    group.push(req);
                    if group.len() < GROUP_REQUESTS_MAX {
                        next = rx.try_recv().ok();
                    }
                }
            }
        }
        if !group.is_empty() {
            let mut tally = Tally {
                cadence: &mut cadence,
                held: &mut held,
                recalled: &mut recalled,
            };
            if let Err(e) = commit_group(&mut conn, &shared, group, &mut tally, &mut journal) {
                // Memory can no longer be shown to match the file: stop rather than answer
                // anyone from it. Callers now get `StoreError::Closed`.
                tracing::error!(error = %e, "cannot rebuild the replica from the log; the writer stops");
                return;
            }
            evictor.pin(recalled.drain(..));
            // Under load, history leaves memory at the pace it arrives, on the passes' own
            // cadence; a snapshot makes a pass first. A due snapshot stalls every request
            // behind it, so it waits for the writer to idle (`IDLE_MS` without a request; a
            // store catching up waits a round trip to HQ for its next batch), up to a longer
            // tail (`Cadence::due_busy`). A request already queued is taken at once.
            if cadence.due_busy(false) {
                waiting = rx.recv_timeout(Duration::from_millis(IDLE_MS)).ok();
            }
            if cadence.due_busy(waiting.is_some()) {
                write_snapshot(&mut conn, &shared, &mut cadence, held, &mut evictor);
            } else if cadence.due_pass() {
                evict(&mut conn, &shared, &mut cadence, held, &mut evictor);
            }
        }
        if let Some(reply) = checkpoint_reply {
            write_snapshot(&mut conn, &shared, &mut cadence, held, &mut evictor);
            let _ = reply.send(checkpoint(&conn));
        }
        if let Some(reply) = close_reply {
            write_snapshot(&mut conn, &shared, &mut cadence, held, &mut evictor);
            return close(conn, reply);
        }
    }
}

/// The log's last rowid the in-memory replica holds: what a snapshot of it is `through`.
/// `None` once the log was found holding ops this writer did not apply (another writer on the
/// file): memory then no longer matches the log's prefix, and no snapshot is written from it.
type Held = Option<i64>;

/// Move the causally stable sales and orders out of memory (`store::history`), in passes
/// until one leaves nothing stable behind. Not when memory does not hold the log (`held`):
/// its records may not be the log's.
fn evict(
    conn: &mut Connection,
    shared: &Shared,
    cadence: &mut Cadence,
    held: Held,
    evictor: &mut Evictor,
) {
    if held.is_none() {
        return;
    }
    let mut evicted = 0;
    loop {
        match evictor.run(conn, &shared.replica) {
            // A pass that moved less than a full batch left nothing stable behind.
            Ok(n) if n < history::EVICT_BATCH_MAX => {
                evicted += n;
                break;
            }
            Ok(n) => evicted += n,
            Err(e) => {
                tracing::warn!(error = %e, "sales and orders not moved to history");
                break;
            }
        }
    }
    if evicted > 0 {
        tracing::debug!(evicted, "sales and orders moved to history");
    }
    cadence.passed(evicted);
}

/// Write a snapshot of the replica (everything committed) in a transaction of its own, if it
/// changed since the last one, after an eviction pass (`evict`), so the snapshot and a start
/// from it hold the live set, not history. On failure the next chance retries; the log stays
/// whole.
fn write_snapshot(
    conn: &mut Connection,
    shared: &Shared,
    cadence: &mut Cadence,
    held: Held,
    evictor: &mut Evictor,
) {
    let Some(through) = held else {
        return;
    };
    evict(conn, shared, cadence, held, evictor);
    if !cadence.stale() {
        return;
    }
    let written = Transaction::new(conn, TransactionBehavior::Immediate).and_then(|tx| {
        {
            let replica = shared.replica.read().unwrap_or_else(|p| p.into_inner());
            snapshot::write(&tx, &replica, through, super::now_ms())
        }
        .and_then(|bytes| tx.commit().map(|()| bytes))
    });
    match written {
        Ok(Some(bytes)) => cadence.written(bytes),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %StoreError::from(e), "snapshot not written"),
    }
}

/// The writer's bookkeeping a group updates: ops since the snapshot, the log's last rowid
/// memory holds.
struct Tally<'a> {
    cadence: &'a mut Cadence,
    held: &'a mut Held,
    /// Sales recalled for the counter by this group (pinned in memory after it).
    recalled: &'a mut Vec<SaleId>,
}

/// Close the connection, then answer: the caller may exit the process at once.
fn close(conn: Connection, reply: tokio::sync::oneshot::Sender<()>) {
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the database");
    }
    let _ = reply.send(());
}

fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(StoreError::from)
}

/// Run one group in one transaction. `Err` only when memory could not be rebuilt.
fn commit_group(
    conn: &mut Connection,
    shared: &Shared,
    group: Vec<Request>,
    tally: &mut Tally,
    journal: &mut MaybeJournal,
) -> Result<(), StoreError> {
    let tx = match Transaction::new(conn, TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return not_begun(group, e),
    };
    let mut rows = match OpRows::new(&tx) {
        Ok(rows) => rows,
        Err(e) => return not_begun(group, e),
    };
    // Ops logged by anyone but this writer since it last committed: memory lacks them.
    if tally.held.is_some() && snapshot::last_rowid(&tx).ok() != *tally.held {
        tracing::warn!("the log holds ops this writer did not apply; no snapshot until reopened");
        *tally.held = None;
    }
    let mut replies: Vec<Reply> = Vec::with_capacity(group.len());
    let mut events: Vec<NodeEvent> = Vec::new();
    // Own ops another process wrote to the journal, applied first: not journaled again.
    let mut caught: Vec<NodeEvent> = Vec::new();
    let mut abort = None;
    let mut erased = false;
    {
        let mut replica = shared
            .replica
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let issues_own = group.iter().any(|r| matches!(r, Request::Submit { .. }));
        if let (Some(j), true) = (journal.as_mut(), issues_own) {
            let mut own = Group {
                rows: &mut rows,
                events: &mut caught,
                erased: &mut erased,
                recalled: &mut *tally.recalled,
            };
            if let Err(e) = catch_up_own(j.as_mut(), &tx, &mut replica, &mut own) {
                abort = Some(e);
            }
        }
        for req in group {
            if abort.is_some() {
                replies.push(refused(req));
                continue;
            }
            let mut group = Group {
                rows: &mut rows,
                events: &mut events,
                erased: &mut erased,
                recalled: &mut *tally.recalled,
            };
            let handled = handle(&tx, &mut replica, req, &mut group);
            replies.push(handled.reply);
            if let Some(e) = handled.broken {
                abort = Some(Abort::new(TxStep::Savepoint, e));
            } else if handled.dirty {
                *replica = replay(&tx, shared.actor.clone())?.0;
            }
        }
        // The snapshot may hold the erased customer's data: it goes with the erasure (and,
        // by the WAL truncation below, its old page images).
        if abort.is_none() && erased {
            if let Err(e) = snapshot::delete(&tx) {
                abort = Some(Abort::new(TxStep::Snapshot, e));
            }
        }
    }
    drop(rows); // it borrows the transaction
    let abort = match abort {
        Some(abort) => {
            drop(tx); // rolls back
            if let Some(j) = journal.as_mut() {
                j.abandon();
            }
            Some(abort)
        }
        None => match journal_group(journal, shared, &tx, &events) {
            Err(abort) => {
                drop(tx); // rolls back
                Some(abort)
            }
            Ok(()) => {
                // What memory holds once this commits: the log through its last row.
                let through = snapshot::last_rowid(&tx);
                match tx.commit() {
                    Err(e) => Some(Abort::new(TxStep::Commit, e)),
                    Ok(()) => {
                        if tally.held.is_some() {
                            *tally.held = through.ok();
                        }
                        None
                    }
                }
            }
        },
    };
    match abort {
        None => {
            let logged = events
                .iter()
                .map(|NodeEvent::Applied { ops, .. }| ops.len())
                .sum();
            tally.cadence.logged(logged);
            if erased {
                tally.cadence.dropped();
                truncate_wal(conn);
            }
            shared.groups.fetch_add(1, Ordering::Relaxed);
            shared
                .grouped_requests
                .fetch_add(replies.len() as u64, Ordering::Relaxed);
            for reply in replies {
                reply(None);
            }
            for event in caught.into_iter().chain(events) {
                let _ = shared.events.send(event);
            }
            Ok(())
        }
        Some(abort) => {
            tracing::error!(error = %abort.error(), "group not written");
            let fresh = replay(conn, shared.actor.clone());
            if let Ok((fresh, through)) = &fresh {
                *shared.replica.write().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
                // Rebuilt from the whole file: it matches the log again.
                *tally.held = Some(*through);
            }
            for reply in replies {
                reply(Some(&abort));
            }
            fresh.map(|_| ())
        }
    }
}

/// The group's transaction could not begin: every request is told why, nothing ran.
fn not_begun(group: Vec<Request>, e: rusqlite::Error) -> Result<(), StoreError> {
    let abort = Abort::new(TxStep::Begin, e);
    tracing::error!(error = %abort.error(), "group not written");
    for req in group {
        refused(req)(Some(&abort));
    }
    Ok(())
}

/// Commit the group's ops to the journal, if there is one and the group wrote ops.
fn journal_group(
    journal: &mut MaybeJournal,
    shared: &Shared,
    tx: &Transaction,
    events: &[NodeEvent],
) -> Result<(), Abort> {
    let Some(journal) = journal else {
        return Ok(());
    };
    let ops: Vec<Op> = events
        .iter()
        .flat_map(|NodeEvent::Applied { ops, .. }| ops.iter().cloned())
        .collect();
    if ops.is_empty() {
        journal.abandon(); // a `begin_own` whose submits were all refused
        return Ok(());
    }
    let replica = shared.replica.read().unwrap_or_else(|p| p.into_inner());
    journal
        .commit(tx, &ops, replica.state())
        .map_err(Abort::journal)
}

/// Before a group issues this node's own ops: take the journal's lock on the actor
/// (`Journal::begin_own`) and apply the actor's ops other processes committed there since
/// this replica last saw one, so the next op gets the next free seq and its rights are
/// checked against every op issued before it. They are written to the file in this group but
/// not journaled again (they come from the journal).
fn catch_up_own(
    journal: &mut dyn Journal,
    tx: &Transaction,
    replica: &mut Replica,
    group: &mut Group,
) -> Result<(), Abort> {
    let actor = replica.actor().clone();
    let ops = journal
        .begin_own(tx, &actor, replica.next_seq())
        .map_err(Abort::journal)?;
    let mut fresh = Vec::new();
    let mut effects = Vec::new();
    for mut op in ops {
        history::recall_op(tx, replica, &op).map_err(|e| Abort {
            step: TxStep::Journal,
            detail: e.to_string(),
        })?;
        match replica.apply(&op) {
            Ok(Applied::New(eff)) => {
                store_op(tx, replica, &mut op, group)
                    .map_err(|e| Abort::new(TxStep::Journal, e))?;
                fresh.push(op);
                effects.extend(eff);
            }
            Ok(Applied::Duplicate) => {}
            Err(e) => {
                return Err(Abort {
                    step: TxStep::Journal,
                    detail: format!(
                        "the shared log's {}/{} does not apply: {e}",
                        op.actor, op.seq
                    ),
                })
            }
        }
    }
    if !fresh.is_empty() {
        group.events.push(NodeEvent::Applied {
            ops: Arc::new(fresh),
            effects,
            local: false,
        });
    }
    Ok(())
}

/// Fold the WAL into the database and truncate it, so the page images an erasure replaced
/// leave the disk with the commit. A reader holding an old snapshot can delay it (it is then
/// done by the next checkpoint); the log says so.
fn truncate_wal(conn: &Connection) {
    let busy = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    match busy {
        Ok(0) => tracing::debug!("wal truncated after an erasure"),
        Ok(_) => {
            tracing::warn!("wal still in use after an erasure; truncated at the next checkpoint")
        }
        Err(e) => tracing::warn!(error = %e, "cannot truncate the wal after an erasure"),
    }
}

/// Write `op` to the log in its stored form (anonymous for an erased customer), which `op`
/// becomes; an erasure also rewrites the customer's earlier ops.
fn store_op(
    tx: &rusqlite::Transaction,
    replica: &Replica,
    op: &mut Op,
    group: &mut Group,
) -> rusqlite::Result<()> {
    if let Cow::Owned(anonymous) = erasure::stored_form(op, replica.state()) {
        *op = anonymous;
    }
    group.rows.insert(op)?;
    fiscal::record_with_op(tx, op)?;
    if let Some(customer) = erasure::erased_by(op) {
        erasure::rewrite_log(tx, replica.state(), customer)?;
        *group.erased = true;
    }
    Ok(())
}

/// Whether `store_op` writes nothing but the op's row for `payload` (no fiscal record, no
/// rewrite of the log): such a submit needs no savepoint (`one_row`).
fn writes_only_its_row(payload: &Payload) -> bool {
    !matches!(
        payload,
        Payload::Invoice { .. } | Payload::CustomerErase { .. }
    )
}

/// What the requests of one group add up to, beside their replies.
struct Group<'a, 't> {
    /// The op log's insert, prepared once for the group.
    rows: &'a mut OpRows<'t>,
    events: &'a mut Vec<NodeEvent>,
    /// A request erased a customer: the WAL is truncated after the commit.
    erased: &'a mut bool,
    recalled: &'a mut Vec<SaleId>,
}

/// A reply that only reports the group's failure (the request never ran).
fn refused(req: Request) -> Reply {
    Box::new(move |abort| {
        let err = || {
            abort.map_or(StoreError::Closed, Abort::error) // `None` cannot happen: never run
        };
        match req {
            Request::Submit { reply, .. } => {
                let _ = reply.send(Err(SubmitError::Store(err())));
            }
            Request::Ingest { reply, .. } => {
                let _ = reply.send(Err(err()));
            }
            Request::Write { reply, .. } => {
                let _ = reply.send(Err(err()));
            }
            Request::Recall { reply, .. } => {
                let _ = reply.send(Err(err()));
            }
            Request::Checkpoint { reply } => {
                let _ = reply.send(Err(err()));
            }
            Request::Close { reply } => {
                let _ = reply.send(());
            }
        }
    })
}

/// Run `body` in a savepoint; on error its writes are undone and the group goes on. The outer
/// `Err`: the savepoint could not be undone or released, so the transaction cannot be trusted.
fn savepoint<T, E: From<StoreError>>(
    tx: &Transaction,
    body: impl FnOnce() -> Result<T, E>,
) -> Result<Result<T, E>, rusqlite::Error> {
    let run = |sql: &str| -> rusqlite::Result<()> {
        tx.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]))
            .map(|_| ())
    };
    if let Err(e) = run("SAVEPOINT request") {
        return Ok(Err(E::from(e.into())));
    }
    let result = body();
    if result.is_err() {
        run("ROLLBACK TO request")?;
    }
    run("RELEASE request")?;
    Ok(result)
}

/// Run `body`, a request whose only SQL is one statement, without a savepoint: a statement
/// that fails is undone by SQLite itself, and memory is rebuilt as after a rolled-back
/// savepoint. A savepoint per op cost the writer a tenth of its CPU under load (its own SQL,
/// and a sub-journal copy of every page the insert touched). Where SQLite rolled the whole
/// transaction back instead (`RAISE(ROLLBACK)`; a full disk or an I/O error may), the earlier
/// requests' rows are gone: that breaks the group, as a savepoint that cannot be undone does.
fn one_row<T, E: From<StoreError> + std::fmt::Display>(
    tx: &Transaction,
    body: impl FnOnce() -> Result<T, E>,
) -> Result<Result<T, E>, rusqlite::Error> {
    let result = body();
    match &result {
        Err(e) if tx.is_autocommit() => Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
            Some(format!("the transaction was rolled back: {e}")),
        )),
        _ => Ok(result),
    }
}

/// The request's own error first; else the group's; else its value.
fn outcome<T, E: From<StoreError>>(result: Result<T, E>, abort: Option<&Abort>) -> Result<T, E> {
    match (result, abort) {
        (Err(e), _) => Err(e),
        (Ok(_), Some(abort)) => Err(E::from(abort.error())),
        (Ok(v), None) => Ok(v),
    }
}

/// Run one request inside the group transaction.
fn handle(tx: &Transaction, replica: &mut Replica, req: Request, group: &mut Group) -> Handled {
    match req {
        Request::Submit {
            now_ms,
            payloads,
            extra,
            reply,
        } => {
            // A multi-op submit must be all or nothing in memory too: keep a copy to restore.
            // A single op, or a built submit (a sale and its invoice), is instead undone by
            // rebuilding from the transaction (rare: only a failed write, or a refusal after
            // the first op, leaves memory changed; a refusal of the first op changes nothing).
            let before = match &payloads {
                Payloads::Ready(p) if p.len() > 1 => Some(replica.clone()),
                _ => None,
            };
            // One op whose only write is its log row runs without a savepoint (`one_row`).
            let guard = match (&payloads, &extra) {
                (Payloads::Ready(p), None) if p.len() == 1 && writes_only_its_row(&p[0]) => one_row,
                _ => savepoint,
            };
            let mut prepared = 0usize;
            let mut ops: Vec<Op> = Vec::new();
            let mut effects = Vec::new();
            let result = guard(tx, || {
                let payloads = match payloads {
                    Payloads::Ready(p) => p,
                    Payloads::Built(build) => build(replica, now_ms)?,
                };
                for payload in payloads {
                    history::recall(tx, replica, &payload)?;
                    let (mut op, eff) = replica.prepare(now_ms, payload)?;
                    prepared += 1;
                    store_op(tx, replica, &mut op, group).map_err(StoreError::from)?;
                    ops.push(op);
                    effects.extend(eff);
                }
                let extra_out = match extra {
                    Some(f) => Some(f(tx, &ops).map_err(StoreError::from)?),
                    None => None::<Box<dyn Any + Send>>,
                };
                Ok::<_, SubmitError>(extra_out)
            });
            let (result, broken) = split(result);
            let mut dirty = false;
            if result.is_err() {
                match before {
                    Some(copy) => *replica = copy,
                    None => dirty = prepared > 0,
                }
            } else {
                group.events.push(NodeEvent::Applied {
                    ops: Arc::new(ops.clone()),
                    effects: effects.clone(),
                    local: true,
                });
            }
            let result = result.map(|extra_out| (Submitted { ops, effects }, extra_out));
            Handled {
                reply: Box::new(move |abort| {
                    let _ = reply.send(outcome(result, abort));
                }),
                dirty,
                broken,
            }
        }
        Request::Ingest {
            ops: mut fresh,
            then,
            reply,
        } => {
            let mut report = Ingested::default();
            // Ops applied in memory, counted before their rows are written: if a write fails,
            // these must be taken out of memory again.
            let mut in_memory = 0usize;
            let result = savepoint(tx, || {
                // The new ops stay in the request's own vector, in their stored form: a
                // catch-up's thousands of ops are not copied into fresh memory.
                let mut failed = None;
                fresh.retain_mut(|op| {
                    if failed.is_some() {
                        return false;
                    }
                    if let Err(e) = history::recall_op(tx, replica, op) {
                        failed = Some(e);
                        return false;
                    }
                    match replica.apply(op) {
                        Ok(Applied::New(eff)) => {
                            in_memory += 1;
                            if let Err(e) = store_op(tx, replica, op, group) {
                                failed = Some(e.into());
                                return false;
                            }
                            report.applied += 1;
                            report.effects.extend(eff);
                            true
                        }
                        Ok(Applied::Duplicate) => {
                            report.duplicates += 1;
                            false
                        }
                        Err(e) => {
                            report.rejected.push((op.id(), e));
                            false
                        }
                    }
                });
                if let Some(e) = failed {
                    return Err(e);
                }
                let then_out = match then {
                    Some(f) => Some(f(tx, &report)?),
                    None => None,
                };
                Ok::<_, StoreError>(then_out)
            });
            let (result, broken) = split(result);
            if result.is_ok() && !fresh.is_empty() {
                group.events.push(NodeEvent::Applied {
                    ops: Arc::new(fresh),
                    effects: report.effects.clone(),
                    local: false,
                });
            }
            let dirty = result.is_err() && in_memory > 0;
            Handled {
                reply: Box::new(move |abort| {
                    let _ = reply.send(outcome(result.map(|out| (report, out)), abort));
                }),
                dirty,
                broken,
            }
        }
        Request::Write { f, reply } => {
            let result = savepoint(tx, || f(tx).map_err(StoreError::from));
            let (result, broken) = split(result);
            Handled {
                reply: Box::new(move |abort| {
                    let _ = reply.send(outcome(result, abort));
                }),
                dirty: false,
                broken,
            }
        }
        Request::Recall { sales, reply } => {
            // Memory only: a group that does not commit rebuilds the replica anyway.
            let result = history::recall_sales(tx, replica, &sales);
            group.recalled.extend(sales);
            Handled {
                reply: Box::new(move |abort| {
                    let _ = reply.send(outcome(result, abort));
                }),
                dirty: false,
                broken: None,
            }
        }
        Request::Checkpoint { reply } => {
            // Taken out of groups by `run`; answer anyway rather than drop the caller.
            Handled {
                reply: Box::new(move |_| {
                    let _ = reply.send(Ok(()));
                }),
                dirty: false,
                broken: None,
            }
        }
        Request::Close { reply } => {
            // Taken out of groups by `run`, likewise.
            Handled {
                reply: Box::new(move |_| {
                    let _ = reply.send(());
                }),
                dirty: false,
                broken: None,
            }
        }
    }
}

/// A savepoint's outcome as the request's result and, if the savepoint broke, why; a broken
/// savepoint fails the request too.
fn split<T, E: From<StoreError>>(
    r: Result<Result<T, E>, rusqlite::Error>,
) -> (Result<T, E>, Option<rusqlite::Error>) {
    match r {
        Ok(result) => (result, None),
        Err(e) => {
            let err = StoreError::Transaction {
                step: TxStep::Savepoint,
                detail: e.to_string(),
            };
            (Err(E::from(err)), Some(e))
        }
    }
}
