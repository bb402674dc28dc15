//! The store node's own HTTP endpoints beside the terminal: `/healthz` (with the shared-state
//! digest, so tests and operators can compare a store with HQ's `/stores`) and `/metrics`.

use crate::domain::StoreId;
use crate::exposition::{self, Scrape};
use crate::store::Node;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

/// What the store's endpoints need to know about its link (implemented by the store sync).
pub trait StoreSyncView: Send + Sync + 'static {
    /// This store's own link to the broker.
    fn online(&self) -> bool;
    /// Local ops HQ has not acknowledged.
    fn outbox(&self) -> u64;
    /// Last exchange with HQ, ms since the epoch.
    fn last_sync_ms(&self) -> Option<u64>;
    fn render_metrics(&self) -> String;
}

#[derive(Clone)]
struct StoreHttp {
    node: Node,
    store: StoreId,
    sync: Arc<dyn StoreSyncView>,
}

/// `/healthz` and `/metrics` of a store node.
pub fn router(node: Node, store: StoreId, sync: Arc<dyn StoreSyncView>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(StoreHttp { node, store, sync })
}

async fn healthz(State(s): State<StoreHttp>) -> Json<Value> {
    let (digest, ops, orders) = s.node.read(|r| {
        (
            r.digest_for_store(&s.store).short(),
            r.version().total(),
            r.state()
                .orders
                .values()
                .filter(|o| o.store == s.store)
                .count(),
        )
    });
    Json(json!({
        "status": "ok", "role": "store", "store": s.store, "digest": digest, "ops": ops,
        "orders": orders, "online": s.sync.online(), "outbox": s.sync.outbox(),
        "last_sync": s.sync.last_sync_ms(),
    }))
}

async fn metrics(State(s): State<StoreHttp>) -> Response {
    let (ops, orders) = s.node.read(|r| {
        (
            r.version().total(),
            r.state()
                .orders
                .values()
                .filter(|o| o.store == s.store && o.status.is_open())
                .count(),
        )
    });
    let store = &s.store;
    let l = [("store", store.as_str())];
    let mut m = Scrape::new();
    m.gauge(
        "storenode_ops_applied",
        "Ops in this replica's log",
        &[("role", "store"), ("store", store.as_str())],
        ops,
    );
    m.gauge(
        "storenode_open_orders",
        "Open pickup orders at this store",
        &l,
        orders as u64,
    );
    m.gauge(
        "storenode_outbox",
        "Own ops HQ has not acknowledged",
        &l,
        s.sync.outbox(),
    );
    m.gauge(
        "storenode_online",
        "1 while linked to HQ",
        &l,
        u64::from(s.sync.online()),
    );
    if let Some(ms) = s.sync.last_sync_ms() {
        m.gauge(
            "storenode_last_contact_ms",
            "Last message from HQ, ms",
            &l,
            ms,
        );
    }
    exposition::response(&[
        m.encode(),
        crate::fiscal::aeat::render_metrics(&s.node, store).await,
        s.sync.render_metrics(),
    ])
}
