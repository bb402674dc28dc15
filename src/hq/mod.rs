//! The HQ hub's HTTP side: the online shop's API (DESIGN.md sections 6 and 11), the dashboard,
//! `/healthz`, `/metrics`, and the ready-webhook queue.
//!
//! Handlers only translate JSON to payloads and back; every rule lives in the domain, and every
//! change goes through `Node::submit_with`, so an answer of 201 means the op is on disk. Sync is
//! seen through the `SyncView` and `LinkControl` traits so the API can be tested without MQTT.

mod api;
mod body;
mod cash;
pub mod conflicts;
pub mod console;
pub mod customers;
mod dashboard;
pub mod error;
pub mod journal;
mod motion;
mod promotions;
pub mod webhook;

use crate::config::HqConfig;
use crate::domain::contact::ContactPolicy;
use crate::domain::StoreId;
use crate::http_security::{client_key, security_headers, RateLimit, RateLimiter, DASHBOARD_CSP};
use crate::store::Node;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use error::{ApiError, ErrorCode};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub use error::ApiError as HqApiError;

/// Largest request body accepted, in bytes (DESIGN.md section 11).
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

/// HQ's view of one store's link, from sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// From the retained status topic and Last Will.
    pub online: bool,
    /// Last message from the store, ms since the epoch.
    pub last_seen_ms: Option<u64>,
    /// Ops the store reported waiting in its outbox.
    pub outbox: u64,
    /// Ops HQ holds that the store has not acknowledged.
    pub lag_ops: u64,
}

/// What the API needs to know about sync (implemented by the HQ sync handle).
pub trait SyncView: Send + Sync + 'static {
    fn link(&self, store: &StoreId) -> LinkStatus;
    /// Prometheus text of sync metrics (outbox, lag, last contact, rejected payloads).
    fn render_metrics(&self) -> String;
    /// Last down-log index the store reported applied, if HQ has heard from it.
    fn down_acked(&self, _store: &StoreId) -> Option<u64> {
        None
    }
}

/// Cuts and restores a store's link (demo only).
pub trait LinkControl: Send + Sync + 'static {
    /// Returns false when the store is not known here.
    fn set_link(&self, store: &StoreId, online: bool) -> bool;
}

/// A sync view for an HQ without sync (tests, a hub started before its broker exists).
pub struct NoSync;

impl SyncView for NoSync {
    fn link(&self, _store: &StoreId) -> LinkStatus {
        LinkStatus::default()
    }
    fn render_metrics(&self) -> String {
        String::new()
    }
}

/// The settings the API uses, from `HqConfig`.
#[derive(Debug, Clone)]
pub struct HqSettings {
    pub tokens: Vec<String>,
    pub stores: Vec<StoreId>,
    /// Signs the QR payload of new orders.
    pub qr_key: Vec<u8>,
    pub webhook_url: Option<String>,
    pub webhook_backoff_ms_max: u64,
    /// Signs every webhook delivery.
    pub webhook_secret: Option<String>,
    /// `cart.abandoned` after this many idle hours; none when `None`.
    pub abandoned_cart_hours: Option<u32>,
    /// Who may be contacted when (`/carts/abandoned`, `/customers/{id}/contacts`).
    pub contact_policy: ContactPolicy,
    /// Requests per bearer token.
    pub rate_limit: RateLimit,
    /// Requests with a missing or wrong token, per client IP.
    pub unauthenticated_rate_limit: RateLimit,
    /// Ship-to-store lead time told to the customer; `None` when HQ may not ship orders from
    /// another store (`[ship_to_store]`).
    pub ship_to_store_lead_ms: Option<u64>,
    /// HQ staff accounts of the console.
    pub console: crate::config::ConsoleConfig,
}

/// Default requests per bearer token: a burst of 600, then 6,000 a minute (100/s).
pub const API_RATE_DEFAULT: RateLimit = RateLimit {
    per_minute: 6_000,
    burst: 600,
};
/// Default requests without a valid token per client IP: a burst of 20, then 60 a minute.
pub const UNAUTHENTICATED_RATE_DEFAULT: RateLimit = RateLimit {
    per_minute: 60,
    burst: 20,
};

impl HqSettings {
    pub fn from_config(c: &HqConfig) -> HqSettings {
        HqSettings {
            tokens: c.tokens(),
            stores: c.stores.clone(),
            qr_key: c
                .pickup
                .qr_keys
                .first()
                .map(|k| k.bytes().to_vec())
                .unwrap_or_default(),
            webhook_url: c.webhook.url.clone(),
            webhook_backoff_ms_max: c.webhook.retry_backoff_ms_max,
            webhook_secret: c.webhook.secret.clone(),
            abandoned_cart_hours: c.webhook.abandoned_cart_hours,
            contact_policy: c.contact_policy.policy(),
            rate_limit: RateLimit {
                per_minute: c.rate_limit.per_minute,
                burst: c.rate_limit.burst,
            },
            unauthenticated_rate_limit: RateLimit {
                per_minute: c.rate_limit.unauthenticated_per_minute,
                burst: c.rate_limit.unauthenticated_burst,
            },
            ship_to_store_lead_ms: c.ship_to_store.enabled.then(|| c.ship_to_store.lead_ms()),
            console: c.console.clone(),
        }
    }
}

