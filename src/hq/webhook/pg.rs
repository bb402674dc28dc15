//! The webhook on PostgreSQL (`[storage] url`): jobs queued by the journal in the op's own
//! transaction (`OrderJobs`, a `store::pg::jobs::JobSource`) and sent by every HQ process
//! that has a `[webhook]`, one job at a time under its row lock (`store::pg::jobs`), so a job
//! is sent at least once even when its sender is killed mid-send.
//!
//! At start each process also copies up the events its SQLite file queued (an HQ that ran on
//! SQLite before, their delivery state kept) and queues whatever the state calls for and has
//! no row yet; while running it scans for abandoned carts. Dedup keys make all of this
//! idempotent across processes.

use super::{event, order_events_in, post, Event, Job, WebhookSettings};
use crate::domain::{Op, State};
use crate::store::pg::jobs::{self, JobSource, NewJob, TakenJob};
use crate::store::pg::{connect_listening, parse_url, PgError};
use crate::store::{now_ms, Node};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config};

/// Longest idle wait between looks at the queue.
const IDLE_WAIT_MS: u64 = 1_000;
/// Wait before reconnecting after PostgreSQL failed.
const RETRY_MS: u64 = 1_000;
/// How often carts are checked for abandonment.
const ABANDONED_SCAN_MS: u64 = 60_000;

fn new_job(event: &Event, now_ms: u64) -> NewJob {
    let (event_id, body) = super::event_body(event, now_ms);
    NewJob {
        event_id,
        kind: event.kind.to_string(),
        dedup: event.dedup.clone(),
        body,
        created_ms: now_ms,
        delivered: false,
    }
}

/// The journal's job source: the order events the ops call for.
pub struct OrderJobs;

impl JobSource for OrderJobs {
    fn jobs(&self, ops: &[Op], state: &State) -> Vec<NewJob> {
        let now = now_ms();
        order_events_in(state, ops)
            .iter()
            .map(|e| new_job(e, now))
            .collect()
    }
}

/// Start the sender (and the start-up repair and cart scan) of this process, named `name` in
/// the rows it delivers; it stops when `shutdown` turns true.
pub fn spawn(
    node: Node,
    settings: WebhookSettings,
    url: &str,
    name: String,
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, PgError> {
    let mut config = parse_url(url)?;
    config.connect_timeout(Duration::from_secs(2));
    Ok(tokio::spawn(async move {
        let sender = Sender {
            node,
            settings,
            config,
            name,
            wake: Arc::new(Notify::new()),
        };
        sender.run(shutdown).await
    }))
}

struct Sender {
    node: Node,
    settings: WebhookSettings,
    config: Config,
    name: String,
    wake: Arc<Notify>,
}

impl Sender {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_millis(super::REQUEST_TIMEOUT_MS))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook: cannot build the http client");
                return;
            }
        };
        let mut client: Option<Client> = None;
        let mut repaired = false;
        let mut scanned = tokio::time::Instant::now();
        loop {
            let wait = match self
                .round(&http, &mut client, &mut repaired, &mut scanned)
                .await
            {
                Ok(wait_ms) => wait_ms,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook: cannot use the shared queue; retrying");
                    client = None;
                    RETRY_MS
                }
            };
            if wait == 0 {
                if *shutdown.borrow() {
                    return;
                }
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            }
        }
    }

    /// Connect if needed, repair once, scan carts when due, then send one due job. Returns
    /// how long to wait before the next round (0: go on at once).
    async fn round(
        &self,
        http: &reqwest::Client,
        client: &mut Option<Client>,
        repaired: &mut bool,
        scanned: &mut tokio::time::Instant,
    ) -> Result<u64, PgError> {
        if client.as_ref().is_none_or(Client::is_closed) {
            *client =
                Some(connect_listening(&self.config, jobs::JOBS_CHANNEL, self.wake.clone()).await?);
        }
        let Some(c) = client.as_mut() else {
            return Err(PgError::Query("not connected".to_string()));
        };
        if !*repaired {
            let queued = self.repair(c).await?;
            tracing::info!(queued, "webhook: shared queue repaired at start");
            *repaired = true;
        }
        if let Some(idle) = self.settings.abandoned_cart_ms {
            if scanned.elapsed() >= Duration::from_millis(ABANDONED_SCAN_MS) {
                let now = now_ms();
                let events = self
                    .node
                    .read(|r| event::abandoned_cart_events(r.state(), now, idle));
                insert(c, &events).await?;
                *scanned = tokio::time::Instant::now();
            }
        }
        if self.send_one(http, c).await? {
            return Ok(0);
        }
        let next = jobs::next_due_ms(&*c).await.map_err(PgError::query)?;
        Ok(next.unwrap_or(IDLE_WAIT_MS).clamp(1, IDLE_WAIT_MS))
    }

    /// Copy up the file's own queue, then queue what the state calls for and has no row.
    async fn repair(&self, client: &mut Client) -> Result<u64, PgError> {
        let local = self.node.query(local_jobs).await?;
        let tx = client.transaction().await.map_err(PgError::query)?;
        let mut queued = jobs::insert(&tx, &local).await.map_err(PgError::query)?;
        let now = now_ms();
        let idle = self.settings.abandoned_cart_ms;
        let events: Vec<Event> = self.node.read(|r| {
            let state = r.state();
            let mut out: Vec<Event> = state
                .orders
                .values()
                .flat_map(event::order_events)
                .collect();
            if let Some(idle) = idle {
                out.extend(event::abandoned_cart_events(state, now, idle));
            }
            out
        });
        let fresh: Vec<NewJob> = events.iter().map(|e| new_job(e, now)).collect();
        queued += jobs::insert(&tx, &fresh).await.map_err(PgError::query)?;
        tx.commit().await.map_err(PgError::query)?;
        Ok(queued)
    }

    /// Take one due job, post it while holding its row, record the outcome. False: none due.
    async fn send_one(&self, http: &reqwest::Client, client: &mut Client) -> Result<bool, PgError> {
        let tx = client.transaction().await.map_err(PgError::query)?;
        let Some(taken) = jobs::take_due(&tx).await.map_err(PgError::query)? else {
            tx.commit().await.map_err(PgError::query)?;
            return Ok(false);
        };
        let TakenJob {
            id,
            event_id,
            kind,
            body,
            attempts,
        } = taken;
        let job = Job {
            row: id,
            event_id,
            kind,
            body,
            attempts,
        };
        match post(http, &self.settings, &job).await {
            Ok(()) => jobs::delivered(&tx, id, &self.name).await,
            Err(error) => {
                let backoff = self.settings.backoff_ms(attempts);
                jobs::failed(&tx, id, backoff, &error).await
            }
        }
        .map_err(PgError::query)?;
        tx.commit().await.map_err(PgError::query)?;
        Ok(true)
    }
}

async fn insert(client: &Client, events: &[Event]) -> Result<u64, PgError> {
    let now = now_ms();
    let fresh: Vec<NewJob> = events.iter().map(|e| new_job(e, now)).collect();
    jobs::insert(client, &fresh).await.map_err(PgError::query)
}

/// Every event the SQLite file queued, delivered or not.
fn local_jobs(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<NewJob>> {
    let mut stmt = conn.prepare(
        "SELECT event_id, type, dedup, body, created_ms, delivered_ms IS NOT NULL
         FROM hq_webhook_events",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(NewJob {
            event_id: r.get(0)?,
            kind: r.get(1)?,
            dedup: r.get(2)?,
            body: r.get(3)?,
            created_ms: r.get::<_, i64>(4)?.max(0) as u64,
            delivered: r.get(5)?,
        })
    })?;
    rows.collect()
}
