//! `PgJournal`: the writer's `Journal` on PostgreSQL.
//!
//! Runs on the writer thread with a current-thread runtime of its own (created there, so it is
//! never dropped inside async code) and one connection, opened on first use and again after
//! any failure: while PostgreSQL is down every group fails fast with `Unavailable`, nothing
//! is acknowledged, and the first group after it returns reconnects.

use super::jobs::{self, JobSource};
use super::log;
use super::rights;
use crate::domain::{ActorId, Op, Payload, State};
use crate::store::decode_op;
use crate::store::erasure::erased_by;
use crate::store::journal::{Journal, JournalError};
use std::sync::Arc;
use tokio_postgres::{Client, Config, NoTls};

/// Longest wait for a connection before a group is refused.
pub const CONNECT_TIMEOUT_S: u64 = 2;

/// Most own ops read back in one `begin_own` (another process's ops this one has not applied).
pub const CATCH_UP_OPS_MAX: i64 = 100_000;

/// The shared op log as the writer sees it.
pub struct PgJournal {
    config: Config,
    actor: ActorId,
    rt: Option<tokio::runtime::Runtime>,
    client: Option<Client>,
    /// A transaction opened by `begin_own` holds the actor's lock; own ops above `floor` (the
    /// highest seq the log held then) must be new to the log.
    open: Option<u64>,
    /// Webhook jobs the ops call for, queued in their transaction (none without a webhook).
    jobs: Option<Arc<dyn JobSource>>,
}

impl PgJournal {
    /// A journal for the node of `actor`; connects on the first group.
    pub fn new(mut config: Config, actor: ActorId) -> PgJournal {
        config.connect_timeout(std::time::Duration::from_secs(CONNECT_TIMEOUT_S));
        PgJournal {
            config,
            actor,
            rt: None,
            client: None,
            open: None,
            jobs: None,
        }
    }

    /// Queue the jobs `source` says each newly stored op calls for, in the op's transaction.
    pub fn with_jobs(mut self, source: Arc<dyn JobSource>) -> PgJournal {
        self.jobs = Some(source);
        self
    }

    fn runtime(&mut self) -> Result<&tokio::runtime::Runtime, JournalError> {
        if self.rt.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| JournalError::Unavailable(format!("cannot start a runtime: {e}")))?;
            self.rt = Some(rt);
        }
        self.rt
            .as_ref()
            .ok_or_else(|| JournalError::Unavailable("no runtime".to_string()))
    }

    /// Run `body` on a working connection (opened first if needed, then `body` is told it is
    /// new); a connection that failed is dropped, so the next call reconnects.
    fn with_client<T>(
        &mut self,
        body: impl AsyncFnOnce(&mut Client, bool) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let config = self.config.clone();
        let mut client = self.client.take();
        let rt = self.runtime()?;
        let result = rt.block_on(async {
            let fresh = client.as_ref().is_none_or(Client::is_closed);
            if fresh {
                let (c, connection) = config.connect(NoTls).await.map_err(unavailable)?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!(error = %e, "shared op log connection lost");
                    }
                });
                client = Some(c);
            }
            let Some(c) = client.as_mut() else {
                return Err(JournalError::Unavailable("not connected".to_string()));
            };
            body(c, fresh).await
        });
        if !matches!(result, Err(JournalError::Unavailable(_))) {
            self.client = client; // keep a working connection
        }
        result
    }
}

impl Journal for PgJournal {
    fn commit(
        &mut self,
        tx: &rusqlite::Transaction,
        ops: &[Op],
        state: &State,
    ) -> Result<(), JournalError> {
        let keys = idempotency_rows(tx, ops)?;
        let actor = self.actor.clone();
        let open = self.open.take();
        // Without `begin_own` the group issued no own op: any of ours came from the log.
        let floor = open.unwrap_or(u64::MAX);
        let answers = rights::local_answers(tx, &actor, floor, ops)
            .map_err(|e| JournalError::Local(e.to_string()))?;
        let source = self.jobs.clone();
        self.with_client(async move |c, fresh| {
            match open {
                None => c.batch_execute("BEGIN").await.map_err(unavailable)?,
                Some(_) if fresh => {
                    return Err(JournalError::Unavailable(
                        "connection lost during the group".to_string(),
                    ))
                }
                Some(_) => {}
            }
            let group = Group {
                actor: &actor,
                floor,
                ops,
                keys: &keys,
                answers: &answers,
                state,
                jobs: source.as_deref(),
            };
            match commit_ops(c, group).await {
                Ok(()) => c.batch_execute("COMMIT").await.map_err(unavailable),
                Err(e) => {
                    let _ = c.batch_execute("ROLLBACK").await;
                    Err(e)
                }
            }
        })
    }

