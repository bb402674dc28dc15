//! The chain's promotions (DESIGN.md §18): each with its kind, skus and categories, dates,
//! priority and whether it runs now; `admin` accounts create one with the form below the list and end one
//! early (`super::super::promotions` checks both by the HQ API's rules).

use crate::domain::till::{Promotion, PromotionKind};
use crate::hq::console::page::{esc, url, Lang};
use crate::hq::console::ConsoleSession;
use crate::hq::HqState;
use std::fmt::Write as _;

/// The console's words for this view, `(es, en)` picked by `lang`.
pub fn w(lang: Lang, es: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Es => es,
        Lang::En => en,
    }
}

fn when(ms: u64) -> String {
    at(ms, "%Y-%m-%d %H:%M")
}

/// `ms` as a date and time in Madrid written the way `lang` reads it (`31/12/2026 23:59`,
/// `31 Dec 2026 23:59`), for sentences; the raw number only if it is no time at all.
pub fn local_time(lang: Lang, ms: u64) -> String {
    match lang {
        Lang::Es => at(ms, "%d/%m/%Y %H:%M"),
        Lang::En => at(ms, "%d %b %Y %H:%M"),
    }
}

fn at(ms: u64, format: &str) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .and_then(|t| {
            jiff::tz::TimeZone::get("Europe/Madrid")
                .ok()
                .map(|z| (t, z))
        })
        .map_or_else(
            || ms.to_string(),
            |(t, z)| t.to_zoned_datetime(z).strftime(format).to_string(),
        )
}

fn what(lang: Lang, p: &Promotion) -> String {
    match p.kind {
        PromotionKind::Percent { bp } => format!("-{} %", f64::from(bp) / 100.0),
        PromotionKind::NForM { n, m } => format!("{n}x{m}"),
        PromotionKind::SecondUnit { bp } => format!(
            "{} -{} %",
            w(lang, "2ª unidad", "2nd unit"),
            f64::from(bp) / 100.0
        ),
    }
}

/// `/console/promotions`: every promotion, running ones first; the admin's forms.
pub fn promotions(state: &HqState, lang: Lang, who: &ConsoleSession, now_ms: u64) -> String {
    let mut all: Vec<Promotion> = state
        .node
        .read(|r| r.state().promotions.iter().cloned().collect());
    let rank = |p: &Promotion| {
        if p.active_at(now_ms) {
            0
        } else if now_ms < p.starts_ms {
            1
        } else {
            2
        }
    };
    all.sort_by(|a, b| (rank(a), &a.id).cmp(&(rank(b), &b.id)));
    let mut html = format!("<h1>{}</h1>", esc(w(lang, "Promociones", "Promotions")));
    let heads = [
        w(lang, "Promoción", "Promotion"),
        w(lang, "Oferta", "Offer"),
        w(lang, "Artículos y categorías", "Skus and categories"),
        w(lang, "Desde", "From"),
        w(lang, "Hasta", "Until"),
        w(lang, "Prioridad", "Priority"),
        w(lang, "Estado", "Status"),
        "",
    ];
    html.push_str("<table id=\"promotions\"><thead><tr>");
    for h in heads {
        let _ = write!(html, "<th>{}</th>", esc(h));
    }
    html.push_str("</tr></thead><tbody>");
    for p in &all {
        let (class, word) = match rank(p) {
            0 => ("on", w(lang, "activa", "running")),
            1 => ("", w(lang, "programada", "scheduled")),
            _ => ("off", w(lang, "terminada", "ended")),
        };
        let end = if who.is_admin() && rank(p) < 2 {
            format!(
                "<form method=\"post\" action=\"/console/promotions/{}/end\"><button type=\"submit\" class=\"danger\">{}</button></form>",
                url(p.id.as_str()),
                esc(w(lang, "Terminar ya", "End now"))
            )
        } else {
            String::new()
        };
        let category = w(lang, "categoría", "category");
        let skus: Vec<String> = p
            .skus
            .iter()
            .map(|s| s.to_string())
            .chain(p.categories.iter().map(|c| format!("{category} {c}")))
            .collect();
        let _ = write!(
            html,
            "<tr data-promotion=\"{id}\"><td><strong>{name}</strong> <span class=\"muted\">{id}</span></td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td><span class=\"pill {class}\">{}</span></td><td>{end}</td></tr>",
            esc(&what(lang, p)),
            esc(&skus.join(", ")),
            esc(&when(p.starts_ms)),
            esc(&when(p.ends_ms)),
            p.priority,
            esc(word),
            id = esc(p.id.as_str()),
            name = esc(&p.name),
        );
    }
    html.push_str("</tbody></table>");
    if all.is_empty() {
        let _ = write!(
            html,
            "<p class=\"muted\">{}</p>",
            esc(w(lang, "Ninguna promoción.", "No promotions."))
        );
    }
    if who.is_admin() {
        html.push_str(&form(lang));
    }
    html
}

/// The new-promotion form: the API's fields, skus comma-separated, dates or RFC 3339 times.
fn form(lang: Lang) -> String {
    let field = |name: &str, label: &str, extra: &str| {
        format!(
            "<label>{}<input name=\"{name}\" {extra}></label>",
            esc(label)
        )
    };
    let kinds = [
        ("percent", w(lang, "% de descuento", "percent off")),
        ("n_for_m", w(lang, "N por M (3x2)", "N for M (3 for 2)")),
        (
            "second_unit",
            w(lang, "2ª unidad al X %", "second unit X % off"),
        ),
    ];
    let options: String = kinds
        .iter()
        .map(|(v, l)| format!("<option value=\"{v}\">{}</option>", esc(l)))
        .collect();
    format!(
        "<h2>{}</h2><form method=\"post\" action=\"/console/promotions/new\" class=\"promotion-form\" id=\"new-promotion\">\
         {}{}<label>{}<select name=\"kind\">{options}</select></label>{}{}{}{}{}{}{}{}\
         <button type=\"submit\">{}</button></form>",
        esc(w(lang, "Nueva promoción", "New promotion")),
        field("id", w(lang, "Código", "Id"), "required maxlength=\"64\""),
        field("name", w(lang, "Nombre", "Name"), "maxlength=\"100\""),
        esc(w(lang, "Tipo", "Kind")),
        field(
            "skus",
            w(lang, "Artículos (separados por comas)", "Skus (comma-separated)"),
            ""
        ),
        field(
            "categories",
            w(
                lang,
                "Categorías (separadas por comas)",
                "Categories (comma-separated)"
            ),
            ""
        ),
        field("percent", w(lang, "Porcentaje", "Percent"), "inputmode=\"decimal\""),
        field("n", "N", "inputmode=\"numeric\""),
        field("m", "M", "inputmode=\"numeric\""),
        field(
            "starts",
            w(lang, "Desde (AAAA-MM-DD)", "From (YYYY-MM-DD)"),
            "required"
        ),
        field(
            "ends",
            w(lang, "Hasta (AAAA-MM-DD)", "Until (YYYY-MM-DD)"),
            "required"
        ),
        field("priority", w(lang, "Prioridad", "Priority"), "inputmode=\"numeric\""),
        esc(w(lang, "Crear promoción", "Create promotion")),
    )
}
