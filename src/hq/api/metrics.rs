//! `GET /metrics`: HQ's figures in the OpenMetrics text format (`crate::exposition`).

use crate::exposition::{self, Scrape};
use crate::hq::HqState;
use axum::extract::State;
use axum::response::Response;

pub async fn metrics(State(state): State<HqState>) -> Response {
    let (ops, orders) = state
        .node
        .read(|r| (r.version().total(), r.state().orders.len()));
    let queue = crate::hq::webhook::queue::depth(&state.node, state.shared_webhooks.as_ref()).await;
    let mut s = Scrape::new();
    s.gauge(
        "storenode_ops_applied",
        "Ops in this replica's log",
        &[("role", "hq")],
        ops,
    );
    s.gauge(
        "storenode_orders",
        "Orders HQ knows",
        &[("role", "hq")],
        orders as u64,
    );
    s.gauge(
        "storenode_webhook_queue",
        "Webhook events not yet delivered",
        &[],
        queue,
    );
    for store in &state.settings.stores {
        let link = state.sync.link(store);
        let l = [("store", store.as_str())];
        let online = u64::from(link.online);
        s.gauge(
            "storenode_store_online",
            "1 while the store is online",
            &l,
            online,
        );
        s.gauge(
            "storenode_store_outbox",
            "Ops the store reported waiting",
            &l,
            link.outbox,
        );
        s.gauge(
            "storenode_store_lag_ops",
            "Ops the store has not acknowledged",
            &l,
            link.lag_ops,
        );
        if let Some(ms) = link.last_seen_ms {
            s.gauge(
                "storenode_store_last_contact_ms",
                "Last message from the store, ms",
                &l,
                ms,
            );
        }
    }
    for (code, n) in state.http_errors() {
        s.counter(
            "storenode_http_errors_total",
            "HTTP error answers by code",
            &[("code", code.as_ref())],
            n,
        );
    }
    exposition::response(&[
        s.encode(),
        crate::hq::journal::render_metrics(&state),
        state.sync.render_metrics(),
    ])
}
