//! The commands of the `storenode` binary as library functions: `main.rs` only parses
//! arguments and calls these. Long-running commands return when Ctrl-C (or SIGTERM) arrives
//! and every server and task they started has stopped.

mod demo;
mod hq_cluster;
pub mod seed;
mod store_http;
pub mod store_node;
mod sync_views;

use crate::config::{Config, HqConfig, StoreConfig};
use crate::domain::ActorId;
use crate::hq::{self, HqSettings, HqState};
use crate::store::Node;
use crate::sync::protocol::config::LeaseSettings;
use anyhow::Context;
use axum::Router;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use demo::{demo, DemoOptions, DEMO_TOKEN};
pub use store_http::{router as store_router, StoreSyncView};
pub use sync_views::{hq_sync_config, store_sync_config, DemoLinks, HqSyncView, StoreLinkView};

/// `storenode check-config FILE`: prints `ok: store madrid-centro`, or one line per error with
/// its key path. Returns whether the file is valid (the binary exits 1 when it is not).
pub fn check_config(path: &Path, out: &mut impl std::io::Write) -> std::io::Result<bool> {
    match Config::load(path) {
        Ok(config) => {
            writeln!(out, "ok: {}", config.describe())?;
            Ok(true)
        }
        Err(errs) => {
            for e in &errs.0 {
                writeln!(out, "error: {}: {e}", path.display())?;
            }
            Ok(false)
        }
    }
}

/// A shutdown signal every task of a command watches: true means stop.
pub fn shutdown_channel() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Resolve when Ctrl-C or SIGTERM arrives.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Bind `addr` now (so a busy port is an error at start) and serve until shutdown.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut stop = shutdown;
        // The client's address reaches handlers (per-IP rate limits).
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, %bound, "http server failed");
        }
    });
    Ok((bound, task))
}

/// Start the webhook worker if the config names a URL (and the secret it signs with).
pub fn spawn_webhook(
    node: &Node,
    settings: &HqSettings,
    shutdown: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let webhook = webhook_settings(settings)?;
    Some(hq::webhook::spawn(node.clone(), webhook, shutdown))
}

/// Where and how to deliver, if the config names a URL (and the secret it signs with).
fn webhook_settings(settings: &HqSettings) -> Option<hq::webhook::WebhookSettings> {
    let url = settings.webhook_url.clone()?;
    let Some(secret) = settings.webhook_secret.clone() else {
        tracing::error!("webhook.url without webhook.secret: no events are sent");
        return None;
    };
    Some(hq::webhook::WebhookSettings {
        url,
        backoff_ms_min: 250,
        backoff_ms_max: settings.webhook_backoff_ms_max,
        secret: secret.into_bytes(),
        abandoned_cart_ms: settings
            .abandoned_cart_hours
            .map(|h| u64::from(h) * 3_600_000),
    })
}

/// Start this process's sender of the shared webhook queue (`[storage] url`), if the config
/// names a webhook URL and its secret.
fn spawn_shared_webhook(
    node: &Node,
    settings: &HqSettings,
    url: &str,
    config: &HqConfig,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let Some(webhook) = webhook_settings(settings) else {
        return Ok(None);
    };
    let name = format!("{}:{}", config.client_id(), std::process::id());
    let task = hq::webhook::pg::spawn(node.clone(), webhook, url, name, shutdown)?;
    Ok(Some(task))
}

/// `storenode hq --config FILE`: the HQ hub until Ctrl-C.
pub async fn hq(config_path: &Path) -> anyhow::Result<()> {
    let config = HqConfig::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    run_hq(config).await
}

