//! The durable print queue: jobs live in SQLite (`print_job`, migrations/0002) until the
//! printer accepted every byte, so a receipt survives a printer that is off, a cable that is
//! out, or a node restart.
//!
//! Calling protocol: `enqueue` (then wake the worker) -> the worker takes `due_jobs`, sends
//! each, and calls `mark_printed` only after the transport flushed it, or `mark_failed`, which
//! schedules the next attempt with bounded exponential backoff. `reprint` enqueues a copy.
//! Times are milliseconds since the Unix epoch, passed in by the caller.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::devices::printer::PrinterTransport;

/// Largest job accepted (a receipt with a QR is a few KiB).
pub const PAYLOAD_BYTES_MAX: usize = 1024 * 1024;
/// Jobs taken per round of the worker.
pub const DUE_BATCH_MAX: u32 = 16;
/// Rows returned by `list`, at most.
pub const LIST_ROWS_MAX: u32 = 500;
/// Longest error text stored per job.
const ERROR_CHARS_MAX: usize = 300;
/// How often an idle worker looks for jobs enqueued without a wake-up.
pub const IDLE_POLL_MS: u64 = 2_000;

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The database refused the statement.
    #[error("print queue database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// The job is larger than [`PAYLOAD_BYTES_MAX`].
    #[error("print job has {0} bytes, at most {PAYLOAD_BYTES_MAX} allowed")]
    PayloadTooLarge(usize),
    /// No job has this id.
    #[error("no print job {0}")]
    UnknownJob(i64),
    /// The node's writer or reader failed (the worker goes through `Node`).
    #[error("print queue: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Retry policy: the delay doubles per failed attempt from `min_ms`, capped at `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub min_ms: u64,
    /// Longest delay.
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min_ms: 1_000,
            max_ms: 60_000,
        }
    }
}

impl Backoff {
    /// Delay before the next attempt after `attempts` failures (1 = first failure).
    pub fn delay_ms(&self, attempts: u32) -> u64 {
        let doublings = attempts.saturating_sub(1).min(32);
        self.min_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms)
    }
}

/// A queued job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintJob {
    /// Row id.
    pub id: i64,
    /// Printer name from the config.
    pub printer: String,
    /// What it is: `receipt`, `pick_list`, `bag_label`, ...
    pub kind: String,
    /// ESC/POS bytes.
    pub payload: Vec<u8>,
    /// When it was enqueued.
    pub created_at_ms: i64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this time.
    pub next_attempt_at_ms: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the printer accepted it.
    pub printed_at_ms: Option<i64>,
    /// The job this one reprints.
    pub reprint_of: Option<i64>,
}

const COLUMNS: &str = "id, printer, kind, payload, created_at_ms, attempts, next_attempt_at_ms, \
                       last_error, printed_at_ms, reprint_of";

fn row_to_job(row: &rusqlite::Row<'_>) -> rusqlite::Result<PrintJob> {
    Ok(PrintJob {
        id: row.get(0)?,
        printer: row.get(1)?,
        kind: row.get(2)?,
        payload: row.get(3)?,
        created_at_ms: row.get(4)?,
        attempts: row.get(5)?,
        next_attempt_at_ms: row.get(6)?,
        last_error: row.get(7)?,
        printed_at_ms: row.get(8)?,
        reprint_of: row.get(9)?,
    })
}

/// Adds a job, due at once. Returns its id.
pub fn enqueue(
    conn: &Connection,
    printer: &str,
    kind: &str,
    payload: &[u8],
    now_ms: i64,
) -> Result<i64, QueueError> {
    if payload.len() > PAYLOAD_BYTES_MAX {
        return Err(QueueError::PayloadTooLarge(payload.len()));
    }
    conn.execute(
        "INSERT INTO print_job (printer, kind, payload, created_at_ms, next_attempt_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![printer, kind, payload, now_ms],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Unprinted jobs of `printer` whose time has come, oldest first.
pub fn due_jobs(
    conn: &Connection,
    printer: &str,
    now_ms: i64,
    limit: u32,
) -> Result<Vec<PrintJob>, QueueError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM print_job \
         WHERE printer = ?1 AND printed_at_ms IS NULL AND next_attempt_at_ms <= ?2 \
         ORDER BY id LIMIT ?3"
    ))?;
    let jobs = stmt
        .query_map(
            params![printer, now_ms, limit.min(DUE_BATCH_MAX)],
            row_to_job,
        )?
        .collect::<Result<_, _>>()?;
    Ok(jobs)
}

