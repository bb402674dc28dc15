//! The associate terminal: the store node's web page and its JSON API (DESIGN.md sections 8
//! and 11), with live updates over server-sent events.
//!
//! `app(state)` is the whole HTTP surface; it holds no business rules: handlers read the
//! replica, build domain payloads and hand them to the `Ledger`, which answers only once they
//! are committed. Only `terminal` (and `hq`) know JSON. Every call but `POST /api/v1/session`,
//! the static page and `/healthz` needs a session cookie.

mod assets;
pub mod auth;
mod body;
pub mod cash;
pub mod conflicts;
mod customers;
pub mod error;
pub mod events;
pub mod link;
pub mod motion;
mod parked;
mod pickups;
pub mod print;
mod profile;
mod qr;
mod returns;
mod sales;
mod session;
pub mod spool;
mod stock;
pub mod till;

use crate::devices::scanner::{ScannerStatus, SourceState};
use crate::domain::{Replica, StoreId};
use crate::http_security::{client_key, security_headers, RateLimit, RateLimiter, TERMINAL_CSP};
use crate::store::Node;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use error::ApiError;
use events::{Scan, ScanSender};
use link::LinkStatusSource;
use print::PrintSink;
use std::sync::Arc;
use tokio::sync::{broadcast, watch, Mutex};

pub use auth::Role;

/// Largest request body accepted: 1 MiB.
pub const BODY_BYTES_MAX: usize = 1 << 20;

/// How the terminal of one store behaves.
#[derive(Debug, Clone)]
pub struct TerminalConfig {
    pub store: StoreId,
    /// Set the cookie's `Secure` flag (only when served over TLS).
    pub secure_cookie: bool,
    pub session_ttl_ms: u64,
    /// Open orders placed longer ago than this are listed as overdue.
    pub overdue_after_ms: u64,
    /// Chain keys for pickup QR MACs, current first; empty: MACs are not checked.
    pub pickup_keys: Vec<Vec<u8>>,
    /// `POST /api/v1/session` attempts per client IP (besides the per-staff PIN lockout).
    pub login_rate: RateLimit,
    /// Return window and the unverified-return limit (`[returns]`).
    pub returns: crate::domain::returns::ReturnPolicy,
    /// The store's invoice issuer (`[fiscal]`); `None`: sales issue no invoice.
    pub fiscal: Option<Arc<crate::fiscal::FiscalSetup>>,
    /// Stores this one may send transfers to (from the config's `transfer_to`).
    pub transfer_to: Vec<StoreId>,
    /// Discount limit and cash-session rule (`[till]`).
    pub till: crate::config::TillConfig,
}

/// Default login attempts per client IP: a burst of 20, then 30 a minute.
pub const LOGIN_RATE_DEFAULT: RateLimit = RateLimit {
    per_minute: 30,
    burst: 20,
};

impl TerminalConfig {
    pub fn new(store: StoreId) -> TerminalConfig {
        TerminalConfig {
            store,
            secure_cookie: false,
            session_ttl_ms: 12 * 3_600_000,
            overdue_after_ms: 48 * 3_600_000,
            pickup_keys: Vec::new(),
            login_rate: LOGIN_RATE_DEFAULT,
            returns: Default::default(),
            fiscal: None,
            transfer_to: Vec::new(),
            till: Default::default(),
        }
    }
}

struct Inner {
    node: Node,
    link: Arc<dyn LinkStatusSource>,
    printer: Arc<dyn PrintSink>,
    config: TerminalConfig,
    scans: broadcast::Sender<Scan>,
    /// Serialises read-then-submit steps on orders (two scans of one line at once).
    order_steps: Mutex<()>,
    /// Scanner sources shown on the status screen.
    scanners: std::sync::Mutex<Vec<watch::Receiver<ScannerStatus>>>,
    /// Login attempts per client IP.
    login_limiter: RateLimiter,
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct TerminalState(Arc<Inner>);

impl TerminalState {
    /// A terminal over the store node's database, its link status and its printers.
    pub fn new(
        node: Node,
        link: Arc<dyn LinkStatusSource>,
        printer: Arc<dyn PrintSink>,
        config: TerminalConfig,
    ) -> TerminalState {
        let login_limiter = RateLimiter::new(config.login_rate);
        TerminalState(Arc::new(Inner {
            login_limiter,
            node,
            link,
            printer,
            config,
            scans: broadcast::channel(64).0,
            order_steps: Mutex::new(()),
            scanners: std::sync::Mutex::new(Vec::new()),
        }))
    }

