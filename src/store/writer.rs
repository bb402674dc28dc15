//! The writer thread: one connection, group commit.
//!
//! Each loop takes every request already queued (up to `GROUP_REQUESTS_MAX`), runs each in its
//! own savepoint inside one transaction, commits once, and only then answers the callers and
//! publishes events. A request whose SQL fails is rolled back alone; since the in-memory replica
//! may then be ahead of the disk, it is rebuilt from the log after the commit.

use super::{
    erasure, insert_op, materialize, replay, Ingested, NodeEvent, Payloads, Request, Shared,
    StoreError, SubmitError, Submitted, GROUP_REQUESTS_MAX,
};
use crate::domain::{Applied, Op, Replica};
use rusqlite::Connection;
use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

type Reply = Box<dyn FnOnce(bool) + Send>;

pub(super) fn run(mut conn: Connection, shared: Arc<Shared>, rx: mpsc::Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        if let Request::Checkpoint { reply } = first {
            let done = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(StoreError::from);
            let _ = reply.send(done);
            continue;
        }
        let mut group = vec![first];
        let mut checkpoint = None;
        while group.len() < GROUP_REQUESTS_MAX {
            match rx.try_recv() {
                Ok(Request::Checkpoint { reply }) => {
                    checkpoint = Some(reply);
                    break;
                }
                Ok(req) => group.push(req),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, &shared, group);
        if let Some(reply) = checkpoint {
            let done = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(StoreError::from);
            let _ = reply.send(done);
        }
    }
}

fn commit_group(conn: &mut Connection, shared: &Shared, group: Vec<Request>) {
    let mut replies: Vec<Reply> = Vec::with_capacity(group.len());
    let mut events: Vec<NodeEvent> = Vec::new();
    let mut reload = false;
    let mut erased = false;
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "cannot begin transaction");
            for req in group {
                fail(req, &e.to_string());
            }
            return;
        }
    };
    {
        let mut replica = shared
            .replica
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for req in group {
            // Once a request left memory ahead of the disk, a built submit (an invoice taking
            // the chain's next number) must not build on it: the number could be a gap.
            if reload
                && matches!(
                    req,
                    Request::Submit {
                        payloads: Payloads::Built(_),
                        ..
                    }
                )
            {
                fail(
                    req,
                    "the writer is rebuilding its state after a refused request; retry",
                );
                continue;
            }
            let outcome = handle(&tx, &mut replica, req, &mut events, &mut erased);
            reload |= outcome.1;
            replies.push(outcome.0);
        }
    }
    let committed = match tx.commit() {
        Ok(()) => {
            shared.groups.fetch_add(1, Ordering::Relaxed);
            shared
                .grouped_requests
                .fetch_add(replies.len() as u64, Ordering::Relaxed);
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            reload = true;
            false
        }
    };
    if committed && erased {
        truncate_wal(conn);
    }
    // Rebuild memory before answering: a caller told its request failed must not then read
    // the refused change from the replica.
    if reload {
        match replay(conn, shared.actor.clone()) {
            Ok(fresh) => {
                *shared.replica.write().unwrap_or_else(|p| p.into_inner()) = fresh;
            }
            Err(e) => tracing::error!(error = %e, "cannot rebuild replica from the log"),
        }
    }
    for reply in replies {
        reply(committed);
    }
    if committed {
        for event in events {
            let _ = shared.events.send(event);
        }
    }
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

/// Write `op` to the log in its stored form (anonymous for an erased customer); an erasure
/// also rewrites the customer's earlier ops. Returns the stored form.
fn store_op(
    tx: &rusqlite::Transaction,
    replica: &Replica,
    op: &Op,
    erased: &mut bool,
) -> rusqlite::Result<Op> {
    let stored = erasure::stored_form(op, replica.state()).into_owned();
    insert_op(tx, &stored)?;
    materialize::rows_for(tx, replica.state(), &stored)?;
    if let Some(customer) = erasure::erased_by(op) {
        erasure::rewrite_log(tx, replica.state(), customer)?;
        *erased = true;
    }
    Ok(stored)
}

fn fail(req: Request, why: &str) {
    let err = || StoreError::Migration(0, why.to_string());
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
        Request::Checkpoint { reply } => {
            let _ = reply.send(Err(err()));
        }
    }
}

