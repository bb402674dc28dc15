//! The cash sessions of every store's tills (DESIGN.md §18), as HQ derives them from the
//! stores' replicated ops: open or closed, float, sales, expected against counted, and the
//! Z report's totals (by tender, VAT, invoices). Same figures as the store's own reports,
//! because both come from `domain::till::cash`.

use super::{query, store_filter, ViewError};
use crate::domain::op::Tender;
use crate::domain::till::{CashReport, CashSession};
use crate::domain::StoreId;
use crate::hq::console::page::{ago, esc, select, Lang};
use crate::hq::HqState;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Sessions listed at most (newest first).
pub const SESSIONS_MAX: usize = 200;

/// A session open for longer than this is flagged (left open over night).
const STALE_MS: u64 = 20 * 3_600_000;

/// The console's words for this view, `(es, en)` picked by `lang`.
fn w(lang: Lang, es: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Es => es,
        Lang::En => en,
    }
}

fn money(cents: i64) -> String {
    crate::devices::escpos::format_cents(cents)
}

fn status_filter(lang: Lang, current: &str) -> String {
    let options = [
        ("", w(lang, "Todas", "All")),
        ("open", w(lang, "Abiertas", "Open")),
        ("closed", w(lang, "Cerradas", "Closed")),
    ]
    .map(|(v, l)| (v.to_string(), l.to_string()));
    format!(
        "<label>{}{}</label>",
        esc(w(lang, "Estado", "Status")),
        select("status", &options, current)
    )
}

/// `/console/cash?store=&status=`: one row per session, newest first.
pub fn cash(
    state: &HqState,
    lang: Lang,
    q: &HashMap<String, String>,
    now_ms: u64,
) -> Result<String, ViewError> {
    let store = match query(q, "store") {
        "" => None,
        s => Some(
            StoreId::parse(s)
                .ok()
                .filter(|s| state.knows(s))
                .ok_or_else(|| {
                    ViewError::new(StatusCode::NOT_FOUND, format!("unknown store {s:?}"))
                })?,
        ),
    };
    let status = query(q, "status");
    let open_wanted = match status {
        "" => None,
        "open" => Some(true),
        "closed" => Some(false),
        other => {
            return Err(ViewError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("status must be open or closed, got {other:?}"),
            ))
        }
    };
    let sessions: Vec<CashSession> = state.node.read(|r| {
        let mut v: Vec<&CashSession> = r
            .state()
            .cash
            .sessions
            .values()
            .filter(|s| store.as_ref().is_none_or(|st| &s.store == st))
            .filter(|s| open_wanted.is_none_or(|o| o == s.closed.is_none()))
            .collect();
        v.sort_by(|a, b| (b.opened_ms, &b.id).cmp(&(a.opened_ms, &a.id)));
        v.into_iter().take(SESSIONS_MAX).cloned().collect()
    });
    let mut html = format!(
        "<h1>{}</h1><form method=\"get\" class=\"filters\">{}{}<button type=\"submit\">{}</button></form>",
        esc(w(lang, "Cajas", "Cash sessions")),
        store_filter(state, lang, query(q, "store")),
        status_filter(lang, status),
        esc(lang.t("filter")),
    );
    if sessions.is_empty() {
        let _ = write!(
            html,
            "<p class=\"muted\" id=\"no-sessions\">{}</p>",
            esc(w(lang, "Ninguna sesión de caja.", "No cash sessions."))
        );
        return Ok(html);
    }
    let heads = [
        (w(lang, "Tienda · caja", "Store · till"), ""),
        (w(lang, "Apertura", "Opened"), ""),
        (w(lang, "Estado", "Status"), ""),
        (w(lang, "Fondo", "Float"), "num"),
        (w(lang, "Ventas", "Sales"), "num"),
        (w(lang, "Efectivo", "Cash"), "num"),
        (w(lang, "Tarjeta", "Card"), "num"),
        (w(lang, "Devoluciones", "Returns"), "num"),
        (w(lang, "Descuentos", "Discounts"), "num"),
        (w(lang, "IVA", "VAT"), "num"),
        (w(lang, "Esperado", "Expected"), "num"),
        (w(lang, "Contado", "Counted"), "num"),
        (w(lang, "Diferencia", "Difference"), "num"),
        (w(lang, "Facturas", "Invoices"), ""),
    ];
    html.push_str("<table id=\"cash\"><thead><tr>");
    for (h, class) in heads {
        let _ = write!(html, "<th class=\"{class}\">{}</th>", esc(h));
    }
    html.push_str("</tr></thead><tbody>");
    for s in &sessions {
        row(&mut html, lang, s, &s.report(), now_ms);
    }
    html.push_str("</tbody></table>");
    Ok(html)
}

fn row(html: &mut String, lang: Lang, s: &CashSession, r: &CashReport, now_ms: u64) {
    let status = match (&s.closed, now_ms.saturating_sub(s.opened_ms) > STALE_MS) {
        (Some(c), _) => format!(
            "<span class=\"pill\">{}</span> <span class=\"muted\">{}</span>",
            esc(w(lang, "cerrada", "closed")),
            esc(&ago(lang, now_ms, c.closed_ms))
        ),
        (None, true) => format!(
            "<span class=\"pill off\">{}</span>",
            esc(w(lang, "abierta desde otro día", "open since another day"))
        ),
        (None, false) => format!(
            "<span class=\"pill on\">{}</span>",
            esc(w(lang, "abierta", "open"))
        ),
    };
    let tender = |t| money(r.by_tender.get(&t).copied().unwrap_or(0));
    let vat: i64 = r.vat.iter().map(|v| v.cuota_cents).sum();
    let (counted, difference) = match (r.counted_cents, r.difference_cents()) {
        (Some(c), Some(d)) => {
            let class = if d == 0 { "" } else { " class=\"warn\"" };
            (money(c), format!("<strong{class}>{}</strong>", money(d)))
        }
        _ => ("-".to_string(), "-".to_string()),
    };
    let invoices = match (&r.first_invoice, &r.last_invoice) {
        (Some(a), Some(b)) => format!("{a} … {b}"),
        _ => "-".to_string(),
    };
    let _ = write!(
        html,
        "<tr data-session=\"{id}\" data-store=\"{store}\" data-till=\"{till}\"><td>{store} · <strong>{till}</strong></td>\
         <td>{opened} <span class=\"muted\">{by}</span></td><td>{status}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{counted}</td><td class=\"num\">{difference}</td><td>{}</td></tr>",
        money(r.float_cents),
        r.sales,
        tender(Tender::Cash),
        tender(Tender::Card),
        money(r.returns_cents),
        money(r.discounts_cents),
        money(vat),
        money(r.expected_cents),
        esc(&invoices),
        id = esc(s.id.as_str()),
        store = esc(s.store.as_str()),
        till = esc(s.till.as_str()),
        opened = esc(&ago(lang, now_ms, s.opened_ms)),
        by = esc(&s.opened_by),
    );
}
