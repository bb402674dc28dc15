//! The HQ console (`/console`): the pages HQ's staff run the chain from, server-rendered, with
//! one small script (`console.js`) that keeps the inbox live over server-sent events.
//!
//! Access is by HQ staff accounts from `[console]` (argon2, `auth`), with a session cookie
//! scoped to `/console`; the API's bearer token never appears in a page. `read_only` accounts
//! see everything; only `admin` accounts resolve inbox items (checked on the server). Pages
//! are served under the terminal's CSP (`TERMINAL_CSP`: own script and stylesheet only).
//!
//! Adding a view: a variant of [`View`] (path and label), its text keys in `page`, and a
//! render function in `views` (or a module of its own) called from [`show`].

pub mod auth;
mod page;
mod promotions;
mod views;

use crate::domain::conflict;
use crate::hq::HqState;
use crate::http_security::{security_headers, TERMINAL_CSP};
use crate::store::{now_ms, NodeEvent};
use auth::ConsoleSession;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use futures_util::stream::Stream;
use page::{Lang, LANG_COOKIE};
use serde::Deserialize;
use std::collections::HashMap;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;

pub use auth::{hash_password, ConsoleAuth};

/// Largest form accepted (a login or a resolution with its note).
const FORM_BYTES_MAX: usize = 16 * 1024;

const CONSOLE_JS: &str = include_str!("assets/console.js");
const CONSOLE_CSS: &str = include_str!("assets/console.css");

/// The console's views, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Stores,
    Stock,
    Orders,
    Inbox,
    Webhooks,
    Fiscal,
    Cash,
    Promotions,
}

impl View {
    pub const ALL: [View; 8] = [
        View::Stores,
        View::Stock,
        View::Orders,
        View::Inbox,
        View::Webhooks,
        View::Fiscal,
        View::Cash,
        View::Promotions,
    ];

    /// The path under `/console/`.
    pub fn path(&self) -> &'static str {
        match self {
            View::Stores => "stores",
            View::Stock => "stock",
            View::Orders => "orders",
            View::Inbox => "inbox",
            View::Webhooks => "webhooks",
            View::Fiscal => "fiscal",
            View::Cash => "cash",
            View::Promotions => "promotions",
        }
    }

    fn label(&self) -> &'static str {
        match self {
            View::Stores => "view.stores",
            View::Stock => "view.stock",
            View::Orders => "view.orders",
            View::Inbox => "view.inbox",
            View::Webhooks => "view.webhooks",
            View::Fiscal => "view.fiscal",
            View::Cash => "view.cash",
            View::Promotions => "view.promotions",
        }
    }

    fn parse(s: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.path() == s)
    }
}

/// The console's routes, with their own CSP and body limit (merged into HQ's router).
pub fn router() -> Router<HqState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/stores") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/stores") }),
        )
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/events", get(events))
        .route("/console/inbox/items", get(inbox_items))
        .route("/console/inbox/{id}/resolve", post(resolve))
        .route("/console/promotions/new", post(promotions::create))
        .route("/console/promotions/{id}/end", post(promotions::end))
        .route("/console/assets/console.js", get(script))
        .route("/console/assets/console.css", get(style))
        .route("/console/{view}", get(show))
        .layer(DefaultBodyLimit::max(FORM_BYTES_MAX))
        .layer(middleware::from_fn(|req: Request, next: Next| {
            security_headers(TERMINAL_CSP, req, next)
        }))
}