fn savepoint<T>(
    tx: &rusqlite::Transaction,
    body: impl FnOnce() -> Result<T, SubmitError>,
) -> Result<T, SubmitError> {
    let run = |sql: &str| -> Result<(), SubmitError> {
        tx.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]))
            .map(|_| ())
            .map_err(|e| SubmitError::Store(e.into()))
    };
    run("SAVEPOINT request")?;
    let result = body();
    if result.is_err() {
        run("ROLLBACK TO request")?;
    }
    run("RELEASE request")?;
    result
}

/// Run one request; returns its deferred reply and whether memory must be rebuilt.
fn handle(
    tx: &rusqlite::Transaction,
    replica: &mut Replica,
    req: Request,
    events: &mut Vec<NodeEvent>,
    erased: &mut bool,
) -> (Reply, bool) {
    match req {
        Request::Submit {
            now_ms,
            payloads,
            extra,
            reply,
        } => {
            // A multi-op submit must be all or nothing in memory too: keep a copy to restore.
            // Built submits (a sale and its invoice) are not copied: only their first op can
            // be refused in practice, and a later refusal rebuilds memory from the log.
            let before = match &payloads {
                Payloads::Ready(p) if p.len() > 1 => Some(replica.clone()),
                _ => None,
            };
            let mut ops: Vec<Op> = Vec::new();
            let mut effects = Vec::new();
            let result = savepoint(tx, || {
                let payloads = match payloads {
                    Payloads::Ready(p) => p,
                    Payloads::Built(build) => build(replica, now_ms)?,
                };
                for payload in payloads {
                    let (op, eff) = replica.prepare(now_ms, payload)?;
                    let stored = store_op(tx, replica, &op, erased)
                        .map_err(|e| SubmitError::Store(e.into()))?;
                    ops.push(stored);
                    effects.extend(eff);
                }
                match extra {
                    Some(f) => f(tx, &ops)
                        .map(Some)
                        .map_err(|e| SubmitError::Store(e.into())),
                    None => Ok(None::<Box<dyn Any + Send>>),
                }
            });
            let mut reload = false;
            let outcome = match result {
                Ok(extra_out) => {
                    events.push(NodeEvent::Applied {
                        ops: Arc::new(ops.clone()),
                        effects: effects.clone(),
                        local: true,
                    });
                    Ok((Submitted { ops, effects }, extra_out))
                }
                Err(e) => {
                    match before {
                        Some(copy) => *replica = copy,
                        None => reload = !ops.is_empty() || matches!(e, SubmitError::Store(_)),
                    }
                    Err(e)
                }
            };
            let reply: Reply = Box::new(move |committed| {
                let _ = reply.send(if committed {
                    outcome
                } else {
                    Err(SubmitError::Store(StoreError::Closed))
                });
            });
            (reply, reload)
        }
        Request::Ingest { ops, reply } => {
            let mut report = Ingested::default();
            let mut fresh = Vec::new();
            let result = savepoint(tx, || {
                for op in ops {
                    match replica.apply(&op) {
                        Ok(Applied::New(eff)) => {
                            let stored = store_op(tx, replica, &op, erased)
                                .map_err(|e| SubmitError::Store(e.into()))?;
                            report.applied += 1;
                            report.effects.extend(eff);
                            fresh.push(stored);
                        }
                        Ok(Applied::Duplicate) => report.duplicates += 1,
                        Err(e) => report.rejected.push((op.id(), e)),
                    }
                }
                Ok(())
            });
            let reload = result.is_err() && report.applied > 0;
            if result.is_ok() && !fresh.is_empty() {
                events.push(NodeEvent::Applied {
                    ops: Arc::new(fresh),
                    effects: report.effects.clone(),
                    local: false,
                });
            }
            let reply: Reply = Box::new(move |committed| {
                let _ = reply.send(match (result, committed) {
                    (Ok(()), true) => Ok(report),
                    (Err(SubmitError::Store(e)), _) => Err(e),
                    _ => Err(StoreError::Closed),
                });
            });
            (reply, reload)
        }
        Request::Write { f, reply } => {
            let result = savepoint(tx, || f(tx).map_err(|e| SubmitError::Store(e.into())));
            let reply: Reply = Box::new(move |committed| {
                let _ = reply.send(match (result, committed) {
                    (Ok(v), true) => Ok(v),
                    (Err(SubmitError::Store(e)), _) => Err(e),
                    _ => Err(StoreError::Closed),
                });
            });
            (reply, false)
        }
        Request::Checkpoint { reply } => {
            // Taken out of groups by `run`; answer anyway rather than drop the caller.
            let reply: Reply = Box::new(move |_| {
                let _ = reply.send(Ok(()));
            });
            (reply, false)
        }
    }
}
