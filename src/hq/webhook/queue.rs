//! The webhook queue as people see it (the HQ console): how many events wait, how many of
//! those have failed at least once, how many were delivered, and the undelivered ones with
//! their last error. Read-only; bounded to `rows_max` rows.

use crate::store::pg::jobs::SharedQueue;
use crate::store::{Node, StoreError};

/// One undelivered event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    pub event_id: String,
    pub kind: String,
    pub created_ms: u64,
    pub attempts: u32,
    pub next_attempt_ms: u64,
    pub last_error: Option<String>,
}

/// Counts and the oldest undelivered events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSummary {
    pub pending: u64,
    /// Pending events that failed at least once.
    pub failing: u64,
    pub delivered: u64,
    /// The most recent error of any pending event.
    pub last_error: Option<String>,
    /// Undelivered events, oldest first, at most `rows_max`.
    pub rows: Vec<QueuedEvent>,
}

fn count(v: i64) -> u64 {
    v.max(0) as u64
}

/// The queue this process shows: PostgreSQL's shared one (`[storage] url`), else the file's.
pub async fn shown(
    node: &Node,
    shared: Option<&SharedQueue>,
    rows_max: usize,
) -> Result<QueueSummary, String> {
    let Some(shared) = shared else {
        return summary(node, rows_max).await.map_err(|e| e.to_string());
    };
    let s = shared.summary(rows_max).await.map_err(|e| e.to_string())?;
    Ok(QueueSummary {
        pending: s.pending,
        failing: s.failing,
        delivered: s.delivered,
        last_error: s.last_error,
        rows: s
            .rows
            .into_iter()
            .map(|r| QueuedEvent {
                event_id: r.event_id,
                kind: r.kind,
                created_ms: r.created_ms,
                attempts: r.attempts,
                next_attempt_ms: r.next_attempt_ms,
                last_error: r.last_error,
            })
            .collect(),
    })
}

/// Events not yet delivered, in the queue this process shows (0 when it cannot be read).
pub async fn depth(node: &Node, shared: Option<&SharedQueue>) -> u64 {
    match shared {
        Some(shared) => shared.depth().await.unwrap_or(0),
        None => super::queue_depth(node).await.unwrap_or(0),
    }
}

/// Read the file's queue.
pub async fn summary(node: &Node, rows_max: usize) -> Result<QueueSummary, StoreError> {
    node.query(move |c| {
        let (pending, failing, delivered) = c.query_row(
            "SELECT COALESCE(SUM(delivered_ms IS NULL), 0),
                    COALESCE(SUM(delivered_ms IS NULL AND attempts > 0), 0),
                    COALESCE(SUM(delivered_ms IS NOT NULL), 0)
             FROM hq_webhook_events",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )?;
        let last_error = c
            .query_row(
                "SELECT last_error FROM hq_webhook_events
                 WHERE delivered_ms IS NULL AND last_error IS NOT NULL
                 ORDER BY next_attempt_ms DESC LIMIT 1",
                [],
                |r| r.get::<_, String>(0),
            )
            .ok();
        let mut stmt = c.prepare(
            "SELECT event_id, type, created_ms, attempts, next_attempt_ms, last_error
             FROM hq_webhook_events WHERE delivered_ms IS NULL ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([rows_max as i64], |r| {
                Ok(QueuedEvent {
                    event_id: r.get(0)?,
                    kind: r.get(1)?,
                    created_ms: count(r.get(2)?),
                    attempts: count(r.get(3)?).min(u64::from(u32::MAX)) as u32,
                    next_attempt_ms: count(r.get(4)?),
                    last_error: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(QueueSummary {
            pending: count(pending),
            failing: count(failing),
            delivered: count(delivered),
            last_error,
            rows,
        })
    })
    .await
}
