//! The ready webhook: when HQ applies `Effect::OrderReady`, a job is queued durably in
//! `hq_webhook_jobs` and a worker POSTs `{order, store, status: "ready", pickup_code}` to the
//! shop until it answers 2xx, backing off exponentially up to a bound.
//!
//! Invariant: one row per order (primary key), never deleted, so an order is delivered at most
//! once after a 2xx, and a crash between applying the op and queueing the job is repaired at
//! start by `recover`, which queues every order that was ever ready and has no row yet.

use crate::domain::Effect;
use crate::store::{Node, NodeEvent, StoreError};
use rusqlite::{params, Transaction};
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

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    pub backoff_ms_min: u64,
    pub backoff_ms_max: u64,
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

/// Queue the notification of one ready order (no-op if it is queued or delivered already).
pub fn enqueue(
    tx: &Transaction,
    order: &str,
    store: &str,
    pickup_code: &str,
    now_ms: u64,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT OR IGNORE INTO hq_webhook_jobs (order_id, store, pickup_code, attempts, next_attempt_ms)
         VALUES (?1, ?2, ?3, 0, ?4)",
        params![order, store, pickup_code, now_ms as i64],
    )
}

/// Notifications not yet delivered.
pub async fn queue_depth(node: &Node) -> Result<u64, StoreError> {
    node.query(|conn| {
        conn.query_row(
            "SELECT COUNT(*) FROM hq_webhook_jobs WHERE delivered_ms IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )
    })
    .await
    .map(|n| n.max(0) as u64)
}

/// Queue every order that was ever ready and has no job yet (start-up repair).
pub async fn recover(node: &Node) -> Result<usize, StoreError> {
    let ready: Vec<(String, String, String)> = node.read(|r| {
        r.state()
            .orders
            .values()
            .filter(|o| o.was_ready)
            .map(|o| (o.id.to_string(), o.store.to_string(), o.pickup_code.clone()))
            .collect()
    });
    enqueue_all(node, ready).await
}

async fn enqueue_all(
    node: &Node,
    jobs: Vec<(String, String, String)>,
) -> Result<usize, StoreError> {
    if jobs.is_empty() {
        return Ok(0);
    }
    node.write(move |tx| {
        let now = crate::store::now_ms();
        let mut n = 0;
        for (order, store, code) in &jobs {
            n += enqueue(tx, order, store, code, now)?;
        }
        Ok(n)
    })
    .await
}

/// Start the enqueuer (follows the node's effects) and the delivery worker. Both stop when
/// `shutdown` turns true.
pub fn spawn(
    node: Node,
    settings: WebhookSettings,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let wake = Arc::new(Notify::new());
    let events = node.subscribe();
    let enqueuer = tokio::spawn(follow_effects(
        node.clone(),
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

async fn follow_effects(
    node: Node,
    mut events: broadcast::Receiver<NodeEvent>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Err(e) = recover(&node).await {
        tracing::error!(error = %e, "webhook: start-up scan failed");
    }
    wake.notify_one();
    loop {
        let event = tokio::select! {
            _ = shutdown.changed() => return,
            event = events.recv() => event,
        };
        let queued = match event {
            Ok(NodeEvent::Applied { effects, .. }) => {
                let jobs: Vec<(String, String, String)> = effects
                    .iter()
                    .filter_map(|e| match e {
                        Effect::OrderReady { order, store } => Some((order.clone(), store.clone())),
                        _ => None,
                    })
                    .map(|(order, store)| {
                        let code = node.read(|r| {
                            r.state()
                                .orders
                                .get(&order)
                                .map(|o| o.pickup_code.clone())
                                .unwrap_or_default()
                        });
                        (order.to_string(), store.to_string(), code)
                    })
                    .collect();
                enqueue_all(&node, jobs).await
            }
            // Missed events: the scan finds whatever they would have queued.
            Err(broadcast::error::RecvError::Lagged(_)) => recover(&node).await,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        match queued {
            Ok(n) if n > 0 => wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "webhook: cannot queue a ready notification"),
        }
    }
}

struct Job {
    order: String,
    store: String,
    code: String,
    attempts: u32,
}

async fn due_jobs(node: &Node, now: u64) -> Result<(Vec<Job>, Option<u64>), StoreError> {
    node.query(move |conn| {
        let mut stmt = conn.prepare(
            "SELECT order_id, store, pickup_code, attempts, next_attempt_ms FROM hq_webhook_jobs
             WHERE delivered_ms IS NULL ORDER BY next_attempt_ms LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![BATCH_MAX as i64], |r| {
            Ok((
                Job {
                    order: r.get(0)?,
                    store: r.get(1)?,
                    code: r.get(2)?,
                    attempts: r.get::<_, i64>(3)?.clamp(0, i64::from(u32::MAX)) as u32,
                },
                r.get::<_, i64>(4)?.max(0) as u64,
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
            let outcome = post(&client, &settings.url, &job).await;
            let backoff = settings.backoff_ms(job.attempts);
            let result = node
                .write(move |tx| {
                    let now = crate::store::now_ms();
                    match outcome {
                        Ok(()) => tx.execute(
                            "UPDATE hq_webhook_jobs SET delivered_ms = ?2, attempts = attempts + 1, last_error = NULL
                             WHERE order_id = ?1",
                            params![job.order, now as i64],
                        ),
                        Err(err) => tx.execute(
                            "UPDATE hq_webhook_jobs SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3
                             WHERE order_id = ?1",
                            params![job.order, (now + backoff) as i64, err],
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

async fn post(client: &reqwest::Client, url: &str, job: &Job) -> Result<(), String> {
    let body = serde_json::json!({
        "order": job.order, "store": job.store, "status": "ready", "pickup_code": job.code,
    });
    match client.post(url).json(&body).send().await {
        Ok(r) if r.status().is_success() => {
            tracing::info!(order = %job.order, "webhook delivered");
            Ok(())
        }
        Ok(r) => {
            tracing::warn!(order = %job.order, status = %r.status(), attempt = job.attempts + 1, "webhook refused");
            Err(format!("http {}", r.status()))
        }
        Err(e) => {
            tracing::warn!(order = %job.order, error = %e, attempt = job.attempts + 1, "webhook unreachable");
            Err(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests;
