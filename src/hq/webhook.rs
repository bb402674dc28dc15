//! The shop's webhook: signed, typed events delivered at least once, in order of creation.
//!
//! Events are `order.ship_to_store` (with `ready_by`), `order.ready`, `order.handed_over`,
//! `order.cancelled` (from the orders HQ's
//! state holds) and `cart.abandoned` (a cart unchanged for `abandoned_cart_hours`, once per
//! cart change). Each is queued durably in `hq_webhook_events` with a unique event id and a
//! dedup key, and a worker POSTs its body, signed (`signature`), until the shop answers 2xx,
//! backing off exponentially up to a bound. The body is fixed at queueing, so every retry
//! carries the same bytes and event id; only the signature's timestamp changes.
//!
//! Invariant: one row per dedup key, never deleted, so an event is delivered at most once
//! after a 2xx, and a crash between applying an op and queueing its event is repaired at
//! start by `recover`, which queues whatever the state calls for and has no row yet.

mod event;
pub mod pg;
pub mod queue;
pub mod signature;

use crate::domain::{OrderId, Payload};
use crate::store::{Node, NodeEvent, StoreError};
pub use event::Event;
use rusqlite::{params, Transaction};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;

/// Jobs fetched per round.
const BATCH_MAX: usize = 16;
/// Longest wait for the shop's answer.
const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Longest idle wait between checks of the queue.
const IDLE_WAIT_MS: u64 = 1_000;
/// How often carts are checked for abandonment.
const ABANDONED_SCAN_MS: u64 = 60_000;

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    pub backoff_ms_min: u64,
    pub backoff_ms_max: u64,
    /// Shared secret of the signatures.
    pub secret: Vec<u8>,
    /// Queue `cart.abandoned` for carts unchanged this long; none when `None`.
    pub abandoned_cart_ms: Option<u64>,
}

impl WebhookSettings {
    /// Delay before attempt `attempts + 1`: doubling from the minimum, capped at the maximum.
    pub fn backoff_ms(&self, attempts: u32) -> u64 {
        let factor = 1u64.checked_shl(attempts.min(40)).unwrap_or(u64::MAX);
        self.backoff_ms_min
            .saturating_mul(factor)
            .min(self.backoff_ms_max)
    }
}

