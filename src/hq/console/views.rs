//! The console's views, each a function from HQ's state (and the request's filters) to an
//! HTML fragment: stores, stock of a sku, orders, the conflict inbox, the webhook queue and
//! the VERI*FACTU chains. They read only; changes go through `super::resolve`.
//!
//! Filters come from the query string and are checked like the API's: an unknown store or
//! kind is a clear error, never an empty page that looks like "nothing there".

use super::page::{ago, esc, select, url, Lang};
use super::ConsoleSession;
use crate::domain::conflict::{Conflict, ConflictKind};
use crate::domain::order::OrderStatus;
use crate::domain::{ActorId, Sku, StoreId};
use crate::hq::HqState;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write as _;

pub mod cash;
mod inbox;
pub mod promotions;
pub use inbox::{inbox, inbox_items};

/// Orders listed at most (newest first).
pub const ORDERS_MAX: usize = 200;
/// Undelivered webhook events listed at most.
pub const WEBHOOK_ROWS_MAX: usize = 50;

/// A view could not be shown: the message for the page and the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewError {
    pub status: axum::http::StatusCode,
    pub message: String,
}

impl ViewError {
    fn new(status: axum::http::StatusCode, message: String) -> ViewError {
        ViewError { status, message }
    }
}

impl From<crate::hq::HqApiError> for ViewError {
    fn from(e: crate::hq::HqApiError) -> ViewError {
        ViewError::new(e.status, e.message)
    }
}

fn query<'a>(q: &'a HashMap<String, String>, key: &str) -> &'a str {
    q.get(key).map_or("", |s| s.trim())
}

fn store_filter(state: &HqState, lang: Lang, current: &str) -> String {
    let mut options = vec![(String::new(), lang.t("all").to_string())];
    options.extend(
        state
            .settings
            .stores
            .iter()
            .map(|s| (s.to_string(), s.to_string())),
    );
    format!(
        "<label>{}{}</label>",
        esc(lang.t("store")),
        select("store", &options, current)
    )
}

