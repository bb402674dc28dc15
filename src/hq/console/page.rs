//! The console's page frame and words: the language (es/en) chosen by `?lang=`, a cookie or
//! the browser, the Spanish and English texts, HTML escaping, and the layout every view sits
//! in (header, navigation with the live inbox count, the signed-in account).
//!
//! Pages carry no inline script or style: `console.js` and `console.css` are served beside
//! them, so the terminal's CSP applies unchanged.

use super::auth::{cookie_value, ConsoleSession};
use super::View;
use axum::http::HeaderMap;
use std::fmt::Write as _;

/// Cookie remembering the chosen language.
pub const LANG_COOKIE: &str = "sn_console_lang";

/// The console's two languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Es,
    En,
}

impl Lang {
    pub fn as_str(&self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "es" => Some(Lang::Es),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// `?lang=` first, then the cookie, then the browser's first choice; Spanish by default.
    pub fn pick(query: Option<&str>, headers: &HeaderMap) -> Lang {
        if let Some(l) = query.and_then(Lang::parse) {
            return l;
        }
        if let Some(l) = cookie_value(headers, LANG_COOKIE).and_then(|v| Lang::parse(&v)) {
            return l;
        }
        let accept = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.trim_start().starts_with("en") {
            Lang::En
        } else {
            Lang::Es
        }
    }

    /// The text for `key` (the key itself when missing, so a gap shows rather than hides).
    pub fn t(&self, key: &'static str) -> &'static str {
        TEXTS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or(key, |(_, es, en)| match self {
                Lang::Es => es,
                Lang::En => en,
            })
    }
}

/// (key, Spanish, English).
const TEXTS: &[(&str, &str, &str)] = &[
    ("title", "Consola de central", "HQ console"),
    (
        "login.title",
        "Acceso a la consola",
        "Sign in to the console",
    ),
    ("login.user", "Usuario", "User"),
    ("login.password", "Contraseña", "Password"),
    ("login.submit", "Entrar", "Sign in"),
    (
        "login.bad",
        "Usuario o contraseña incorrectos",
        "Wrong user or password",
    ),
    (
        "login.locked",
        "Demasiados intentos fallidos: espera {s} s",
        "Too many failed attempts: wait {s} s",
    ),
    (
        "login.missing",
        "Escribe usuario y contraseña",
        "Enter user and password",
    ),
    ("logout", "Salir", "Sign out"),
    ("role.admin", "administración", "admin"),
    ("role.read_only", "solo lectura", "read-only"),
    ("view.stores", "Tiendas", "Stores"),
    ("view.stock", "Stock", "Stock"),
    ("view.orders", "Pedidos", "Orders"),
    ("view.inbox", "Incidencias", "Inbox"),
    ("view.webhooks", "Webhooks", "Webhooks"),
    ("view.fiscal", "VERI*FACTU", "VERI*FACTU"),
    ("view.cash", "Cajas", "Cash"),
    ("view.promotions", "Promociones", "Promotions"),
    ("store", "Tienda", "Store"),
    ("all", "Todas", "All"),
    ("filter", "Filtrar", "Filter"),
    ("online", "en línea", "online"),
    ("offline", "sin conexión", "offline"),
    ("never", "nunca", "never"),
    ("ago", "hace {t}", "{t} ago"),
    ("stores.link", "Enlace", "Link"),
    ("stores.last", "Último contacto", "Last contact"),
    ("stores.outbox", "Pendientes de enviar", "Outbox"),
    ("stores.lag", "Retraso (ops)", "Lag (ops)"),
    ("stores.digest", "Resumen", "Digest"),
    ("stores.open", "Incidencias abiertas", "Open items"),
    ("stock.sku", "SKU", "SKU"),
    ("stock.show", "Ver", "Show"),
    (
        "stock.hint",
        "Escribe un SKU para ver su stock en cada tienda.",
        "Enter a SKU to see its stock in every store.",
    ),
    ("stock.available", "Disponible", "Available"),
    (
        "stock.store_rights",
        "Derechos de la tienda",
        "Store rights",
    ),
    ("stock.hq_rights", "Derechos de central", "HQ rights"),
    ("stock.reserved", "Reservado", "Reserved"),
    ("stock.in_transit", "En tránsito", "In transit"),
    ("stock.on_hand", "En tienda", "On hand"),
    ("stock.total", "Total", "Total"),
    (
        "stock.unknown",
        "SKU desconocido: {sku}",
        "Unknown SKU: {sku}",
    ),
    (
        "stock.invalid",
        "SKU no válido: {sku}",
        "Invalid SKU: {sku}",
    ),
    ("orders.order", "Pedido", "Order"),
    ("orders.customer", "Cliente", "Customer"),
    ("orders.status", "Estado", "Status"),
    ("orders.age", "Antigüedad", "Age"),
    ("orders.lines", "Líneas", "Lines"),
    ("orders.units", "Unidades", "Units"),
    (
        "orders.none",
        "Ningún pedido coincide.",
        "No order matches.",
    ),
    (
        "orders.shown",
        "{n} de {total} pedidos",
        "{n} of {total} orders",
    ),
    ("status.placed", "recibido", "placed"),
    ("status.picking", "preparando", "picking"),
    ("status.ready", "listo", "ready"),
    ("status.handed_over", "entregado", "handed over"),
    ("status.cancelled", "cancelado", "cancelled"),
    ("status.expired", "caducado", "expired"),
    ("inbox.kind", "Tipo", "Kind"),
    ("inbox.open", "Abiertas", "Open"),
    ("inbox.everything", "Todas", "All"),
    ("inbox.empty", "No hay incidencias.", "No items."),
    ("inbox.note", "Motivo (opcional)", "Why (optional)"),
    (
        "inbox.resolved",
        "Resuelta: {action} por {by}",
        "Resolved: {action} by {by}",
    ),
    (
        "inbox.read_only",
        "Solo lectura: un administrador puede resolverla.",
        "Read-only: an admin can resolve it.",
    ),
    ("inbox.saved", "Incidencia resuelta.", "Item resolved."),
    ("inbox.live", "En directo", "Live"),
    (
        "kind.cancel_met_handover",
        "Cancelación tras preparar/entregar",
        "Cancel met a ready/handed-over order",
    ),
    (
        "kind.shrinkage",
        "Merma en recuento",
        "Shrinkage from a count",
    ),
    ("kind.stale_price", "Precio desfasado", "Stale price"),
    ("kind.erased_customer", "Cliente borrado", "Erased customer"),
    ("kind.double_return", "Devolución doble", "Double return"),
    (
        "kind.delivery_discrepancy",
        "Entrega con diferencias",
        "Delivery discrepancy",
    ),
    (
        "kind.transfer_discrepancy",
        "Traspaso con diferencias",
        "Transfer discrepancy",
    ),
    (
        "action.confirm_goods_left",
        "Confirmar que la mercancía salió",
        "Confirm the goods left",
    ),
    (
        "action.confirm_restocked",
        "Confirmar devuelto a estantería",
        "Confirm back on the shelf",
    ),
    (
        "action.cancel_order",
        "Cancelar pedido {order} y avisar",
        "Cancel order {order} and tell the customer",
    ),
    (
        "action.accept_loss",
        "Aceptar la pérdida",
        "Accept the loss",
    ),
    (
        "action.accept_price",
        "Aceptar el precio cobrado",
        "Accept the price charged",
    ),
    (
        "action.note_recovery",
        "Anotar recuperación",
        "Note a recovery",
    ),
    ("action.acknowledge", "Enterado", "Acknowledge"),
    (
        "action.confirm_loss",
        "Confirmar la pérdida",
        "Confirm the loss",
    ),
    (
        "action.note_found",
        "Anotar que apareció",
        "Note the units were found",
    ),
    ("webhooks.pending", "Pendientes", "Pending"),
    ("webhooks.failing", "Con fallos", "Failing"),
    ("webhooks.delivered", "Entregados", "Delivered"),
    ("webhooks.last_error", "Último error", "Last error"),
    ("webhooks.event", "Evento", "Event"),
    ("webhooks.type", "Tipo", "Type"),
    ("webhooks.attempts", "Intentos", "Attempts"),
    ("webhooks.next", "Próximo intento", "Next attempt"),
    ("webhooks.none", "Nada pendiente.", "Nothing pending."),
    (
        "webhooks.no_url",
        "No hay webhook configurado.",
        "No webhook is configured.",
    ),
    ("fiscal.records", "Registros", "Records"),
    ("fiscal.last_invoice", "Última factura", "Last invoice"),
    ("fiscal.last_huella", "Última huella", "Last hash"),
    ("fiscal.chain", "Cadena", "Chain"),
    ("fiscal.intact", "íntegra", "intact"),
    ("fiscal.broken", "ROTA en {at}", "BROKEN at {at}"),
    (
        "fiscal.pending",
        "{n} registro(s) esperan al que falta",
        "{n} record(s) wait for a missing one",
    ),
    ("error.title", "No se pudo", "That did not work"),
    (
        "error.forbidden",
        "Tu cuenta es de solo lectura: no puede cambiar nada.",
        "Your account is read-only: it cannot change anything.",
    ),
    ("back", "Volver", "Back"),
];

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode a query value.
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// "3 min", "2 h", "5 d" between `at_ms` and `now_ms`.
pub fn span(now_ms: u64, at_ms: u64) -> String {
    let s = now_ms.saturating_sub(at_ms) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// "hace 3 min" / "3 min ago".
pub fn ago(lang: Lang, now_ms: u64, at_ms: u64) -> String {
    lang.t("ago").replace("{t}", &span(now_ms, at_ms))
}

/// The whole page: header, navigation (with `view` current) and `body`.
pub fn layout(
    lang: Lang,
    who: &ConsoleSession,
    view: View,
    open_items: usize,
    body: &str,
) -> String {
    let mut nav = String::new();
    for v in View::ALL {
        let current = if v == view {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            nav,
            "<a href=\"/console/{p}\" data-view=\"{p}\"{current}>{}",
            esc(lang.t(v.label())),
            p = v.path()
        );
        if v == View::Inbox {
            let _ = write!(
                nav,
                " <span id=\"inbox-count\" class=\"count\">{open_items}</span>"
            );
        }
        nav.push_str("</a>");
    }
    let other = match lang {
        Lang::Es => Lang::En,
        Lang::En => Lang::Es,
    };
    format!(
        "<!doctype html><html lang=\"{l}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · {vt}</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head>\
         <body data-view=\"{vp}\"><header><a class=\"brand\" href=\"/console/stores\">storenode · {title}</a>\
         <nav>{nav}</nav><div class=\"who\"><span id=\"who\">{name} ({role})</span> \
         <a href=\"?lang={o}\" id=\"lang\" hreflang=\"{o}\">{O}</a>\
         <form method=\"post\" action=\"/console/logout\"><button type=\"submit\" id=\"logout\">{logout}</button></form>\
         </div></header><main>{body}</main></body></html>",
        l = lang.as_str(),
        title = esc(lang.t("title")),
        vt = esc(lang.t(view.label())),
        vp = view.path(),
        name = esc(&who.name),
        role = esc(lang.t(match who.role {
            crate::config::ConsoleRole::Admin => "role.admin",
            crate::config::ConsoleRole::ReadOnly => "role.read_only",
        })),
        o = other.as_str(),
        O = other.as_str().to_uppercase(),
        logout = esc(lang.t("logout")),
    )
}

/// The login page, with an error line when a try failed.
pub fn login(lang: Lang, error: Option<&str>, user: &str) -> String {
    let error = error
        .map(|e| {
            format!(
                "<p class=\"error\" id=\"login-error\" role=\"alert\">{}</p>",
                esc(e)
            )
        })
        .unwrap_or_default();
    let other = if lang == Lang::Es { "en" } else { "es" };
    format!(
        "<!doctype html><html lang=\"{l}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\"></head>\
         <body class=\"login\"><form method=\"post\" action=\"/console/login\" class=\"card login-card\">\
         <h1>storenode · {title}</h1><p class=\"muted\">{sub}</p>{error}\
         <label>{u}<input name=\"user\" id=\"user\" autocomplete=\"username\" maxlength=\"64\" value=\"{user}\" required autofocus></label>\
         <label>{p}<input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" maxlength=\"256\" required></label>\
         <button type=\"submit\" id=\"login-submit\" class=\"primary\">{s}</button>\
         <a href=\"?lang={other}\" class=\"muted\" hreflang=\"{other}\">{O}</a></form></body></html>",
        l = lang.as_str(),
        title = esc(lang.t("title")),
        sub = esc(lang.t("login.title")),
        u = esc(lang.t("login.user")),
        p = esc(lang.t("login.password")),
        s = esc(lang.t("login.submit")),
        user = esc(user),
        O = other.to_uppercase(),
    )
}

/// An error box with a way back.
pub fn error_box(lang: Lang, message: &str, back: &str) -> String {
    format!(
        "<div class=\"card error-card\" role=\"alert\"><h2>{}</h2><p id=\"error-message\">{}</p>\
         <a href=\"{}\">{}</a></div>",
        esc(lang.t("error.title")),
        esc(message),
        esc(back),
        esc(lang.t("back"))
    )
}

/// `<select name=..>` with `options` as (value, label) and `current` selected.
pub fn select(name: &str, options: &[(String, String)], current: &str) -> String {
    let mut out = format!("<select name=\"{name}\" id=\"f-{name}\">");
    for (value, label) in options {
        let sel = if value == current { " selected" } else { "" };
        let _ = write!(
            out,
            "<option value=\"{}\"{sel}>{}</option>",
            esc(value),
            esc(label)
        );
    }
    out.push_str("</select>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_both_languages_and_keys_are_unique() {
        let mut keys: Vec<&str> = TEXTS.iter().map(|(k, _, _)| *k).collect();
        for (k, es, en) in TEXTS {
            assert!(!es.is_empty() && !en.is_empty(), "{k}");
        }
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "duplicate keys");
    }

    #[test]
    fn the_language_comes_from_the_query_then_the_cookie_then_the_browser() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::pick(None, &h), Lang::Es);
        h.insert(
            axum::http::header::ACCEPT_LANGUAGE,
            "en-GB,en;q=0.9".parse().unwrap(),
        );
        assert_eq!(Lang::pick(None, &h), Lang::En);
        h.insert(
            axum::http::header::COOKIE,
            "sn_console_lang=es".parse().unwrap(),
        );
        assert_eq!(Lang::pick(None, &h), Lang::Es);
        assert_eq!(Lang::pick(Some("en"), &h), Lang::En);
        assert_eq!(Lang::pick(Some("xx"), &h), Lang::Es);
    }

    #[test]
    fn text_is_escaped_and_query_values_encoded() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(
            url("count:store:madrid centro/1"),
            "count%3Astore%3Amadrid%20centro%2F1"
        );
        assert_eq!(span(125_000, 5_000), "2 min");
    }
}
