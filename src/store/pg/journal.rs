//! `PgJournal`: the writer's `Journal` on PostgreSQL.
//!
//! Runs on the writer thread with a current-thread runtime of its own (created there, so it is
//! never dropped inside async code) and one connection, opened on first use and again after
//! any failure: while PostgreSQL is down every group fails fast with `Unavailable`, nothing
//! is acknowledged, and the first group after it returns reconnects.

use super::log;
use crate::domain::{ActorId, Op, Payload, State};
use crate::store::erasure::erased_by;
use crate::store::journal::{Journal, JournalError};
use tokio_postgres::{Client, Config, NoTls};

/// Longest wait for a connection before a group is refused.
pub const CONNECT_TIMEOUT_S: u64 = 2;

/// The shared op log as the writer sees it.
pub struct PgJournal {
    config: Config,
    actor: ActorId,
    rt: Option<tokio::runtime::Runtime>,
    client: Option<Client>,
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
        }
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
}

impl Journal for PgJournal {
    fn commit(
        &mut self,
        tx: &rusqlite::Transaction,
        ops: &[Op],
        state: &State,
    ) -> Result<(), JournalError> {
        let keys = idempotency_rows(tx, ops)?;
        let config = self.config.clone();
        let actor = self.actor.clone();
        let mut client = self.client.take();
        let rt = self.runtime()?;
        let result = rt.block_on(async {
            if client.as_ref().is_none_or(Client::is_closed) {
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
            commit_ops(c, &actor, ops, &keys, state).await
        });
        if !matches!(result, Err(JournalError::Unavailable(_))) {
            self.client = client; // keep a working connection
        }
        result
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
        let Payload::OrderPlace { order_id, .. } = &op.payload else {
            continue;
        };
        let found = log::local_idempotency(tx, order_id.as_str())
            .map_err(|e| JournalError::Local(e.to_string()))?;
        rows.extend(found);
    }
    Ok(rows)
}

fn unavailable(e: tokio_postgres::Error) -> JournalError {
    JournalError::Unavailable(e.to_string())
}

/// One PostgreSQL transaction: the ops, once, and the erasures' rewrites.
async fn commit_ops(
    client: &mut Client,
    actor: &ActorId,
    ops: &[Op],
    keys: &[log::IdempotencyRow],
    state: &State,
) -> Result<(), JournalError> {
    let tx = client.transaction().await.map_err(unavailable)?;
    let stored = log::insert_ops(&tx, ops).await.map_err(unavailable)?;
    let taken = log::insert_idempotency(&tx, keys)
        .await
        .map_err(unavailable)?;
    if let Some(key) = taken.into_iter().next() {
        return Err(JournalError::KeyTaken(key));
    }
    // A peer op already stored is a duplicate (another process, or a restore, got it first);
    // one of our own is a seq the log already gave to something else.
    if let Some(own) = ops
        .iter()
        .find(|op| &op.actor == actor && !stored.contains(&(op.actor.to_string(), op.seq)))
    {
        return Err(JournalError::Behind {
            actor: own.actor.to_string(),
            seq: own.seq,
        });
    }
    for customer in ops.iter().filter_map(erased_by) {
        log::rewrite_erased(&tx, state, customer)
            .await
            .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)
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