/// The HQ hub from a validated config.
pub async fn run_hq(config: HqConfig) -> anyhow::Result<()> {
    if let Some(dir) = config.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let (node, tail) = open_hq_node(&config).await?;
    let (stop, shutdown) = shutdown_channel();
    let settings = HqSettings::from_config(&config);
    let mut sync_cfg = hq_sync_config(&config).context("store_keys")?;
    if let (Some(url), Some(key), true) =
        (&config.storage.url, &sync_cfg.hq_key, config.storage.sync)
    {
        // Every syncing process on one PostgreSQL signs with one key, under its own name.
        let key_path = crate::signing::HqKey::path_for(&config.db);
        crate::store::pg::identity::check_start(
            url,
            &config.client_id(),
            &key.public_hex(),
            &key_path.display().to_string(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // On a shared log every syncing process takes leases of the stores it serves.
    sync_cfg.leases = config.storage.url.as_ref().map(|url| LeaseSettings {
        url: url.clone(),
        holder: config.client_id(),
    });
    let sync = config
        .storage
        .sync
        .then(|| crate::sync::spawn_hq_sync(node.clone(), sync_cfg, shutdown.clone()));
    // On PostgreSQL every process sends the shared queue's jobs; on SQLite the one process.
    let webhook = match &config.storage.url {
        Some(url) => spawn_shared_webhook(&node, &settings, url, &config, shutdown.clone())?,
        None => spawn_webhook(&node, &settings, shutdown.clone()),
    };
    let (view, cluster): (Arc<dyn hq::SyncView>, _) = match (tail, &config.storage.url) {
        (Some(tail), Some(url)) => {
            let holder = format!("{}:{}", config.client_id(), std::process::id());
            let (view, links, tasks) =
                hq_cluster::start(url, &tail, sync.as_ref(), holder, &shutdown)?;
            (Arc::new(view) as _, Some((tail, links, tasks)))
        }
        _ => match sync.clone() {
            Some(sync) => (Arc::new(HqSyncView(sync)) as _, None),
            None => (Arc::new(hq::NoSync) as _, None),
        },
    };
    let mut state = HqState::new(node, settings, view);
    if let Some(url) = &config.storage.url {
        state.shared_webhooks = Some(crate::store::pg::jobs::SharedQueue::new(url)?);
    }
    let (router, tasks) = match cluster {
        Some((tail, links, tasks)) => (hq_cluster::caught_up(hq::app(state), tail, links), tasks),
        None => (hq::app(state), Vec::new()),
    };
    let (addr, server) = serve(config.http.listen, router, shutdown).await?;
    tracing::info!(%addr, sync = sync.is_some(), "hq listening");
    interrupted().await;
    tracing::info!("stopping");
    let _ = stop.send(true);
    let _ = server.await;
    if let Some(w) = webhook {
        let _ = w.await;
    }
    for task in tasks {
        let _ = task.await;
    }
    if let Some(sync) = sync {
        sync.join().await;
    }
    Ok(())
}

/// HQ's node: the SQLite file alone, or as the cache of the PostgreSQL log (`[storage] url`)
/// with the tail that keeps it level with the other HQ processes, waiting for PostgreSQL
/// while it is down.
async fn open_hq_node(
    config: &HqConfig,
) -> anyhow::Result<(Node, Option<crate::store::pg::tail::Tail>)> {
    let Some(url) = &config.storage.url else {
        let node = Node::open(&config.db, ActorId::hq())
            .with_context(|| format!("cannot open {}", config.db.display()))?;
        return Ok((node, None));
    };
    // Taken before the node reads the log, so nothing committed meanwhile is missed.
    let from = crate::store::pg::tail::Tail::start_position(url)
        .await
        .context("cannot reach PostgreSQL")?;
    // With a webhook, each op's jobs are queued in its own PostgreSQL transaction.
    let jobs = config.webhook.url.as_ref().map(|_| {
        std::sync::Arc::new(hq::webhook::pg::OrderJobs)
            as Arc<dyn crate::store::pg::jobs::JobSource>
    });
    let (node, restored) =
        crate::store::pg::open_node_with(&config.db, ActorId::hq(), url, None, jobs)
            .await
            .with_context(|| {
                format!(
                    "cannot open the PostgreSQL op log for {}",
                    config.db.display()
                )
            })?;
    tracing::info!(
        pulled = restored.pulled,
        pushed = restored.pushed,
        "hq op log on PostgreSQL"
    );
    let tail = crate::store::pg::tail::Tail::new(node.clone(), url, from)?;
    Ok((node, Some(tail)))
}

/// `storenode run --config FILE`: a store node until Ctrl-C.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = StoreConfig::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    run_store(config).await
}

/// A store node from a validated config.
pub async fn run_store(config: StoreConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    let db = config.db_path();
    let node = Node::open(&db, config.store.actor())
        .with_context(|| format!("cannot open {}", db.display()))?;
    let (stop, shutdown) = shutdown_channel();
    let sync_cfg = store_sync_config(&config).context("store signing key")?;
    let sync = crate::sync::spawn_store_sync(node.clone(), sync_cfg, shutdown.clone());
    let view = Arc::new(StoreLinkView(sync.clone()));
    let (router, tasks) = store_node::store_app(
        node,
        &config,
        Arc::new(sync.clone()),
        view,
        shutdown.clone(),
    )
    .await?;
    let (addr, server) = serve(config.http.listen, router, shutdown).await?;
    tracing::info!(%addr, store = %config.store, "store node listening");
    interrupted().await;
    tracing::info!("stopping");
    let _ = stop.send(true);
    let _ = server.await;
    for task in tasks {
        let _ = task.await;
    }
    sync.join().await;
    Ok(())
}
