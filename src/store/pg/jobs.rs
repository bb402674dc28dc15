//! Webhook jobs in PostgreSQL (`hq_webhook_jobs`), shared by every HQ process on the log.
//!
//! A job is queued in the same PostgreSQL transaction as the op that calls for it: the
//! journal asks its `JobSource` which jobs the ops it newly stored call for, and inserts them
//! with the ops (one row per dedup key, so a job is queued once whichever process stores the
//! op). Any process may send: it takes one due job at a time with `FOR UPDATE SKIP LOCKED`,
//! holds the row lock while it posts, and records the outcome in that transaction. A process
//! killed mid-send loses its connection, PostgreSQL rolls the transaction back and releases
//! the row, and another process (or the restarted one) sends the job again: at least once.

use crate::domain::{Op, State};
use tokio_postgres::GenericClient;

/// The `LISTEN`/`NOTIFY` channel of newly queued jobs.
pub const JOBS_CHANNEL: &str = "storenode_webhook";

/// A job to queue: the event's id, type, dedup key and the body every attempt sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub event_id: String,
    pub kind: String,
    pub dedup: String,
    pub body: String,
    pub created_ms: u64,
    /// Already delivered (a job copied from an HQ that ran on SQLite).
    pub delivered: bool,
}

/// Which jobs ops call for, given the state after applying them (hq's webhook events; the
/// store layer only carries them).
pub trait JobSource: Send + Sync {
    fn jobs(&self, ops: &[Op], state: &State) -> Vec<NewJob>;
}

/// A due job, locked by the caller's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenJob {
    pub id: i64,
    pub event_id: String,
    pub kind: String,
    pub body: String,
    pub attempts: u32,
}

/// Queue `jobs`, skipping dedup keys already queued; wakes the senders when any is new.
/// Returns how many were queued.
pub async fn insert(
    tx: &impl GenericClient,
    jobs: &[NewJob],
) -> Result<u64, tokio_postgres::Error> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = jobs.iter().map(|j| j.event_id.as_str()).collect();
    let kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    let dedups: Vec<&str> = jobs.iter().map(|j| j.dedup.as_str()).collect();
    let bodies: Vec<&str> = jobs.iter().map(|j| j.body.as_str()).collect();
    let created: Vec<i64> = jobs
        .iter()
        .map(|j| i64::try_from(j.created_ms).unwrap_or(i64::MAX))
        .collect();
    let delivered: Vec<bool> = jobs.iter().map(|j| j.delivered).collect();
    let n = tx
        .execute(
            "INSERT INTO hq_webhook_jobs (event_id, type, dedup, body, created_ms, delivered_at)
             SELECT i, k, d, b, c, CASE WHEN v THEN now() END
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::bool[])
                  AS t(i, k, d, b, c, v)
             ON CONFLICT DO NOTHING",
            &[&ids, &kinds, &dedups, &bodies, &created, &delivered],
        )
        .await?;
    if n > 0 {
        tx.execute("SELECT pg_notify($1, '')", &[&JOBS_CHANNEL])
            .await?;
    }
    Ok(n)
}

/// Lock the next due job no other transaction holds (`FOR UPDATE SKIP LOCKED`).
pub async fn take_due(tx: &impl GenericClient) -> Result<Option<TakenJob>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            "SELECT id, event_id, type, body, attempts FROM hq_webhook_jobs
             WHERE delivered_at IS NULL AND next_attempt_at <= now()
             ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            &[],
        )
        .await?;
    Ok(row.map(|r| TakenJob {
        id: r.get(0),
        event_id: r.get(1),
        kind: r.get(2),
        body: r.get(3),
        attempts: r.get::<_, i32>(4).max(0) as u32,
    }))
}

/// Record a 2xx for a taken job, sent by `by` (a process name, for people).
pub async fn delivered(
    tx: &impl GenericClient,
    id: i64,
    by: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE hq_webhook_jobs SET delivered_at = now(), delivered_by = $2,
                attempts = attempts + 1, last_error = NULL
         WHERE id = $1",
        &[&id, &by],
    )
    .await
    .map(|_| ())
}