/// A fresh event id: `evt_` and 32 hex digits.
fn new_event_id() -> String {
    format!("evt_{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// A new event id and the body every delivery of `event` carries.
fn event_body(event: &Event, now_ms: u64) -> (String, String) {
    let id = new_event_id();
    let mut body = serde_json::Map::new();
    body.insert("id".into(), json!(id));
    body.insert("type".into(), json!(event.kind));
    body.insert("created_ms".into(), json!(now_ms));
    for (k, v) in &event.fields {
        body.entry(k.clone()).or_insert_with(|| v.clone());
    }
    (id, Value::Object(body).to_string())
}

/// Queue one event (no-op when its dedup key is queued or delivered already).
pub fn enqueue(tx: &Transaction, event: &Event, now_ms: u64) -> rusqlite::Result<usize> {
    let (id, body) = event_body(event, now_ms);
    tx.execute(
        "INSERT OR IGNORE INTO hq_webhook_events (event_id, type, dedup, body, created_ms, next_attempt_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![id, event.kind, event.dedup, body, now_ms as i64],
    )
}

/// Events not yet delivered.
pub async fn queue_depth(node: &Node) -> Result<u64, StoreError> {
    node.query(|conn| {
        conn.query_row(
            "SELECT COUNT(*) FROM hq_webhook_events WHERE delivered_ms IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )
    })
    .await
    .map(|n| n.max(0) as u64)
}

/// Queue every event the state calls for and that has no row yet (start-up repair, and the
/// periodic abandoned-cart scan when `abandoned_cart_ms` is set).
pub async fn recover(node: &Node, abandoned_cart_ms: Option<u64>) -> Result<usize, StoreError> {
    let now = crate::store::now_ms();
    let events: Vec<Event> = node.read(|r| {
        let state = r.state();
        let mut out: Vec<Event> = state
            .orders
            .values()
            .flat_map(event::order_events)
            .collect();
        if let Some(idle) = abandoned_cart_ms {
            out.extend(event::abandoned_cart_events(state, now, idle));
        }
        out
    });
    enqueue_all(node, events).await
}

/// Queue `cart.abandoned` for carts idle `idle_ms` (the periodic scan; orders are followed
/// commit by commit instead).
async fn scan_carts(node: &Node, idle_ms: Option<u64>) -> Result<usize, StoreError> {
    let Some(idle) = idle_ms else { return Ok(0) };
    let now = crate::store::now_ms();
    let events = node.read(|r| event::abandoned_cart_events(r.state(), now, idle));
    enqueue_all(node, events).await
}

async fn enqueue_all(node: &Node, events: Vec<Event>) -> Result<usize, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    node.write(move |tx| {
        let now = crate::store::now_ms();
        let mut n = 0;
        for e in &events {
            n += enqueue(tx, e, now)?;
        }
        Ok(n)
    })
    .await
}

/// Start the enqueuer (follows the node's commits) and the delivery worker. Both stop when
/// `shutdown` turns true.
pub fn spawn(
    node: Node,
    settings: WebhookSettings,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let wake = Arc::new(Notify::new());
    let events = node.subscribe();
    let enqueuer = tokio::spawn(follow_commits(
        node.clone(),
        settings.abandoned_cart_ms,
        events,
        wake.clone(),
        shutdown.clone(),
    ));
    let worker = tokio::spawn(deliver(node, settings, wake, shutdown));
    tokio::spawn(async move {
        let _ = enqueuer.await;
        let _ = worker.await;
    })
}

/// Events called for by the orders these ops touched.
/// An order that finished and left memory since (`store::order_history`) is read from its
/// history row, so its event is not lost to the eviction.
async fn order_events_of(node: &Node, ops: &[crate::domain::Op]) -> Vec<Event> {
    let (mut found, gone, evictions) = node.read(|r| {
        let state = r.state();
        let gone: Vec<OrderId> = touched(ops)
            .into_iter()
            .filter(|id| !state.orders.contains_key(*id))
            .cloned()
            .collect();
        (order_events_in(state, ops), gone, state.evictions())
    });
    if gone.is_empty() {
        return found;
    }
    let loaded = node
        .query(move |c| crate::store::order_history::load_orders(c, &gone, evictions))
        .await;
    match loaded {
        Ok(orders) => found.extend(orders.iter().flat_map(event::order_events)),
        Err(e) => tracing::warn!(error = %e, "evicted orders not read for their events"),
    }
    found
}

/// The orders `ops` touched that may call for an event (a pick calls for none).
fn touched(ops: &[crate::domain::Op]) -> BTreeSet<&OrderId> {
    ops.iter()
        .filter(|op| !matches!(op.payload, Payload::OrderPick { .. }))
        .filter_map(|op| op.payload.order())
        .collect()
}

/// Events called for by the orders `ops` touched, as `state` has them.
fn order_events_in(state: &crate::domain::State, ops: &[crate::domain::Op]) -> Vec<Event> {
    touched(ops)
        .into_iter()
        .filter_map(|id| state.orders.get(id))
        .flat_map(event::order_events)
        .collect()
}

async fn follow_commits(
    node: Node,
    abandoned_cart_ms: Option<u64>,
    mut events: broadcast::Receiver<NodeEvent>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Err(e) = recover(&node, abandoned_cart_ms).await {
        tracing::error!(error = %e, "webhook: start-up scan failed");
    }
    wake.notify_one();
    let mut scan = tokio::time::interval(Duration::from_millis(ABANDONED_SCAN_MS));
    loop {
        let queued = tokio::select! {
            _ = shutdown.changed() => return,
            _ = scan.tick(), if abandoned_cart_ms.is_some() => scan_carts(&node, abandoned_cart_ms).await,
            event = events.recv() => match event {
                Ok(NodeEvent::Applied { ops, .. }) => {
                    let found = order_events_of(&node, &ops).await;
                    enqueue_all(&node, found).await
                }
                // Missed commits: the scan finds whatever they would have queued.
                Err(broadcast::error::RecvError::Lagged(_)) => recover(&node, abandoned_cart_ms).await,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        match queued {
            Ok(n) if n > 0 => wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "webhook: cannot queue an event"),
        }
    }
}

struct Job {
    row: i64,
    event_id: String,
    kind: String,
    body: String,
    attempts: u32,
}

async fn due_jobs(node: &Node, now: u64) -> Result<(Vec<Job>, Option<u64>), StoreError> {
    node.query(move |conn| {
        let mut stmt = conn.prepare(
            "SELECT id, event_id, type, body, attempts, next_attempt_ms FROM hq_webhook_events
             WHERE delivered_ms IS NULL ORDER BY next_attempt_ms, id LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![BATCH_MAX as i64], |r| {
            Ok((
                Job {
                    row: r.get(0)?,
                    event_id: r.get(1)?,
                    kind: r.get(2)?,
                    body: r.get(3)?,
                    attempts: r.get::<_, i64>(4)?.clamp(0, i64::from(u32::MAX)) as u32,
                },
                r.get::<_, i64>(5)?.max(0) as u64,
            ))
        })?;
        let mut due = Vec::new();
        let mut next = None;
        for row in rows {
            let (job, at) = row?;
            if at <= now {
                due.push(job);
            } else {
                next = Some(next.map_or(at, |n: u64| n.min(at)));
            }
        }
        Ok((due, next))
    })
    .await
}

async fn deliver(
    node: Node,
    settings: WebhookSettings,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook: cannot build the http client");
            return;
        }
    };
    loop {
        let now = crate::store::now_ms();
        let (due, next) = match due_jobs(&node, now).await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "webhook: cannot read the queue");
                (Vec::new(), Some(now + IDLE_WAIT_MS))
            }
        };
        let busy = !due.is_empty();
        for job in due {
            let outcome = post(&client, &settings, &job).await;
            let backoff = settings.backoff_ms(job.attempts);
            let result = node
                .write(move |tx| {
                    let now = crate::store::now_ms();
                    match outcome {
                        Ok(()) => tx.execute(
                            "UPDATE hq_webhook_events SET delivered_ms = ?2, attempts = attempts + 1, last_error = NULL
                             WHERE id = ?1",
                            params![job.row, now as i64],
                        ),
                        Err(err) => tx.execute(
                            "UPDATE hq_webhook_events SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3
                             WHERE id = ?1",
                            params![job.row, (now + backoff) as i64, err],
                        ),
                    }
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "webhook: cannot record a delivery attempt");
            }
        }
        if busy {
            continue;
        }
        let wait = next
            .map(|at| at.saturating_sub(crate::store::now_ms()))
            .unwrap_or(IDLE_WAIT_MS)
            .min(IDLE_WAIT_MS);
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
        }
    }
}

async fn post(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    job: &Job,
) -> Result<(), String> {
    let now_s = crate::store::now_ms() / 1_000;
    let signed = signature::sign(&settings.secret, now_s, job.body.as_bytes());
    let sent = client
        .post(&settings.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(signature::SIGNATURE_HEADER, signed)
        .header(signature::EVENT_ID_HEADER, &job.event_id)
        .header(signature::EVENT_TYPE_HEADER, &job.kind)
        .body(job.body.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {
            tracing::info!(event = %job.event_id, kind = %job.kind, "webhook delivered");
            Ok(())
        }
        Ok(r) => {
            tracing::warn!(event = %job.event_id, kind = %job.kind, status = %r.status(), attempt = job.attempts + 1, "webhook refused");
            Err(format!("http {}", r.status()))
        }
        Err(e) => {
            tracing::warn!(event = %job.event_id, kind = %job.kind, error = %e, attempt = job.attempts + 1, "webhook unreachable");
            Err(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests;