    /// Where scanner sources push scans; each shows at once on every open page.
    pub fn scan_sender(&self) -> ScanSender {
        ScanSender::new(self.0.scans.clone())
    }

    /// Show a scanner source (from `devices::scanner::spawn_scanner`) on the status screen.
    pub fn watch_scanner(&self, status: watch::Receiver<ScannerStatus>) {
        match self.0.scanners.lock() {
            Ok(mut s) => s.push(status),
            Err(p) => p.into_inner().push(status),
        }
    }

    /// Printers and scanners as `/status` lists them.
    pub(crate) fn devices(&self) -> Vec<print::DeviceStatus> {
        let mut out = self.0.printer.devices();
        let scanners = match self.0.scanners.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        for rx in scanners {
            let s = rx.borrow().clone();
            let ok = matches!(s.state, SourceState::Connected | SourceState::Connecting);
            let detail = match (&s.state, &s.last_error) {
                (SourceState::Retrying { attempt }, Some(e)) => format!("retry {attempt}: {e}"),
                _ => format!("{} scans, {} refused", s.scans, s.bad_scans),
            };
            out.push(print::DeviceStatus {
                name: s.source,
                kind: "scanner".into(),
                ok,
                detail,
            });
        }
        out
    }

    /// Add or replace a staff member with an argon2 hash of `pin` (4-8 digits).
    pub async fn upsert_staff(
        &self,
        staff: &str,
        name: &str,
        role: Role,
        pin: &str,
    ) -> Result<(), auth::StaffError> {
        auth::upsert_staff(self, staff, name, role, pin).await
    }

    pub fn config(&self) -> &TerminalConfig {
        &self.0.config
    }
    pub fn store(&self) -> &StoreId {
        &self.0.config.store
    }
    pub fn node(&self) -> &Node {
        &self.0.node
    }
    pub(crate) fn link(&self) -> &Arc<dyn LinkStatusSource> {
        &self.0.link
    }
    pub(crate) fn scans(&self) -> broadcast::Receiver<Scan> {
        self.0.scans.subscribe()
    }
    pub(crate) fn order_steps(&self) -> &Mutex<()> {
        &self.0.order_steps
    }

    /// Read the replica.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        self.0.node.read(f)
    }

    /// Write side tables (sessions, staff, lockouts) in the writer's next transaction.
    pub(crate) async fn db<R: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, ApiError> {
        Ok(self.0.node.write(move |tx| f(tx)).await?)
    }

    /// Read side tables on the reader connection.
    pub(crate) async fn db_read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, ApiError> {
        Ok(self.0.node.query(f).await?)
    }

    /// Submit `payloads` with the print jobs they cause in the same transaction: when this
    /// returns, the change and its receipt or label are both durable (or neither is).
    pub(crate) async fn submit_printing(
        &self,
        payloads: Vec<crate::domain::Payload>,
        jobs: Vec<print::PrintJob>,
    ) -> Result<crate::store::Submitted, crate::store::SubmitError> {
        let staged: Vec<print::StagedJob> =
            jobs.into_iter().map(|j| self.0.printer.stage(j)).collect();
        let (submitted, ()) = self
            .0
            .node
            .submit_with(payloads, move |tx, _ops| {
                staged.into_iter().try_for_each(|step| step(tx))
            })
            .await?;
        self.0.printer.committed();
        Ok(submitted)
    }
}

impl TerminalState {
    /// Submit a change whose payloads are built in the writer (a sale with its invoice, see
    /// `fiscal::with_invoice`), with the print jobs `jobs` makes from the committed invoice
    /// record, in the same transaction.
    pub(crate) async fn submit_invoiced(
        &self,
        build: crate::store::BuildPayloads,
        jobs: impl FnOnce(Option<&crate::domain::fiscal::InvoiceRecord>) -> Vec<print::PrintJob>
            + Send
            + 'static,
    ) -> Result<
        (
            crate::store::Submitted,
            Option<crate::domain::fiscal::InvoiceRecord>,
        ),
        crate::store::SubmitError,
    > {
        let printer = self.0.printer.clone();
        let (submitted, record) = self
            .0
            .node
            .submit_built(build, move |tx, ops| {
                let record = crate::fiscal::record_of(ops);
                for job in jobs(record.as_ref()) {
                    printer.stage(job)(tx)?;
                }
                Ok(record)
            })
            .await?;
        self.0.printer.committed();
        Ok((submitted, record))
    }
}