/// Record a failed attempt; the job is due again in `backoff_ms`.
pub async fn failed(
    tx: &impl GenericClient,
    id: i64,
    backoff_ms: u64,
    error: &str,
) -> Result<(), tokio_postgres::Error> {
    let backoff = i64::try_from(backoff_ms).unwrap_or(i64::MAX) as f64 / 1_000.0;
    tx.execute(
        "UPDATE hq_webhook_jobs SET attempts = attempts + 1, last_error = $3,
                next_attempt_at = now() + make_interval(secs => $2)
         WHERE id = $1",
        &[&id, &backoff, &error],
    )
    .await
    .map(|_| ())
}

/// Milliseconds until the next undelivered job is due (0: one is due now); `None`: none left.
pub async fn next_due_ms(
    client: &impl GenericClient,
) -> Result<Option<u64>, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT (extract(epoch FROM min(next_attempt_at) - now()) * 1000)::int8
             FROM hq_webhook_jobs WHERE delivered_at IS NULL",
            &[],
        )
        .await?;
    Ok(row.get::<_, Option<i64>>(0).map(|ms| ms.max(0) as u64))
}

/// Queue counts for the console and `/metrics`: (pending, failing, delivered).
pub async fn counts(client: &impl GenericClient) -> Result<(u64, u64, u64), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE delivered_at IS NULL),
                    count(*) FILTER (WHERE delivered_at IS NULL AND attempts > 0),
                    count(*) FILTER (WHERE delivered_at IS NOT NULL)
             FROM hq_webhook_jobs",
            &[],
        )
        .await?;
    let n = |i: usize| row.get::<_, i64>(i).max(0) as u64;
    Ok((n(0), n(1), n(2)))
}

/// One undelivered job as people see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingJob {
    pub event_id: String,
    pub kind: String,
    pub created_ms: u64,
    pub attempts: u32,
    /// When it is due next, ms since the epoch.
    pub next_attempt_ms: u64,
    pub last_error: Option<String>,
}

/// The queue for the console and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub pending: u64,
    pub failing: u64,
    pub delivered: u64,
    pub last_error: Option<String>,
    /// Undelivered jobs, oldest first.
    pub rows: Vec<PendingJob>,
}

/// Counts, the latest error and the oldest `rows_max` undelivered jobs.
pub async fn summary(
    client: &impl GenericClient,
    rows_max: usize,
) -> Result<Summary, tokio_postgres::Error> {
    let (pending, failing, delivered) = counts(client).await?;
    let last_error = client
        .query_opt(
            "SELECT last_error FROM hq_webhook_jobs
             WHERE delivered_at IS NULL AND last_error IS NOT NULL
             ORDER BY next_attempt_at DESC LIMIT 1",
            &[],
        )
        .await?
        .map(|r| r.get(0));
    let limit = i64::try_from(rows_max).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT event_id, type, created_ms, attempts,
                    (extract(epoch FROM next_attempt_at) * 1000)::int8, last_error
             FROM hq_webhook_jobs WHERE delivered_at IS NULL ORDER BY id LIMIT $1",
            &[&limit],
        )
        .await?
        .iter()
        .map(|r| PendingJob {
            event_id: r.get(0),
            kind: r.get(1),
            created_ms: r.get::<_, i64>(2).max(0) as u64,
            attempts: r.get::<_, i32>(3).max(0) as u32,
            next_attempt_ms: r.get::<_, i64>(4).max(0) as u64,
            last_error: r.get(5),
        })
        .collect();
    Ok(Summary {
        pending,
        failing,
        delivered,
        last_error,
        rows,
    })
}

/// The shared queue as the console and `/metrics` read it (cheap to clone).
#[derive(Clone)]
pub struct SharedQueue {
    conn: std::sync::Arc<super::link::Conn>,
}

impl SharedQueue {
    pub fn new(url: &str) -> Result<SharedQueue, super::PgError> {
        Ok(SharedQueue {
            conn: std::sync::Arc::new(super::link::Conn::new(url)?),
        })
    }

    pub async fn summary(&self, rows_max: usize) -> Result<Summary, super::PgError> {
        self.conn.run(async |c| summary(c, rows_max).await).await
    }

    /// Jobs not yet delivered.
    pub async fn depth(&self) -> Result<u64, super::PgError> {
        self.conn.run(async |c| counts(c).await.map(|n| n.0)).await
    }
}
