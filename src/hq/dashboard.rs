//! HQ dashboard: one server-rendered page (no build step) showing each store's link, lag,
//! outbox and digest, and the latest orders. In the demo it has buttons that cut and restore a
//! store's link through the API. It shows no customer data.

use super::api::store_rows;
use super::HqState;
use axum::extract::State;
use axum::response::Html;
use std::fmt::Write as _;

/// Orders listed on the page.
const RECENT_ORDERS_MAX: usize = 15;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;background:#f5f6f8;color:#1d2330}
h1{font-size:1.6rem}table{border-collapse:collapse;background:#fff;margin-bottom:2rem;min-width:40rem}
th,td{padding:.5rem .9rem;border-bottom:1px solid #e3e6eb;text-align:left}th{background:#eef0f4}
.on{color:#0a7a32;font-weight:600}.off{color:#b3261e;font-weight:600}code{font-size:.95em}
button{font-size:1rem;padding:.4rem .9rem;border-radius:.4rem;border:1px solid #888;cursor:pointer}";

pub async fn page(State(state): State<HqState>) -> Html<String> {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"3\">\
         <title>storenode HQ</title><style>{STYLE}</style></head><body><h1>storenode HQ</h1><p><a href=\"/console/\">HQ console</a> (sign in with a [console] account)</p>\
         <h2>Stores</h2><table><tr><th>store</th><th>link</th><th>last seen</th><th>outbox</th><th>lag (ops)</th><th>digest</th>"
    );
    let demo = state.links.is_some() && state.dashboard_token.is_some();
    if demo {
        html.push_str("<th>demo</th>");
    }
    html.push_str("</tr>");
    let now = crate::store::now_ms();
    for row in store_rows(&state) {
        let store = esc(row["store"].as_str().unwrap_or(""));
        let online = row["online"].as_bool().unwrap_or(false);
        let seen = match row["last_seen"].as_u64() {
            Some(ms) => format!("{} s ago", now.saturating_sub(ms) / 1000),
            None => "never".to_string(),
        };
        let _ = write!(
            html,
            "<tr><td>{store}</td><td class=\"{}\">{}</td><td>{seen}</td><td>{}</td><td>{}</td><td><code>{}</code></td>",
            if online { "on" } else { "off" },
            if online { "online" } else { "offline" },
            row["outbox"],
            row["lag"],
            esc(row["digest"].as_str().unwrap_or("")),
        );
        if demo {
            let (label, to) = if online {
                ("cut link", "false")
            } else {
                ("restore link", "true")
            };
            let _ = write!(
                html,
                "<td><button onclick=\"link('{store}',{to})\">{label}</button></td>"
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</table><h2>VERI*FACTU journals</h2><table><tr><th>store</th><th>records</th><th>last invoice</th><th>chain</th></tr>");
    for store in &state.settings.stores {
        let v = super::journal::view(&state, store);
        let chain = match &v.broken_at {
            None => "<span class=\"on\">intact</span>".to_string(),
            Some(at) => format!("<span class=\"off\">BROKEN at {}</span>", esc(at)),
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{chain}</td></tr>",
            esc(store.as_str()),
            v.records,
            esc(v.last_invoice.as_deref().unwrap_or("-")),
        );
    }
    html.push_str("</table><h2>Recent orders</h2><table><tr><th>order</th><th>store</th><th>status</th><th>lines</th><th>units</th></tr>");
    let orders = state.node.read(|r| {
        let mut all: Vec<_> = r.state().orders.values().cloned().collect();
        all.sort_by_key(|o| std::cmp::Reverse(o.placed_at_ms));
        all.truncate(RECENT_ORDERS_MAX);
        all
    });
    for o in orders {
        let units: u32 = o.lines.values().map(|l| l.qty).sum();
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{units}</td></tr>",
            esc(o.id.as_str()),
            esc(o.store.as_str()),
            o.status.as_str(),
            o.lines.len()
        );
    }
    html.push_str("</table>");
    if let (true, Some(token)) = (demo, &state.dashboard_token) {
        let _ = write!(
            html,
            "<script>async function link(store,online){{await fetch('/api/v1/demo/stores/'+store+'/link',\
             {{method:'POST',headers:{{'Authorization':'Bearer {}','Content-Type':'application/json'}},\
             body:JSON.stringify({{online:online}})}});location.reload();}}</script>",
            esc(token)
        );
    }
    html.push_str("</body></html>");
    Html(html)
}
