//! Live updates (`GET /api/v1/events`, server-sent events) and the store status
//! (`GET /api/v1/status`).
//!
//! Events: `order` (id, status) and `stock` (skus) from applied ops, local or from HQ; `link`
//! when the uplink changes; `conflicts` (open count) when an op may have raised or resolved an
//! inbox item; `scan` when a scanner source (or another page) reports a scan.
//! Slow pages skip events rather than hold the node back (bounded broadcast channels).

use super::auth::Session;
use super::body::{str_field, JsonBody};
use super::error::ApiError;
use super::link::LinkStatus;
use super::TerminalState;
use crate::devices::barcode::{parse_scan_with_aim, Scan as BarcodeScan};
use crate::devices::scanner::ScanEvent;
use crate::domain::{Op, Payload};
use crate::store::{now_ms, NodeEvent};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::Stream;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Longest scan accepted (a pickup QR is about 110 characters).
pub const SCAN_LEN_MAX: usize = 256;
/// How often the link status is checked for changes while a page listens.
const LINK_POLL_MS: u64 = 1_000;

/// A barcode read by a scanner or typed at a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scan {
    pub code: String,
    /// Which source read it (`serial:/dev/ttyUSB0`, `tcp`, `page`, ...).
    pub source: String,
    /// What the code parsed as (`ean13`, `ean8`, `upca`, `gs1`, `pickup_qr`, `pickup_code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The product EAN the code stands for, when it names a product.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ean: Option<String>,
    /// Why the scanner's reading is not a valid code (shown on the page, never a crash).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Scan {
    /// A reading with what the barcode parser made of it.
    fn parsed(code: String, source: String, parsed: Result<&BarcodeScan, String>) -> Scan {
        match parsed {
            Ok(scan) => Scan {
                code,
                source,
                kind: Some(scan.kind()),
                ean: scan.product_ean(),
                error: None,
            },
            Err(error) => Scan {
                code,
                source,
                kind: None,
                ean: None,
                error: Some(error),
            },
        }
    }
}

/// Hands scans to every open terminal page. Cloneable; dropping it changes nothing.
#[derive(Clone)]
pub struct ScanSender(broadcast::Sender<Scan>);

impl ScanSender {
    pub(crate) fn new(tx: broadcast::Sender<Scan>) -> ScanSender {
        ScanSender(tx)
    }
    /// Publish a scan; with no page open it is dropped. Control characters are removed and
    /// overlong codes refused.
    pub fn send(&self, code: &str, source: &str) -> Result<(), ScanError> {
        let code: String = code.chars().filter(|c| !c.is_control()).collect();
        let code = code.trim();
        if code.is_empty() || code.len() > SCAN_LEN_MAX {
            return Err(ScanError::Length(code.len()));
        }
        // Typed text may be a search (an order id, a name): not a barcode is not an error here.
        let scan = match parse_scan_with_aim(code) {
            Ok((_, parsed)) => Scan::parsed(code.to_string(), source.to_string(), Ok(&parsed)),
            Err(_) => Scan {
                code: code.to_string(),
                source: source.to_string(),
                kind: None,
                ean: None,
                error: None,
            },
        };
        let _ = self.0.send(scan);
        Ok(())
    }

    /// Forward the node's scanner sources (devices::scanner) to the page until the channel
    /// closes. A reading that did not parse is shown with its reason.
    pub fn forward(self, mut rx: mpsc::Receiver<ScanEvent>) -> JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let code: String = event
                    .raw
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(SCAN_LEN_MAX)
                    .collect();
                let parsed = event.parsed.as_ref().map_err(|e| e.to_string());
                let _ = self
                    .0
                    .send(Scan::parsed(code.trim().to_string(), event.source, parsed));
            }
        })
    }
}

/// Why a scan was not published.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("scan has {0} characters, expected 1-{SCAN_LEN_MAX}")]
    Length(usize),
}

fn link_json(link: &LinkStatus) -> Value {
    json!({
        "online": link.online,
        "since": link.since_ms,
        "outbox": link.outbox,
        "last_sync": link.last_sync_ms,
    })
}

/// `GET /api/v1/status`.
pub async fn status(State(state): State<TerminalState>, session: Session) -> Json<Value> {
    let link = state.link().link();
    let store = state.store().clone();
    let (digest, open_orders) = state.read(|r| {
        let open = r
            .state()
            .orders
            .values()
            .filter(|o| o.store == store && o.status.is_open())
            .count();
        (r.digest_for_store(&store).short(), open)
    });
    Json(json!({
        "store": store.as_str(),
        "online": link.online,
        "outbox": link.outbox,
        "digest": digest,
        "last_sync": link.last_sync_ms,
        "since": link.since_ms,
        "devices": state.devices(),
        "open_orders": open_orders,
        "open_conflicts": super::conflicts::open_count(&state),
        "staff": session.staff,
        "role": session.role.as_str(),
        "now": now_ms(),
    }))
}

