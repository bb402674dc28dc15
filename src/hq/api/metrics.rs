//! `GET /metrics`: HQ's figures in the Prometheus text format.

use crate::hq::HqState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

pub async fn metrics(State(state): State<HqState>) -> Response {
    let (ops, orders) = state
        .node
        .read(|r| (r.version().total(), r.state().orders.len()));
    let queue = crate::hq::webhook::queue_depth(&state.node)
        .await
        .unwrap_or(0);
    let mut out = String::new();
    out.push_str("# HELP storenode_ops_applied Ops in this replica's log.\n# TYPE storenode_ops_applied gauge\n");
    out.push_str(&format!("storenode_ops_applied{{role=\"hq\"}} {ops}\n"));
    out.push_str("# TYPE storenode_orders gauge\n");
    out.push_str(&format!("storenode_orders{{role=\"hq\"}} {orders}\n"));
    out.push_str("# HELP storenode_webhook_queue Webhook events not yet delivered.\n# TYPE storenode_webhook_queue gauge\n");
    out.push_str(&format!("storenode_webhook_queue {queue}\n"));
    out.push_str("# TYPE storenode_store_online gauge\n# TYPE storenode_store_outbox gauge\n# TYPE storenode_store_lag_ops gauge\n# TYPE storenode_store_last_contact_ms gauge\n");
    for store in &state.settings.stores {
        let link = state.sync.link(store);
        out.push_str(&format!(
            "storenode_store_online{{store=\"{store}\"}} {}\nstorenode_store_outbox{{store=\"{store}\"}} {}\nstorenode_store_lag_ops{{store=\"{store}\"}} {}\n",
            u8::from(link.online), link.outbox, link.lag_ops
        ));
        if let Some(ms) = link.last_seen_ms {
            out.push_str(&format!(
                "storenode_store_last_contact_ms{{store=\"{store}\"}} {ms}\n"
            ));
        }
    }
    out.push_str("# HELP storenode_http_errors_total HTTP error answers by code.\n# TYPE storenode_http_errors_total counter\n");
    for (code, n) in state.http_errors() {
        out.push_str(&format!(
            "storenode_http_errors_total{{code=\"{code}\"}} {n}\n"
        ));
    }
    out.push_str(&crate::hq::journal::render_metrics(&state));
    out.push_str(&state.sync.render_metrics());
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}