    fn begin_own(
        &mut self,
        tx: &rusqlite::Transaction,
        actor: &ActorId,
        next_seq: u64,
    ) -> Result<Vec<Op>, JournalError> {
        self.abandon();
        let actor = actor.clone();
        let (read, keys) = self.with_client(async move |c, _| {
            c.batch_execute("BEGIN").await.map_err(unavailable)?;
            let read = async {
                log::lock_actor(c, &actor).await.map_err(unavailable)?;
                let read = log::actor_ops_from(c, &actor, next_seq, CATCH_UP_OPS_MAX)
                    .await
                    .map_err(unavailable)?;
                // Their orders' keys: committed with them, visible now that we hold the lock.
                let orders = read_orders(&read);
                let keys = match orders.is_empty() {
                    true => Vec::new(),
                    false => log::idempotency_of(c, &orders).await.map_err(unavailable)?,
                };
                Ok((read, keys))
            }
            .await;
            if read.is_err() {
                let _ = c.batch_execute("ROLLBACK").await;
            }
            read
        })?;
        let mut ops = Vec::with_capacity(read.len());
        for row in read {
            match decode_op(&row.body) {
                Ok(op) => ops.push(op),
                Err(e) => {
                    self.abandon();
                    return Err(JournalError::Local(format!(
                        "shared op log entry {}/{}: {e}",
                        row.actor, row.seq
                    )));
                }
            }
        }
        if let Err(e) = log::restore_local_idempotency(tx, &keys) {
            self.abandon();
            return Err(JournalError::Local(e.to_string()));
        }
        self.open = Some(
            ops.last()
                .map_or(next_seq.saturating_sub(1), |op: &Op| op.seq),
        );
        Ok(ops)
    }

    fn abandon(&mut self) {
        if self.open.take().is_some() {
            let _ = self.with_client(async |c, fresh| {
                if fresh {
                    return Ok(()); // the transaction died with the old connection
                }
                c.batch_execute("ROLLBACK").await.map_err(unavailable)
            });
        }
    }
}

/// The Idempotency-Keys of the orders HQ placed in this group, as the SQLite transaction
/// holds them (written there by the order's own request).
fn idempotency_rows(
    tx: &rusqlite::Transaction,
    ops: &[Op],
) -> Result<Vec<log::IdempotencyRow>, JournalError> {
    let mut rows = Vec::new();
    for op in ops {
        let (Payload::OrderPlace { order_id, .. } | Payload::OrderShipToStore { order_id, .. }) =
            &op.payload
        else {
            continue;
        };
        let found = log::local_idempotency(tx, order_id.as_str())
            .map_err(|e| JournalError::Local(e.to_string()))?;
        rows.extend(found);
    }
    Ok(rows)
}

/// The ids of the orders placed by these stored ops (one that does not decode is refused
/// later, by the caller).
fn read_orders(rows: &[log::Stored]) -> Vec<String> {
    rows.iter()
        .filter_map(|row| decode_op(&row.body).ok())
        .filter_map(|op| match op.payload {
            Payload::OrderPlace { order_id, .. } | Payload::OrderShipToStore { order_id, .. } => {
                Some(order_id.as_str().to_string())
            }
            _ => None,
        })
        .collect()
}

fn unavailable(e: tokio_postgres::Error) -> JournalError {
    JournalError::Unavailable(e.to_string())
}

/// What one group commits to the shared log.
struct Group<'a> {
    actor: &'a ActorId,
    /// Own ops above it must be new to the log (below it they were read back from it by
    /// `begin_own`, or ingested by the tail).
    floor: u64,
    ops: &'a [Op],
    keys: &'a [log::IdempotencyRow],
    /// Requests for rights back the group's own transfers answer (`rights`).
    answers: &'a [rights::AnswerRow],
    /// The replica after applying `ops`.
    state: &'a State,
    jobs: Option<&'a dyn JobSource>,
}

/// The body of the group's PostgreSQL transaction: the ops, once, their keys and answers to
/// requests for rights back, the erasures' rewrites, the webhook jobs the newly stored ops
/// call for, and a wake-up for the processes tailing the log.
async fn commit_ops(tx: &Client, g: Group<'_>) -> Result<(), JournalError> {
    let stored = log::insert_ops(tx, g.ops).await.map_err(unavailable)?;
    let taken = log::insert_idempotency(tx, g.keys)
        .await
        .map_err(unavailable)?;
    if let Some(key) = taken.into_iter().next() {
        return Err(JournalError::KeyTaken(key));
    }
    let answered = rights::insert_answers(tx, g.answers)
        .await
        .map_err(unavailable)?;
    if let Some((actor, seq)) = answered.into_iter().next() {
        return Err(JournalError::Answered { actor, seq });
    }
    // A peer op already stored is a duplicate (another process, or a restore, got it first);
    // one of our own is a seq the log already gave to something else.
    if let Some(own) = g.ops.iter().find(|op| {
        &op.actor == g.actor
            && op.seq > g.floor
            && !stored.contains(&(op.actor.to_string(), op.seq))
    }) {
        return Err(JournalError::Behind {
            actor: own.actor.to_string(),
            seq: own.seq,
        });
    }
    for customer in g.ops.iter().filter_map(erased_by) {
        log::rewrite_erased(tx, g.state, customer)
            .await
            .map_err(unavailable)?;
    }
    if let (Some(source), false) = (g.jobs, stored.is_empty()) {
        // Only the transaction that stores an op queues what it calls for.
        let fresh: Vec<Op> = g
            .ops
            .iter()
            .filter(|op| stored.contains(&(op.actor.to_string(), op.seq)))
            .cloned()
            .collect();
        jobs::insert(tx, &source.jobs(&fresh, g.state))
            .await
            .map_err(unavailable)?;
    }
    if !stored.is_empty() {
        log::notify_tailers(tx).await.map_err(unavailable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::domain::erasure::PERSONAL_KINDS;

    #[test]
    fn the_erasure_rewrite_reads_exactly_the_kinds_that_carry_personal_data() {
        let migration = super::super::schema::MIGRATIONS[0].2;
        for kind in PERSONAL_KINDS {
            assert!(migration.contains(&format!("'{kind}'")), "{kind}");
        }
    }
}
