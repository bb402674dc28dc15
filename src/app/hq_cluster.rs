//! One of several HQ processes on a shared PostgreSQL log (`[storage] url`): the node fed by
//! tailing the log (`store::pg::tail`), the API answering only after a catch-up, and the
//! stores' link state shared through PostgreSQL (`store::pg::link`): the syncing process
//! publishes what it sees, every process answers `online` from the table.

use crate::hq::{HqApiError as ApiError, LinkStatus, SyncView};
use crate::store::pg::link::{LinkRow, LinkWriter, Links};
use crate::store::pg::tail::Tail;
use crate::sync::HqSyncHandle;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the syncing process compares its view of the links with what it last wrote.
pub const LINK_CHECK_MS: u64 = 200;
/// Longest time between two writes of the links (the rows' heartbeat).
pub const LINK_HEARTBEAT_MS: u64 = 1_000;
/// How often every process re-reads the links for the console and dashboard.
pub const LINK_READ_MS: u64 = 1_000;

/// Every API call first brings the replica level with the shared log, so any process answers
/// what any other committed before the call; the calls that show links read them first too.
/// PostgreSQL unreachable is 503 `storage_unavailable` (nothing is answered from a view that
/// may be stale).
pub fn caught_up(router: Router, tail: Tail, links: Links) -> Router {
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let (tail, links) = (tail.clone(), links.clone());
            async move {
                let path = req.uri().path();
                if !path.starts_with("/api/") {
                    return next.run(req).await;
                }
                let shows_links =
                    path.starts_with("/api/v1/stores") || path.starts_with("/api/v1/availability");
                if let Err(e) = tail.catch_up().await {
                    return unavailable(&e);
                }
                if shows_links {
                    if let Err(e) = links.refresh().await {
                        return unavailable(&e);
                    }
                }
                next.run(req).await
            }
        },
    ))
}

fn unavailable(e: &crate::store::pg::PgError) -> Response {
    tracing::warn!(error = %e, "cannot catch up with the shared op log");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "storage is unavailable; nothing was stored, try again",
    )
    .into_response()
}

/// The API's sync view on PostgreSQL: links from `hq_store_link` (the same on every process),
/// metrics and down-log acks from this process's own sync engine, if it runs one.
pub struct ClusterView {
    pub links: Links,
    pub local: Option<super::HqSyncView>,
}

impl SyncView for ClusterView {
    fn link(&self, store: &crate::domain::StoreId) -> LinkStatus {
        let row = self.links.get(store.as_str());
        LinkStatus {
            online: row.online,
            last_seen_ms: row.last_seen_ms,
            outbox: row.outbox,
            lag_ops: row.lag_ops,
        }
    }
    fn render_metrics(&self) -> String {
        self.local
            .as_ref()
            .map(SyncView::render_metrics)
            .unwrap_or_default()
    }
    fn down_acked(&self, store: &crate::domain::StoreId) -> Option<u64> {
        self.local.as_ref().and_then(|l| l.down_acked(store))
    }
}

/// Start what a process on the shared log runs beside its API: the tail, the links' reader,
/// and, on the process that syncs, their publisher (rows signed `holder`). Returns the API's
/// sync view, the links for `caught_up`, and the tasks to wait for at shutdown.
pub fn start(
    url: &str,
    tail: &Tail,
    sync: Option<&HqSyncHandle>,
    holder: String,
    shutdown: &watch::Receiver<bool>,
) -> Result<(ClusterView, Links, Vec<JoinHandle<()>>), crate::store::pg::PgError> {
    let links = Links::new(url)?;
    let mut tasks = vec![
        tail.spawn(shutdown.clone()),
        spawn_link_reader(links.clone(), shutdown.clone()),
    ];
    if let Some(sync) = sync {
        let writer = LinkWriter::new(url, holder)?;
        tasks.push(spawn_link_publisher(sync.clone(), writer, shutdown.clone()));
    }
    let view = ClusterView {
        links: links.clone(),
        local: sync.cloned().map(super::HqSyncView),
    };
    Ok((view, links, tasks))
}

/// Re-read the links every `LINK_READ_MS` until shutdown (the console and dashboard read the
/// cache without a round trip).
pub fn spawn_link_reader(links: Links, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = links.refresh().await {
                tracing::warn!(error = %e, "cannot read the stores' links");
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(LINK_READ_MS)) => {}
            }
        }
    })
}

/// The links this process's sync engine reports, for the stores it has heard from: a store
/// it never heard from, or whose lease another process holds, is left to whichever process
/// serves it.
fn served(sync: &HqSyncHandle) -> Vec<LinkRow> {
    sync.stores()
        .into_iter()
        .filter(|l| l.served && (l.online || l.last_seen_ms.is_some()))
        .map(|l| LinkRow {
            store: l.store.to_string(),
            online: l.online,
            last_seen_ms: l.last_seen_ms,
            outbox: l.outbox,
            lag_ops: l.down_pending,
        })
        .collect()
}

/// Publish the sync engine's links until shutdown: at once when they change (checked every
/// `LINK_CHECK_MS`), else every `LINK_HEARTBEAT_MS`, so a row that stops moving means this
/// process stopped hearing from the store.
pub fn spawn_link_publisher(
    sync: HqSyncHandle,
    writer: LinkWriter,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut written: Option<(Vec<LinkRow>, tokio::time::Instant)> = None;
        loop {
            let rows = served(&sync);
            let due = match &written {
                None => true,
                Some((last, at)) => {
                    *last != rows || at.elapsed() >= Duration::from_millis(LINK_HEARTBEAT_MS)
                }
            };
            if due && !rows.is_empty() {
                match writer.publish(&rows).await {
                    Ok(_) => written = Some((rows, tokio::time::Instant::now())),
                    Err(e) => tracing::warn!(error = %e, "cannot publish the stores' links"),
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(LINK_CHECK_MS)) => {}
            }
        }
    })
}