/// When the next unprinted job of `printer` becomes due, if there is one.
pub fn next_due_at(conn: &Connection, printer: &str) -> Result<Option<i64>, QueueError> {
    let at = conn.query_row(
        "SELECT MIN(next_attempt_at_ms) FROM print_job \
         WHERE printer = ?1 AND printed_at_ms IS NULL",
        params![printer],
        |row| row.get(0),
    )?;
    Ok(at)
}

/// Records that the printer accepted the job. Returns false if it was already marked.
pub fn mark_printed(conn: &Connection, id: i64, now_ms: i64) -> Result<bool, QueueError> {
    let n = conn.execute(
        "UPDATE print_job SET printed_at_ms = ?2, last_error = NULL \
         WHERE id = ?1 AND printed_at_ms IS NULL",
        params![id, now_ms],
    )?;
    Ok(n == 1)
}

/// Records a failed attempt and schedules the next one. Returns when it will be.
pub fn mark_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    now_ms: i64,
    backoff: Backoff,
) -> Result<i64, QueueError> {
    let attempts: u32 = conn
        .query_row(
            "SELECT attempts FROM print_job WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(QueueError::UnknownJob(id))?;
    let attempts = attempts.saturating_add(1);
    let delay = i64::try_from(backoff.delay_ms(attempts)).unwrap_or(i64::MAX);
    let next = now_ms.saturating_add(delay);
    let error: String = error.chars().take(ERROR_CHARS_MAX).collect();
    conn.execute(
        "UPDATE print_job SET attempts = ?2, next_attempt_at_ms = ?3, last_error = ?4 \
         WHERE id = ?1",
        params![id, attempts, next, error],
    )?;
    Ok(next)
}

/// The newest jobs, printed or not, for status pages (at most [`LIST_ROWS_MAX`]).
pub fn list(
    conn: &Connection,
    printer: Option<&str>,
    limit: u32,
) -> Result<Vec<PrintJob>, QueueError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM print_job WHERE ?1 IS NULL OR printer = ?1 \
         ORDER BY id DESC LIMIT ?2"
    ))?;
    let jobs = stmt
        .query_map(params![printer, limit.min(LIST_ROWS_MAX)], row_to_job)?
        .collect::<Result<_, _>>()?;
    Ok(jobs)
}

/// Unprinted jobs of `printer` (the "printer queue" figure in status and metrics).
pub fn pending_count(conn: &Connection, printer: &str) -> Result<u64, QueueError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM print_job WHERE printer = ?1 AND printed_at_ms IS NULL",
        params![printer],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Enqueues a copy of job `id` on the same printer. Returns the new job's id.
pub fn reprint(conn: &Connection, id: i64, now_ms: i64) -> Result<i64, QueueError> {
    let n = conn.execute(
        "INSERT INTO print_job (printer, kind, payload, created_at_ms, next_attempt_at_ms, \
         reprint_of) \
         SELECT printer, kind, payload, ?2, ?2, id FROM print_job WHERE id = ?1",
        params![id, now_ms],
    )?;
    if n == 0 {
        return Err(QueueError::UnknownJob(id));
    }
    Ok(conn.last_insert_rowid())
}

/// What the worker last saw of its printer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrinterHealth {
    /// Printer name.
    pub printer: String,
    /// `Some(true)` after a job went through, `Some(false)` after one failed, `None` before.
    pub online: Option<bool>,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// Jobs waiting.
    pub pending: u64,
}

/// Everything a print worker needs.
pub struct PrintWorker {
    /// The node whose database holds the queue: reads on its reader connection, marks
    /// through its writer (one writer per database).
    pub node: crate::store::Node,
    /// Printer name, as used in `enqueue`.
    pub printer: String,
    /// Where the bytes go.
    pub transport: PrinterTransport,
    /// Retry policy.
    pub backoff: Backoff,
    /// Notified after `enqueue`/`reprint` so jobs print at once.
    pub wake: Arc<Notify>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl PrintWorker {
    /// Starts the worker: it drains due jobs to the printer until `shutdown` turns true.
    pub fn spawn(
        self,
        shutdown: watch::Receiver<bool>,
    ) -> (
        JoinHandle<Result<(), QueueError>>,
        watch::Receiver<PrinterHealth>,
    ) {
        let (tx, rx) = watch::channel(PrinterHealth {
            printer: self.printer.clone(),
            ..PrinterHealth::default()
        });
        (tokio::spawn(self.run(tx, shutdown)), rx)
    }

    async fn run(
        mut self,
        health: watch::Sender<PrinterHealth>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), QueueError> {
        while !*shutdown.borrow() {
            let wait_ms = self.round(&health).await?;
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
            }
        }
        Ok(())
    }