/// Stores: link, last contact, outbox, lag, digest, open inbox items.
pub fn stores(state: &HqState, lang: Lang, now_ms: u64) -> String {
    let open = state.node.read(|r| {
        let mut by_store: HashMap<StoreId, usize> = HashMap::new();
        for c in crate::domain::conflict::conflicts(r.state(), None) {
            if c.resolution.is_none() {
                *by_store.entry(c.store).or_default() += 1;
            }
        }
        by_store
    });
    let mut html = format!(
        "<h1>{}</h1><table id=\"stores\"><thead><tr><th>{}</th><th>{}</th><th>{}</th>\
         <th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th>{}</th></tr></thead><tbody>",
        esc(lang.t("view.stores")),
        esc(lang.t("store")),
        esc(lang.t("stores.link")),
        esc(lang.t("stores.last")),
        esc(lang.t("stores.outbox")),
        esc(lang.t("stores.lag")),
        esc(lang.t("stores.open")),
        esc(lang.t("stores.digest")),
    );
    for store in &state.settings.stores {
        let link = state.sync.link(store);
        let digest = state.node.read(|r| r.digest_for_store(store).short());
        let (class, word) = if link.online {
            ("on", lang.t("online"))
        } else {
            ("off", lang.t("offline"))
        };
        let seen = link
            .last_seen_ms
            .map_or_else(|| lang.t("never").to_string(), |ms| ago(lang, now_ms, ms));
        let items = open.get(store).copied().unwrap_or(0);
        let _ = write!(
            html,
            "<tr data-store=\"{s}\"><td>{s}</td><td><span class=\"pill {class}\">{word}</span></td><td>{seen}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\"><a href=\"/console/inbox?store={s}\">{items}</a></td><td><code>{digest}</code></td></tr>",
            link.outbox,
            link.lag_ops,
            s = esc(store.as_str()),
            word = esc(word),
            seen = esc(&seen),
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// Stock of one sku in every store: rights of the store and of HQ, reserved, in transit.
pub fn stock(
    state: &HqState,
    lang: Lang,
    q: &HashMap<String, String>,
) -> Result<String, ViewError> {
    let raw = query(q, "sku");
    let mut html = format!(
        "<h1>{}</h1><form method=\"get\" class=\"filters\"><label>{}<input name=\"sku\" id=\"f-sku\" value=\"{}\" maxlength=\"64\" required></label>\
         <button type=\"submit\">{}</button></form>",
        esc(lang.t("view.stock")),
        esc(lang.t("stock.sku")),
        esc(raw),
        esc(lang.t("stock.show")),
    );
    if raw.is_empty() {
        let _ = write!(html, "<p class=\"muted\">{}</p>", esc(lang.t("stock.hint")));
        return Ok(html);
    }
    let sku = Sku::parse(raw).map_err(|_| {
        ViewError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            lang.t("stock.invalid").replace("{sku}", raw),
        )
    })?;
    let rows = state.node.read(|r| {
        let st = r.state();
        let product = st
            .catalog
            .get(&sku)
            .map(|p| (p.name.to_string(), p.price_cents))?;
        let hq = ActorId::hq();
        let rows: Vec<[i64; 6]> = state
            .settings
            .stores
            .iter()
            .map(|s| {
                [
                    st.available(s, &sku).max(0),
                    st.rights(s, &sku, &s.actor()).max(0),
                    st.rights(s, &sku, &hq).max(0),
                    i64::try_from(st.reserved(s, &sku)).unwrap_or(i64::MAX),
                    i64::try_from(crate::domain::motion::in_transit(st, s, &sku))
                        .unwrap_or(i64::MAX),
                    st.on_hand(s, &sku).max(0),
                ]
            })
            .collect();
        Some((product, rows))
    });
    let Some(((name, price), rows)) = rows else {
        return Err(ViewError::new(
            axum::http::StatusCode::NOT_FOUND,
            lang.t("stock.unknown").replace("{sku}", sku.as_str()),
        ));
    };
    let _ = write!(
        html,
        "<h2 id=\"stock-product\">{} · {} · {}.{:02} €</h2><table id=\"stock\"><thead><tr><th>{}</th>",
        esc(sku.as_str()),
        esc(&name),
        price / 100,
        (price % 100).abs(),
        esc(lang.t("store")),
    );
    let heads = [
        "stock.available",
        "stock.store_rights",
        "stock.hq_rights",
        "stock.reserved",
        "stock.in_transit",
        "stock.on_hand",
    ];
    for h in heads {
        let _ = write!(html, "<th class=\"num\">{}</th>", esc(lang.t(h)));
    }
    html.push_str("</tr></thead><tbody>");
    let mut total = [0i64; 6];
    for (store, row) in state.settings.stores.iter().zip(&rows) {
        let _ = write!(
            html,
            "<tr data-store=\"{0}\"><td>{0}</td>",
            esc(store.as_str())
        );
        for (i, v) in row.iter().enumerate() {
            total[i] = total[i].saturating_add(*v);
            let _ = write!(html, "<td class=\"num\">{v}</td>");
        }
        html.push_str("</tr>");
    }
    let _ = write!(
        html,
        "</tbody><tfoot><tr><th>{}</th>",
        esc(lang.t("stock.total"))
    );
    for v in total {
        let _ = write!(html, "<th class=\"num\">{v}</th>");
    }
    html.push_str("</tr></tfoot></table>");
    Ok(html)
}

const STATUSES: [OrderStatus; 6] = [
    OrderStatus::Placed,
    OrderStatus::Picking,
    OrderStatus::Ready,
    OrderStatus::HandedOver,
    OrderStatus::Cancelled,
    OrderStatus::Expired,
];

fn status_text(lang: Lang, s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Placed => lang.t("status.placed"),
        OrderStatus::Picking => lang.t("status.picking"),
        OrderStatus::Ready => lang.t("status.ready"),
        OrderStatus::HandedOver => lang.t("status.handed_over"),
        OrderStatus::Cancelled => lang.t("status.cancelled"),
        OrderStatus::Expired => lang.t("status.expired"),
    }
}

/// Orders with their state and age, newest first, filtered by store and status.
pub fn orders(
    state: &HqState,
    lang: Lang,
    q: &HashMap<String, String>,
    now_ms: u64,
) -> Result<String, ViewError> {
    let store = match query(q, "store") {
        "" => None,
        s => Some(crate::hq::api::known_store(state, s)?),
    };
    let status = match query(q, "status") {
        "" => None,
        s => Some(
            STATUSES
                .into_iter()
                .find(|x| x.as_str() == s)
                .ok_or_else(|| {
                    ViewError::new(
                        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                        format!("unknown order status {s:?}"),
                    )
                })?,
        ),
    };
    let (total, rows) = state.node.read(|r| {
        let mut all: Vec<_> = r
            .state()
            .orders
            .values()
            .filter(|o| store.as_ref().is_none_or(|s| &o.store == s))
            .filter(|o| status.is_none_or(|s| o.status == s))
            .collect();
        all.sort_by_key(|o| std::cmp::Reverse((o.placed_at_ms, o.id.clone())));
        let total = all.len();
        let rows: Vec<_> = all
            .into_iter()
            .take(ORDERS_MAX)
            .map(|o| {
                (
                    o.id.to_string(),
                    o.store.to_string(),
                    o.customer.to_string(),
                    o.status,
                    o.placed_at_ms,
                    o.lines.len(),
                    o.lines.values().map(|l| u64::from(l.qty)).sum::<u64>(),
                )
            })
            .collect();
        (total, rows)
    });
    let mut status_options = vec![(String::new(), lang.t("all").to_string())];
    status_options.extend(
        STATUSES
            .iter()
            .map(|s| (s.as_str().to_string(), status_text(lang, *s).to_string())),
    );
    let mut html = format!(
        "<h1>{}</h1><form method=\"get\" class=\"filters\">{}<label>{}{}</label><button type=\"submit\">{}</button></form>\
         <p class=\"muted\" id=\"orders-shown\">{}</p>",
        esc(lang.t("view.orders")),
        store_filter(state, lang, query(q, "store")),
        esc(lang.t("orders.status")),
        select("status", &status_options, query(q, "status")),
        esc(lang.t("filter")),
        esc(&lang
            .t("orders.shown")
            .replace("{n}", &rows.len().to_string())
            .replace("{total}", &total.to_string())),
    );
    if rows.is_empty() {
        let _ = write!(
            html,
            "<p class=\"empty\">{}</p>",
            esc(lang.t("orders.none"))
        );
        return Ok(html);
    }
    let _ = write!(
        html,
        "<table id=\"orders\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>\
         <th class=\"num\">{}</th><th class=\"num\">{}</th></tr></thead><tbody>",
        esc(lang.t("orders.order")),
        esc(lang.t("store")),
        esc(lang.t("orders.customer")),
        esc(lang.t("orders.status")),
        esc(lang.t("orders.age")),
        esc(lang.t("orders.lines")),
        esc(lang.t("orders.units")),
    );
    for (id, store, customer, status, placed, lines, units) in rows {
        let _ = write!(
            html,
            "<tr data-order=\"{id}\" data-status=\"{st}\"><td><code>{id}</code></td><td>{store}</td><td>{customer}</td>\
             <td><span class=\"pill s-{st}\">{word}</span></td><td>{age}</td><td class=\"num\">{lines}</td><td class=\"num\">{units}</td></tr>",
            id = esc(&id),
            store = esc(&store),
            customer = esc(&customer),
            st = status.as_str(),
            word = esc(status_text(lang, status)),
            age = esc(&super::page::span(now_ms, placed)),
        );
    }
    html.push_str("</tbody></table>");
    Ok(html)
}

/// The webhook queue: counts, the last error, and the undelivered events.
pub async fn webhooks(state: &HqState, lang: Lang, now_ms: u64) -> Result<String, ViewError> {
    let shared = state.shared_webhooks.as_ref();
    let q = crate::hq::webhook::queue::shown(&state.node, shared, WEBHOOK_ROWS_MAX)
        .await
        .map_err(|e| {
            ViewError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the webhook queue failed: {e}"),
            )
        })?;
    let mut html = format!("<h1>{}</h1>", esc(lang.t("view.webhooks")));
    if state.settings.webhook_url.is_none() {
        let _ = write!(
            html,
            "<p class=\"muted\">{}</p>",
            esc(lang.t("webhooks.no_url"))
        );
    }
    let _ = write!(
        html,
        "<div class=\"tiles\"><div class=\"tile\" id=\"wh-pending\"><b>{}</b>{}</div>\
         <div class=\"tile{}\" id=\"wh-failing\"><b>{}</b>{}</div><div class=\"tile\" id=\"wh-delivered\"><b>{}</b>{}</div></div>",
        q.pending,
        esc(lang.t("webhooks.pending")),
        if q.failing > 0 { " bad" } else { "" },
        q.failing,
        esc(lang.t("webhooks.failing")),
        q.delivered,
        esc(lang.t("webhooks.delivered")),
    );
    if let Some(e) = &q.last_error {
        let _ = write!(
            html,
            "<p class=\"error\" id=\"wh-last-error\">{}: {}</p>",
            esc(lang.t("webhooks.last_error")),
            esc(e)
        );
    }
    if q.rows.is_empty() {
        let _ = write!(
            html,
            "<p class=\"empty\">{}</p>",
            esc(lang.t("webhooks.none"))
        );
        return Ok(html);
    }
    let _ = write!(
        html,
        "<table id=\"webhooks\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th class=\"num\">{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(lang.t("webhooks.event")),
        esc(lang.t("webhooks.type")),
        esc(lang.t("orders.age")),
        esc(lang.t("webhooks.attempts")),
        esc(lang.t("webhooks.next")),
        esc(lang.t("webhooks.last_error")),
    );
    for r in &q.rows {
        let next = if r.next_attempt_ms > now_ms {
            super::page::span(r.next_attempt_ms, now_ms)
        } else {
            "0 s".to_string()
        };
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.event_id),
            esc(&r.kind),
            esc(&super::page::span(now_ms, r.created_ms)),
            r.attempts,
            esc(&next),
            esc(r.last_error.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</tbody></table>");
    Ok(html)
}

/// Each store's VERI*FACTU chain: records, last invoice and hash, intact or where it broke.
pub fn fiscal(state: &HqState, lang: Lang) -> String {
    let mut html = format!(
        "<h1>{}</h1><table id=\"fiscal\"><thead><tr><th>{}</th><th class=\"num\">{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(lang.t("view.fiscal")),
        esc(lang.t("store")),
        esc(lang.t("fiscal.records")),
        esc(lang.t("fiscal.last_invoice")),
        esc(lang.t("fiscal.last_huella")),
        esc(lang.t("fiscal.chain")),
    );
    for store in &state.settings.stores {
        let v = crate::hq::journal::view(state, store);
        let waiting = if v.pending > 0 {
            format!(
                " <span class=\"muted\">{}</span>",
                esc(&lang
                    .t("fiscal.pending")
                    .replace("{n}", &v.pending.to_string()))
            )
        } else {
            String::new()
        };
        let chain = match &v.broken_at {
            None => format!(
                "<span class=\"pill on\">{}</span>{waiting}",
                esc(lang.t("fiscal.intact"))
            ),
            Some(at) => format!(
                "<span class=\"pill off\">{}</span>",
                esc(&lang.t("fiscal.broken").replace("{at}", at))
            ),
        };
        let huella = v.last_huella.as_deref().map_or("-".to_string(), |h| {
            h.chars().take(16).collect::<String>() + "…"
        });
        let _ = write!(
            html,
            "<tr data-store=\"{s}\"><td>{s}</td><td class=\"num\">{}</td><td>{}</td><td><code>{}</code></td><td>{chain}</td></tr>",
            v.records,
            esc(v.last_invoice.as_deref().unwrap_or("-")),
            esc(&huella),
            s = esc(store.as_str()),
        );
    }
    html.push_str("</tbody></table>");
    html
}