/// Shared state of the HQ router.
#[derive(Clone)]
pub struct HqState {
    pub node: Node,
    pub settings: Arc<HqSettings>,
    pub sync: Arc<dyn SyncView>,
    /// Present only in the demo: enables `POST /api/v1/demo/stores/{store}/link`.
    pub links: Option<Arc<dyn LinkControl>>,
    /// Shown on the dashboard so its demo buttons can call the API (demo only).
    pub dashboard_token: Option<String>,
    http_errors: Arc<Mutex<BTreeMap<String, u64>>>,
    /// Requests per valid bearer token.
    token_limiter: Arc<RateLimiter>,
    /// Requests without a valid token, per client IP.
    anonymous_limiter: Arc<RateLimiter>,
    /// Console accounts and sessions.
    pub console: Arc<console::ConsoleAuth>,
    /// The webhook queue in PostgreSQL (`[storage] url`); the file's when `None`.
    pub shared_webhooks: Option<crate::store::pg::jobs::SharedQueue>,
}

impl HqState {
    pub fn new(node: Node, settings: HqSettings, sync: Arc<dyn SyncView>) -> HqState {
        HqState {
            node,
            token_limiter: Arc::new(RateLimiter::new(settings.rate_limit)),
            anonymous_limiter: Arc::new(RateLimiter::new(settings.unauthenticated_rate_limit)),
            console: Arc::new(console::ConsoleAuth::new(settings.console.clone())),
            settings: Arc::new(settings),
            sync,
            links: None,
            dashboard_token: None,
            http_errors: Arc::default(),
            shared_webhooks: None,
        }
    }

    /// Enable the demo link switch (and the dashboard's buttons, which use `token`).
    pub fn with_demo_links(mut self, links: Arc<dyn LinkControl>, token: &str) -> HqState {
        self.links = Some(links);
        self.dashboard_token = Some(token.to_string());
        self
    }

    fn knows(&self, store: &StoreId) -> bool {
        self.settings.stores.contains(store)
    }

    fn count_error(&self, code: &str) {
        let mut map = self.http_errors.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(code.to_string()).or_default() += 1;
    }

    fn http_errors(&self) -> BTreeMap<String, u64> {
        self.http_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The HQ router: `/api/v1/*` behind the bearer token, `/`, `/healthz` and `/metrics` open.
pub fn app(state: HqState) -> Router {
    let api = Router::new()
        .route("/catalog/{sku}", put(api::put_catalog))
        .route("/promotions", get(promotions::list))
        .route("/cash/sessions", get(cash::list))
        .route("/promotions/{id}", put(promotions::put))
        .route("/availability", get(api::availability))
        .route("/carts/{customer}", get(api::get_cart).put(api::put_cart))
        .route("/orders", post(api::post_order))
        .route("/orders/{id}", get(api::get_order))
        .route("/orders/{id}/cancel", post(api::cancel_order))
        .route("/stores", get(api::stores))
        .route(
            "/shipments",
            get(motion::list_shipments).post(motion::post_shipment),
        )
        .route("/shipments/{id}", get(motion::get_shipment))
        .route("/transfers", get(motion::list_transfers))
        .route("/transfers/{id}", get(motion::get_transfer))
        .route(
            "/customers/{id}",
            get(customers::get_customer)
                .put(customers::put_customer)
                .delete(customers::delete_customer),
        )
        .route(
            "/customers/{id}/consent/{channel}",
            put(customers::put_consent),
        )
        .route("/customers/{id}/erasure", get(customers::get_erasure))
        .route("/customers/{id}/contacts", post(customers::post_contact))
        .route("/carts/abandoned", get(customers::abandoned))
        .route("/journal/{store}", get(journal::show))
        .route("/conflicts", get(conflicts::list))
        .route("/conflicts/{id}/resolve", post(conflicts::resolve))
        .route("/demo/stores/{store}/link", post(api::demo_link))
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest("/api/v1", api)
        .route("/", get(dashboard::page))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(state.clone(), count_errors))
        .layer(middleware::from_fn(|req: Request, next: Next| {
            security_headers(DASHBOARD_CSP, req, next)
        }))
        .merge(console::router())
        .with_state(state)
}

async fn require_token(
    State(state): State<HqState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = given.and_then(|g| state.settings.tokens.iter().find(|t| same(t, g)));
    // A valid token has its own budget (the shop's traffic); anything else is limited per
    // client IP before it is told the token is wrong.
    let limited = match token {
        Some(t) => state.token_limiter.check(&token_key(t)),
        None => state.anonymous_limiter.check(&client_key(&request)),
    };
    if let Err(secs) = limited {
        tracing::warn!(
            client = %client_key(&request),
            authenticated = token.is_some(),
            retry_after_s = secs,
            "hq api rate limited"
        );
        return Err(ApiError::rate_limited(secs));
    }
    if token.is_none() {
        return Err(ApiError::unauthorized());
    }
    Ok(next.run(request).await)
}

/// Limiter key of a token: a short hash, so the token itself is not kept twice in memory.
fn token_key(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    format!("token:{}", hex::encode(&digest[..8]))
}

/// Compare without an early exit on the first differing byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn count_errors(State(state): State<HqState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        state.count_error(code);
    } else if response.status().is_client_error() || response.status().is_server_error() {
        state.count_error(&response.status().as_u16().to_string());
    }
    response
}

#[cfg(test)]
mod tests;
