//! The inbox view: the page with its filters, the live list the SSE stream refreshes, and
//! each item's card with its facts and the resolve actions an admin may take.

use super::*;

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