    /// Sends what is due; returns how long to wait before the next round.
    async fn round(&mut self, health: &watch::Sender<PrinterHealth>) -> Result<u64, QueueError> {
        let printer = self.printer.clone();
        let jobs = self
            .node
            .query(move |c| Ok(due_jobs(c, &printer, now_ms(), DUE_BATCH_MAX)))
            .await??;
        let mut failed_wait = None;
        for job in jobs {
            match self.transport.send(&job.payload).await {
                Ok(()) => {
                    let id = job.id;
                    self.node
                        .write(move |tx| Ok(mark_printed(tx, id, now_ms())))
                        .await??;
                    health.send_modify(|h| {
                        h.online = Some(true);
                        h.last_error = None;
                    });
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::warn!(printer = %self.printer, job = job.id, error = %message, "print failed");
                    let (id, error, backoff) = (job.id, message.clone(), self.backoff);
                    let next = self
                        .node
                        .write(move |tx| Ok(mark_failed(tx, id, &error, now_ms(), backoff)))
                        .await??;
                    health.send_modify(|h| {
                        h.online = Some(false);
                        h.last_error = Some(message);
                    });
                    // The printer is down: wait for this job's backoff before trying any other.
                    failed_wait = Some(u64::try_from(next - now_ms()).unwrap_or(0));
                    break;
                }
            }
        }
        let printer = self.printer.clone();
        let (pending, next) = self
            .node
            .query(move |c| {
                Ok(pending_count(c, &printer).and_then(|p| Ok((p, next_due_at(c, &printer)?))))
            })
            .await??;
        health.send_modify(|h| h.pending = pending);
        if let Some(wait) = failed_wait {
            return Ok(wait.max(1));
        }
        Ok(match next {
            Some(at) => u64::try_from(at - now_ms())
                .unwrap_or(0)
                .clamp(1, IDLE_POLL_MS),
            None => IDLE_POLL_MS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../migrations/0002_print_queue.sql"))
            .unwrap();
        conn
    }

    #[test]
    fn a_job_is_due_until_printed() {
        let conn = db();
        let id = enqueue(&conn, "till", "receipt", b"abc", 1_000).unwrap();
        let due = due_jobs(&conn, "till", 1_000, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].payload, b"abc");
        assert!(due_jobs(&conn, "labels", 1_000, 10).unwrap().is_empty());
        assert!(mark_printed(&conn, id, 1_500).unwrap());
        assert!(!mark_printed(&conn, id, 1_600).unwrap());
        assert!(due_jobs(&conn, "till", 9_999, 10).unwrap().is_empty());
        assert_eq!(pending_count(&conn, "till").unwrap(), 0);
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let conn = db();
        let backoff = Backoff {
            min_ms: 100,
            max_ms: 1_000,
        };
        let id = enqueue(&conn, "till", "receipt", b"abc", 0).unwrap();
        let delays: Vec<i64> = (0..6)
            .map(|_| mark_failed(&conn, id, "connection refused", 0, backoff).unwrap())
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
        assert!(due_jobs(&conn, "till", 999, 10).unwrap().is_empty());
        let job = &due_jobs(&conn, "till", 1_000, 10).unwrap()[0];
        assert_eq!(job.attempts, 6);
        assert_eq!(job.last_error.as_deref(), Some("connection refused"));
        assert!(matches!(
            mark_failed(&conn, 99, "x", 0, backoff),
            Err(QueueError::UnknownJob(99))
        ));
    }

    #[test]
    fn reprint_enqueues_a_copy_and_list_shows_both() {
        let conn = db();
        let id = enqueue(&conn, "till", "receipt", b"abc", 0).unwrap();
        mark_printed(&conn, id, 5).unwrap();
        let copy = reprint(&conn, id, 10).unwrap();
        let jobs = list(&conn, Some("till"), 10).unwrap();
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].id, copy);
        assert_eq!(jobs[0].reprint_of, Some(id));
        assert_eq!(jobs[0].payload, b"abc");
        assert_eq!(jobs[0].printed_at_ms, None);
        assert!(matches!(
            reprint(&conn, 42, 0),
            Err(QueueError::UnknownJob(42))
        ));
    }

    #[test]
    fn oversized_payload_is_refused() {
        let conn = db();
        let big = vec![0u8; PAYLOAD_BYTES_MAX + 1];
        assert!(matches!(
            enqueue(&conn, "till", "receipt", &big, 0),
            Err(QueueError::PayloadTooLarge(_))
        ));
    }
}