/// The page in `lang`, remembering an explicit `?lang=` choice in a cookie.
fn html(status: StatusCode, lang: Lang, q: &HashMap<String, String>, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    if q.get("lang").and_then(|l| Lang::parse(l)).is_some() {
        let cookie = format!(
            "{LANG_COOKIE}={}; SameSite=Strict; Path=/console; Max-Age=31536000",
            lang.as_str()
        );
        if let Ok(v) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

fn lang_of(q: &HashMap<String, String>, headers: &HeaderMap) -> Lang {
    Lang::pick(q.get("lang").map(String::as_str), headers)
}

fn session(state: &HqState, headers: &HeaderMap) -> Option<ConsoleSession> {
    state.console.session(headers, now_ms())
}

fn open_count(state: &HqState) -> usize {
    state.node.read(|r| {
        conflict::conflicts(r.state(), None)
            .iter()
            .filter(|c| c.resolution.is_none())
            .count()
    })
}

async fn show(
    State(state): State<HqState>,
    Path(view): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let lang = lang_of(&q, &headers);
    let Some(who) = session(&state, &headers) else {
        return Redirect::to("/console/login").into_response();
    };
    let Some(view) = View::parse(&view) else {
        let body = page::error_box(lang, &format!("no view {view:?}"), "/console/stores");
        let page = page::layout(lang, &who, View::Stores, open_count(&state), &body);
        return html(StatusCode::NOT_FOUND, lang, &q, page);
    };
    let now = now_ms();
    let rendered = match view {
        View::Stores => Ok(views::stores(&state, lang, now)),
        View::Stock => views::stock(&state, lang, &q),
        View::Orders => views::orders(&state, lang, &q, now),
        View::Inbox => views::inbox(&state, lang, &who, &q),
        View::Webhooks => views::webhooks(&state, lang, now).await,
        View::Fiscal => Ok(views::fiscal(&state, lang)),
        View::Cash => views::cash::cash(&state, lang, &q, now),
        View::Promotions => Ok(views::promotions::promotions(&state, lang, &who, now)),
    };
    let (status, body) = match rendered {
        Ok(body) => (StatusCode::OK, body),
        Err(e) => (
            e.status,
            page::error_box(lang, &e.message, &format!("/console/{}", view.path())),
        ),
    };
    let page = page::layout(lang, &who, view, open_count(&state), &body);
    html(status, lang, &q, page)
}

async fn inbox_items(
    State(state): State<HqState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let lang = lang_of(&q, &headers);
    let Some(who) = session(&state, &headers) else {
        return (StatusCode::UNAUTHORIZED, "sign in again").into_response();
    };
    match views::inbox_items(&state, lang, &who, &q) {
        Ok(body) => Html(body).into_response(),
        Err(e) => (
            e.status,
            Html(page::error_box(lang, &e.message, "/console/inbox")),
        )
            .into_response(),
    }
}

async fn login_page(
    State(state): State<HqState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if session(&state, &headers).is_some() {
        return Redirect::to("/console/stores").into_response();
    }
    let lang = lang_of(&q, &headers);
    html(StatusCode::OK, lang, &q, page::login(lang, None, ""))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(state): State<HqState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let q = HashMap::new();
    let lang = lang_of(&q, &headers);
    let user = form.user.trim().to_string();
    if user.is_empty() || form.password.is_empty() {
        let page = page::login(lang, Some(lang.t("login.missing")), &user);
        return html(StatusCode::UNPROCESSABLE_ENTITY, lang, &q, page);
    }
    let auth = state.console.clone();
    let (u, p) = (user.clone(), form.password);
    let outcome = tokio::task::spawn_blocking(move || auth.login(&u, &p, now_ms())).await;
    match outcome {
        Ok(Ok((token, who))) => {
            tracing::info!(role = who.role.as_str(), "console login");
            let mut response = Redirect::to("/console/stores").into_response();
            if let Ok(v) = state.console.cookie(&token).parse() {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Ok(Err(e)) => {
            let (status, message) = match e {
                auth::LoginError::BadCredentials => {
                    (StatusCode::UNAUTHORIZED, lang.t("login.bad").to_string())
                }
                auth::LoginError::LockedOut(s) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    lang.t("login.locked").replace("{s}", &s.to_string()),
                ),
            };
            tracing::warn!(reason = %e, "console login refused");
            html(status, lang, &q, page::login(lang, Some(&message), &user))
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("login failed: {e}"),
        )
            .into_response(),
    }
}

async fn logout(State(state): State<HqState>, headers: HeaderMap) -> Response {
    state.console.logout(&headers);
    let mut response = Redirect::to("/console/login").into_response();
    if let Ok(v) = state.console.cookie("").parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize)]
struct ResolveForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    note: String,
}

/// `POST /console/inbox/{id}/resolve` (admin): the `ConflictResolve` op naming the account,
/// then back to the inbox. Refusals (read-only, unknown item, action not offered) say why.
async fn resolve(
    State(state): State<HqState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ResolveForm>,
) -> Response {
    let q = HashMap::new();
    let lang = lang_of(&q, &headers);
    let Some(who) = session(&state, &headers) else {
        return Redirect::to("/console/login").into_response();
    };
    let failed = |status: StatusCode, message: &str| {
        let body = page::error_box(lang, message, "/console/inbox");
        let page = page::layout(lang, &who, View::Inbox, open_count(&state), &body);
        html(status, lang, &q, page)
    };
    if !who.is_admin() {
        tracing::warn!(
            role = who.role.as_str(),
            "console resolve refused: read-only"
        );
        return failed(StatusCode::FORBIDDEN, lang.t("error.forbidden"));
    }
    if form.action.trim().is_empty() {
        return failed(
            StatusCode::UNPROCESSABLE_ENTITY,
            "action must be one of the item's actions",
        );
    }
    let by = format!("{}@hq", who.user);
    match crate::hq::conflicts::resolve_as(&state, &id, &form.action, &form.note, &by).await {
        Ok(_) => Redirect::to("/console/inbox?open=false").into_response(),
        Err(e) => failed(e.status, &e.message),
    }
}

/// `GET /console/events`: `inbox` (open count) now and whenever an op may have raised or
/// resolved an item; `resync` when the page fell behind.
async fn events(
    State(state): State<HqState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, StatusCode> {
    if session(&state, &headers).is_none() {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let rx = state.node.subscribe();
    let hello = Some(open_count(&state));
    let stream =
        futures_util::stream::unfold((state, rx, hello), |(state, mut rx, first)| async move {
            if let Some(n) = first {
                let e = Event::default()
                    .event("inbox")
                    .data(format!("{{\"open\":{n}}}"));
                return Some((Ok(e), (state, rx, None)));
            }
            loop {
                match rx.recv().await {
                    Ok(NodeEvent::Applied { ops, .. }) => {
                        if !ops.iter().any(|op| conflict::may_touch_inbox(&op.payload)) {
                            continue;
                        }
                        // Coalesce a burst: whatever else is already queued is counted once.
                        while let Ok(NodeEvent::Applied { .. }) = rx.try_recv() {}
                        let n = open_count(&state);
                        let e = Event::default()
                            .event("inbox")
                            .data(format!("{{\"open\":{n}}}"));
                        return Some((Ok(e), (state, rx, None)));
                    }
                    Err(RecvError::Lagged(_)) => {
                        let e = Event::default().event("resync").data("{}");
                        return Some((Ok(e), (state, rx, None)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CONSOLE_JS,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        CONSOLE_CSS,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
