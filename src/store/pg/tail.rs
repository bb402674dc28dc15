//! Tailing the shared op log, so every HQ process's replica holds what any of them committed.
//!
//! Other processes' ops are read in `(xid, gseq)` order after a cursor and ingested into the
//! node. The cursor only moves past a row once every transaction older than the row's has
//! ended (`xid < pg_snapshot_xmin`), so a row of a transaction still in flight is never
//! skipped; rows after it are ingested at once anyway and read again later (the replica drops
//! what it holds). HQ's own actor is read by seq instead (`log::actor_ops_from`: its ops are
//! written one transaction at a time under the actor's lock, so seq order has no holes), and
//! the Idempotency-Keys of the orders among them are copied into the file with them. A round
//! runs when `NOTIFY storenode_ops` arrives (every journal commit that stored something sends
//! it), every `TAIL_POLL_MS` (a cursor held back by a long transaction moves on), and before
//! the HQ API answers (`catch_up`: a read sees every op committed before it arrived).

use super::log::{self, TailCursor, TAIL_CHANNEL};
use super::{target, PgError};
use crate::domain::{ActorId, Op, Payload};
use crate::store::{decode_op, Node};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

/// Ops read per round trip.
pub const TAIL_CHUNK_OPS: i64 = 2_000;
/// Longest wait between rounds without a notification.
pub const TAIL_POLL_MS: u64 = 1_000;
/// Longest wait for a connection before a round fails.
pub const TAIL_CONNECT_TIMEOUT_S: u64 = 2;

/// What one round brought in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caught {
    /// Ops new to this replica.
    pub applied: usize,
    /// Idempotency-Keys copied into the file.
    pub keys: usize,
}

struct Cursor {
    client: Option<Client>,
    at: TailCursor,
}

/// A node fed from the shared log (cheap to clone).
#[derive(Clone)]
pub struct Tail {
    node: Node,
    config: Config,
    actor: ActorId,
    cursor: Arc<Mutex<Cursor>>,
    wake: Arc<Notify>,
}

impl Tail {
    /// Where tailing must start for a node opened (`open_node`) after this call.
    pub async fn start_position(url: &str) -> Result<TailCursor, PgError> {
        let config = super::parse_url(url)?;
        let client = super::connect_retrying(&config, None).await?;
        log::tail_start(&client).await.map_err(PgError::query)
    }

    /// A tail of the log at `url` into `node`, from `from` (`start_position`).
    pub fn new(node: Node, url: &str, from: TailCursor) -> Result<Tail, PgError> {
        let mut config = super::parse_url(url)?;
        config.connect_timeout(Duration::from_secs(TAIL_CONNECT_TIMEOUT_S));
        let actor = node.read(|r| r.actor().clone());
        Ok(Tail {
            node,
            config,
            actor,
            cursor: Arc::new(Mutex::new(Cursor {
                client: None,
                at: from,
            })),
            wake: Arc::new(Notify::new()),
        })
    }

    /// Run rounds until `shutdown`: on every notification, and every `TAIL_POLL_MS`.
    pub fn spawn(&self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let tail = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = tail.catch_up().await {
                    tracing::warn!(error = %e, "cannot tail the shared op log; retrying");
                }
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tail.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(TAIL_POLL_MS)) => {}
                }
            }
        })
    }

    /// One round: bring the replica level with everything committed to the log so far.
    pub async fn catch_up(&self) -> Result<Caught, PgError> {
        let mut cursor = self.cursor.lock().await;
        if cursor.client.as_ref().is_none_or(Client::is_closed) {
            cursor.client = Some(self.listen().await?);
        }
        let result = self.round(&mut cursor).await;
        if result.is_err() {
            cursor.client = None; // reconnect next time
        }
        result
    }

    async fn round(&self, cursor: &mut Cursor) -> Result<Caught, PgError> {
        let Some(client) = cursor.client.as_ref() else {
            return Err(PgError::Query("not connected".to_string()));
        };
        let mut caught = Caught::default();
        let mut scan = cursor.at;
        let mut settled_prefix = true;
        loop {
            let rows = log::tail_after(client, scan, TAIL_CHUNK_OPS)
                .await
                .map_err(PgError::query)?;
            let full = rows.len() as i64 == TAIL_CHUNK_OPS;
            let mut ops = Vec::new();
            for row in rows {
                settled_prefix &= row.settled;
                if settled_prefix {
                    cursor.at = row.at;
                }
                scan = row.at;
                if row.op.actor == self.actor.as_str()
                    || self.node.read(|r| {
                        ActorId::parse(&row.op.actor)
                            .is_ok_and(|a| r.version().contains(&a, row.op.seq))
                    })
                {
                    continue;
                }
                ops.push(decode(&row.op)?);
            }
            caught.applied += self.ingest(ops).await?;
            if !full {
                break;
            }
        }
        // HQ's own actor, by seq (other processes issue ops as it too).
        loop {
            let next = self.node.read(|r| r.next_seq());
            let rows = log::actor_ops_from(client, &self.actor, next, TAIL_CHUNK_OPS)
                .await
                .map_err(PgError::query)?;
            if rows.is_empty() {
                break;
            }
            let ops = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
            let orders: Vec<String> = ops.iter().filter_map(order_id).collect();
            // Keys first: a file holding one of its actor's orders holds the order's key, so
            // `begin_own`, which reads keys only for the ops the file lacks, misses none.
            if !orders.is_empty() {
                let keys = log::idempotency_of(client, &orders)
                    .await
                    .map_err(PgError::query)?;
                caught.keys += self
                    .node
                    .write(move |tx| log::restore_local_idempotency(tx, &keys))
                    .await?;
            }
            caught.applied += self.ingest(ops).await?;
        }
        Ok(caught)
    }

    async fn ingest(&self, ops: Vec<Op>) -> Result<usize, PgError> {
        if ops.is_empty() {
            return Ok(0);
        }
        let ingested = self.node.ingest(ops).await?;
        for (id, e) in &ingested.rejected {
            tracing::warn!(actor = %id.actor, seq = id.seq, error = %e, "an op of the shared log does not apply here");
        }
        Ok(ingested.applied)
    }

    /// A connection listening on the log's channel; each notification wakes the tail.
    async fn listen(&self) -> Result<Client, PgError> {
        let (client, mut connection) =
            self.config
                .connect(NoTls)
                .await
                .map_err(|e| PgError::Unreachable {
                    target: target(&self.config),
                    detail: e.to_string(),
                })?;
        let wake = self.wake.clone();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => wake.notify_one(),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "shared op log tail connection lost");
                        break;
                    }
                }
            }
            wake.notify_one();
        });
        client
            .batch_execute(&format!("LISTEN {TAIL_CHANNEL}"))
            .await
            .map_err(PgError::query)?;
        Ok(client)
    }
}

fn decode(row: &log::Stored) -> Result<Op, PgError> {
    decode_op(&row.body).map_err(|source| PgError::Codec {
        actor: row.actor.clone(),
        seq: row.seq,
        source,
    })
}

fn order_id(op: &Op) -> Option<String> {
    match &op.payload {
        Payload::OrderPlace { order_id, .. } | Payload::OrderShipToStore { order_id, .. } => {
            Some(order_id.as_str().to_string())
        }
        _ => None,
    }
}
