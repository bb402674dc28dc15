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
            .map(|p| (p.name.clone(), p.price_cents))?;
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

/// The inbox page: filters and the live list (`inbox_items`).
pub fn inbox(
    state: &HqState,
    lang: Lang,
    who: &ConsoleSession,
    q: &HashMap<String, String>,
) -> Result<String, ViewError> {
    let items = inbox_items(state, lang, who, q)?;
    let mut kinds = vec![(String::new(), lang.t("all").to_string())];
    kinds.extend(
        ConflictKind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), lang.t(kind_key(*k)).to_string())),
    );
    let open_options = [
        ("true".to_string(), lang.t("inbox.open").to_string()),
        ("false".to_string(), lang.t("inbox.everything").to_string()),
    ];
    let open = match query(q, "open") {
        "false" => "false",
        _ => "true",
    };
    let src = format!(
        "/console/inbox/items?store={}&kind={}&open={open}",
        url(query(q, "store")),
        url(query(q, "kind"))
    );
    Ok(format!(
        "<h1>{} <span class=\"live\" id=\"live\" hidden>● {}</span></h1>\
         <form method=\"get\" class=\"filters\">{}<label>{}{}</label><label>{}{}</label><button type=\"submit\">{}</button></form>\
         <div id=\"inbox-items\" data-src=\"{}\">{items}</div>",
        esc(lang.t("view.inbox")),
        esc(lang.t("inbox.live")),
        store_filter(state, lang, query(q, "store")),
        esc(lang.t("inbox.kind")),
        select("kind", &kinds, query(q, "kind")),
        esc(lang.t("inbox.open")),
        select("open", &open_options, open),
        esc(lang.t("filter")),
        esc(&src),
    ))
}

fn kind_key(k: ConflictKind) -> &'static str {
    match k {
        ConflictKind::CancelMetHandover => "kind.cancel_met_handover",
        ConflictKind::Shrinkage => "kind.shrinkage",
        ConflictKind::StalePrice => "kind.stale_price",
        ConflictKind::ErasedCustomer => "kind.erased_customer",
        ConflictKind::DoubleReturn => "kind.double_return",
        ConflictKind::DeliveryDiscrepancy => "kind.delivery_discrepancy",
        ConflictKind::TransferDiscrepancy => "kind.transfer_discrepancy",
    }
}

/// The action's words: `cancel_order:O-1` names its order.
pub fn action_text(lang: Lang, action: &str) -> String {
    if let Some(order) = action.strip_prefix("cancel_order:") {
        return lang.t("action.cancel_order").replace("{order}", order);
    }
    let key = match action {
        "confirm_goods_left" => "action.confirm_goods_left",
        "confirm_restocked" => "action.confirm_restocked",
        "accept_loss" => "action.accept_loss",
        "accept_price" => "action.accept_price",
        "note_recovery" => "action.note_recovery",
        "acknowledge" => "action.acknowledge",
        "confirm_loss" => "action.confirm_loss",
        "note_found" => "action.note_found",
        other => return other.to_string(),
    };
    lang.t(key).to_string()
}