/// `POST /api/v1/scans` `{"code"}`: a scan typed at one page, shown on every page.
pub async fn post_scan(
    State(state): State<TerminalState>,
    _session: Session,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let code = str_field(body.get("code"), "code", "invalid_scan")?;
    state
        .scan_sender()
        .send(code, "page")
        .map_err(|e| ApiError::unprocessable("invalid_scan", e.to_string()))?;
    Ok(Json(json!({"ok": true})))
}

/// The events one batch of applied ops causes on the page.
fn events_for(ops: &[Op], state: &TerminalState) -> Vec<Event> {
    let store = state.store();
    let mut orders = BTreeSet::new();
    let mut skus = BTreeSet::new();
    let inbox = ops
        .iter()
        .any(|op| crate::domain::conflict::may_touch_inbox(&op.payload));
    for op in ops {
        if op.payload.store().is_some_and(|s| s != store) {
            continue;
        }
        if let Some(order) = op.payload.order() {
            orders.insert(order.clone());
        }
        match &op.payload {
            Payload::StockReceive { sku, .. }
            | Payload::StockTransfer { sku, .. }
            | Payload::StockConsume { sku, .. }
            | Payload::CountRecorded { sku, .. } => {
                skus.insert(sku.clone());
            }
            Payload::Sale { lines, .. } => skus.extend(lines.iter().map(|l| l.sku.clone())),
            Payload::OrderPlace { lines, .. } => skus.extend(lines.iter().map(|l| l.sku.clone())),
            Payload::Return { lines, .. } => skus.extend(lines.iter().map(|l| l.sku.clone())),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for order in orders {
        let status = state.read(|r| {
            r.state()
                .orders
                .get(&order)
                .map(|o| o.status.as_str())
                .unwrap_or("pending")
        });
        let data = json!({"id": order.as_str(), "status": status});
        out.push(Event::default().event("order").data(data.to_string()));
    }
    if !skus.is_empty() {
        let skus: Vec<&str> = skus.iter().map(|s| s.as_str()).collect();
        let data = json!({ "skus": skus });
        out.push(Event::default().event("stock").data(data.to_string()));
    }
    if inbox {
        let data = json!({ "open": super::conflicts::open_count(state) });
        out.push(Event::default().event("conflicts").data(data.to_string()));
    }
    out
}

struct Listener {
    state: TerminalState,
    applied: broadcast::Receiver<NodeEvent>,
    scans: broadcast::Receiver<Scan>,
    link: LinkStatus,
    pending: Vec<Event>,
    tick: tokio::time::Interval,
}

impl Listener {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop() {
                return Some(e);
            }
            tokio::select! {
                got = self.applied.recv() => match got {
                    Ok(NodeEvent::Applied { ops, .. }) => {
                        let mut events = events_for(&ops, &self.state);
                        events.reverse();
                        self.pending = events;
                    }
                    Err(RecvError::Lagged(_)) => {
                        return Some(Event::default().event("resync").data("{}"));
                    }
                    Err(RecvError::Closed) => return None,
                },
                got = self.scans.recv() => match got {
                    Ok(scan) => {
                        let data = serde_json::to_string(&scan).unwrap_or_default();
                        return Some(Event::default().event("scan").data(data));
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                },
                _ = self.tick.tick() => {
                    let now = self.state.link().link();
                    if now != self.link {
                        self.link = now;
                        let data = link_json(&now).to_string();
                        return Some(Event::default().event("link").data(data));
                    }
                }
            }
        }
    }
}

/// `GET /api/v1/events`: server-sent events for the page.
pub async fn stream(
    State(state): State<TerminalState>,
    _session: Session,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let link = state.link().link();
    let hello = Event::default()
        .event("link")
        .data(link_json(&link).to_string());
    let listener = Listener {
        applied: state.node().subscribe(),
        scans: state.scans(),
        link,
        pending: vec![hello],
        tick: tokio::time::interval(Duration::from_millis(LINK_POLL_MS)),
        state,
    };
    let stream = futures_util::stream::unfold(listener, |mut l| async move {
        l.next().await.map(|e| (Ok(e), l))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