/// The terminal's router: page, JSON API and events (DESIGN.md section 11).
pub fn app(state: TerminalState) -> Router {
    let api = Router::new()
        .route(
            "/session",
            post(session::create)
                .get(session::current)
                .delete(session::destroy),
        )
        .route("/session/till", axum::routing::put(session::switch_till))
        .route("/status", get(events::status))
        .route("/events", get(events::stream))
        .route("/scans", post(events::post_scan))
        .route("/stock/{code}", get(stock::lookup))
        .route("/stock/{sku}/count", post(stock::count))
        .route("/sales", post(sales::create))
        .route("/sales/{id}", get(returns::show))
        .route("/sales/parked", get(parked::list).post(parked::park))
        .route("/sales/parked/{id}", delete(parked::discard))
        .route("/sales/parked/{id}/resume", post(parked::resume))
        .route("/promotions", get(till::list_promotions))
        .route("/cash/sessions", post(cash::open))
        .route("/cash/sessions/current", get(cash::current))
        .route("/cash/tills", get(cash::tills))
        .route("/cash/sessions/current/movements", post(cash::movement))
        .route("/cash/sessions/current/close", post(cash::close))
        .route("/cash/sessions/current/report", get(cash::report))
        .route(
            "/cash/sessions/current/report/print",
            post(cash::print_report),
        )
        .route("/cash/sessions/{id}", get(cash::show))
        .route("/returns", post(returns::create))
        .route("/pickups", get(pickups::list))
        .route("/pickups/{id}", get(pickups::show))
        .route("/pickups/{id}/pick", post(pickups::pick))
        .route("/pickups/{id}/ready", post(pickups::ready))
        .route("/pickups/{id}/handover", post(pickups::handover))
        .route("/shipments", get(motion::list_shipments))
        .route("/shipments/{id}", get(motion::show_shipment))
        .route("/shipments/{id}/receive", post(motion::receive_shipment))
        .route(
            "/transfers",
            get(motion::list_transfers).post(motion::create_transfer),
        )
        .route("/transfers/destinations", get(motion::destinations))
        .route("/transfers/{id}", get(motion::show_transfer))
        .route("/transfers/{id}/note", post(motion::print_note))
        .route("/transfers/{id}/dispatch", post(motion::dispatch_transfer))
        .route("/transfers/{id}/receive", post(motion::receive_transfer))
        .route("/customers", get(customers::search).post(profile::create))
        .route("/customers/{id}", get(customers::show))
        .route("/customers/{id}/cart", get(customers::cart))
        .route("/conflicts", get(conflicts::list))
        .route("/conflicts/{id}/resolve", post(conflicts::resolve))
        .route(
            "/customers/{id}/consent/{channel}",
            put(profile::put_consent),
        )
        .fallback(|| async { ApiError::not_found("not_found", "no such API call") });
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(|| async { "ok" }))
        .merge(assets::routes())
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_login_attempts,
        ))
        .layer(middleware::from_fn(|req: Request, next: Next| {
            security_headers(TERMINAL_CSP, req, next)
        }))
        .with_state(state)
}

/// `POST /api/v1/session` is limited per client IP (spraying PINs across staff numbers); the
/// per-staff lockout in `auth` applies on top. Refused before the body is read.
async fn limit_login_attempts(
    State(state): State<TerminalState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::POST && request.uri().path() == "/api/v1/session" {
        let key = client_key(&request);
        if let Err(secs) = state.0.login_limiter.check(&key) {
            tracing::warn!(client = %key, retry_after_s = secs, "login attempts rate limited");
            let e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many login attempts from this device: try again in {secs} s"),
            )
            .retry_after(secs);
            return e.into_response();
        }
    }
    next.run(request).await
}