/// One fact's value as text: lists joined, a line object as `SKU-2 sent 6 received 4 ...`
/// (its sku, id or store first, unlabelled).
fn fact_text(v: &Value) -> String {
    const FIRST: [&str; 3] = ["sku", "id", "store"];
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(fact_text).collect::<Vec<_>>().join("; "),
        Value::Object(map) => {
            let named = FIRST.iter().filter_map(|k| map.get(*k)).map(fact_text);
            let rest = map
                .iter()
                .filter(|(k, v)| !v.is_null() && !FIRST.contains(&k.as_str()))
                .map(|(k, v)| format!("{k} {}", fact_text(v)));
            named.chain(rest).collect::<Vec<_>>().join(" ")
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A fact as (label, text): times (`*_ms`) shown as how long ago.
fn fact(lang: Lang, key: &str, v: &Value, now_ms: u64) -> (String, String) {
    match (key.strip_suffix("_ms"), v.as_u64()) {
        (Some(label), Some(ms)) => (label.to_string(), ago(lang, now_ms, ms)),
        _ => (key.to_string(), fact_text(v)),
    }
}

/// The inbox list alone (what `console.js` reloads when the SSE stream says it changed).
pub fn inbox_items(
    state: &HqState,
    lang: Lang,
    who: &ConsoleSession,
    q: &HashMap<String, String>,
) -> Result<String, ViewError> {
    let mut filters = q.clone();
    if query(q, "open") != "false" {
        filters.insert("open".into(), "true".into());
    }
    let items = crate::hq::conflicts::filtered(state, &filters)?;
    if items.is_empty() {
        return Ok(format!(
            "<p class=\"empty\">{}</p>",
            esc(lang.t("inbox.empty"))
        ));
    }
    let mut html = String::new();
    for c in &items {
        item_card(&mut html, lang, who, c);
    }
    Ok(html)
}

fn item_card(html: &mut String, lang: Lang, who: &ConsoleSession, c: &Conflict) {
    let summary = match lang {
        Lang::Es => c.summary_es(),
        Lang::En => c.summary_en(),
    };
    let facts = serde_json::to_value(&c.facts).unwrap_or(Value::Null);
    let mut dl = String::new();
    if let Value::Object(map) = facts {
        let now = crate::store::now_ms();
        for (k, v) in map.iter().filter(|(_, v)| !v.is_null()) {
            let (label, text) = fact(lang, k, v, now);
            let _ = write!(dl, "<dt>{}</dt><dd>{}</dd>", esc(&label), esc(&text));
        }
    }
    let _ = write!(
        html,
        "<article class=\"card item{}\" data-id=\"{id}\" data-kind=\"{kind}\"><div class=\"item-head\">\
         <span class=\"pill k-{kind}\">{kw}</span> <span class=\"store\">{store}</span> \
         <span class=\"muted\">{at}</span></div><p class=\"summary\">{summary}</p><dl class=\"facts\">{dl}</dl>",
        if c.resolution.is_some() { " resolved" } else { "" },
        id = esc(&c.id),
        kind = c.kind.as_str(),
        kw = esc(lang.t(kind_key(c.kind))),
        store = esc(c.store.as_str()),
        at = esc(&ago(lang, crate::store::now_ms(), c.at.wall_ms())),
        summary = esc(&summary),
    );
    match (&c.resolution, who.is_admin()) {
        (Some(r), _) => {
            let line = lang
                .t("inbox.resolved")
                .replace("{action}", &action_text(lang, &r.action))
                .replace("{by}", &r.by);
            let note = if r.note.is_empty() {
                String::new()
            } else {
                format!(" · {}", esc(&r.note))
            };
            let _ = write!(html, "<p class=\"resolution\">{}{note}</p>", esc(&line));
        }
        (None, true) => {
            let _ = write!(
                html,
                "<form method=\"post\" action=\"/console/inbox/{}/resolve\" class=\"resolve\">\
                 <input name=\"note\" maxlength=\"500\" placeholder=\"{}\" aria-label=\"{}\">",
                url(&c.id),
                esc(lang.t("inbox.note")),
                esc(lang.t("inbox.note")),
            );
            for a in &c.actions {
                let _ = write!(
                    html,
                    "<button type=\"submit\" name=\"action\" value=\"{}\">{}</button>",
                    esc(a),
                    esc(&action_text(lang, a))
                );
            }
            html.push_str("</form>");
        }
        (None, false) => {
            let _ = write!(
                html,
                "<p class=\"muted read-only\">{}</p>",
                esc(lang.t("inbox.read_only"))
            );
        }
    }
    html.push_str("</article>");
}

/// The webhook queue: counts, the last error, and the undelivered events.
pub async fn webhooks(state: &HqState, lang: Lang, now_ms: u64) -> Result<String, ViewError> {
    let q = crate::hq::webhook::queue::summary(&state.node, WEBHOOK_ROWS_MAX)
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
