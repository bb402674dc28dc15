//! Receiving deliveries and transfers at the store (DESIGN.md section 19): the shipments HQ
//! announced, transfers to other stores (manager; a transfer note with a QR is printed), and
//! receipts by scan or list.
//! (Just over 500 lines: the receiving, sending and dispatch handlers share one set of
//! response shapes and store checks; splitting them would duplicate those.)
//!
//! Handlers only parse, check the store is the right one and build payloads; the domain
//! refuses receiving twice, over-deliveries nobody declared and transfers beyond the store's
//! rights, with nothing changed.

use super::auth::Session;
use super::body::JsonBody;
use super::error::ApiError;
use super::print::PrintJob;
use super::stock::resolve;
use super::TerminalState;
use crate::domain::catalog::Catalog;
use crate::domain::motion::{MotionKind, Movement};
use crate::domain::op::{OrderLine, ReceiptLine};
use crate::domain::ship_to_store::plan_arrivals;
use crate::domain::{MotionId, Payload, Sku, StoreId};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Prefix of the QR printed on a transfer note: `TR1:<transfer-id>`.
pub const TRANSFER_QR_PREFIX: &str = "TR1:";

/// One movement as the API shows it: shipments name `store`, transfers `from` and `to`.
pub(crate) fn movement_json(m: &Movement) -> Value {
    let lines: Vec<Value> = m
        .balance()
        .iter()
        .map(|b| {
            json!({"sku": b.sku.as_str(), "qty": b.sent, "received": b.received,
                   "damaged": b.damaged, "in_transit": b.in_transit, "short": b.lost})
        })
        .collect();
    let sent = m.sent.as_ref();
    let mut out = json!({
        "id": m.id.as_str(),
        "kind": m.kind.as_str(),
        "status": m.status(),
        "lines": lines,
        "discrepancies": m.discrepancies().len(),
        "sent_at": sent.map(|s| s.at.wall_ms()),
        "received_at": m.received.as_ref().map(|r| r.at.wall_ms()),
    });
    if let Value::Object(o) = &mut out {
        let to = m.to().map(|s| s.as_str());
        match m.kind {
            MotionKind::Shipment => {
                o.insert("store".into(), json!(to));
                o.insert(
                    "reference".into(),
                    json!(sent.map(|s| s.reference.as_str())),
                );
            }
            MotionKind::Transfer => {
                let from = sent.and_then(|s| s.from.as_ref()).map(|s| s.as_str());
                o.insert("from".into(), json!(from));
                o.insert("to".into(), json!(to));
                o.insert("qr".into(), json!(format!("{TRANSFER_QR_PREFIX}{}", m.id)));
                // A ship-to-store transfer names the order it carries units for.
                let order = sent.map(|s| s.reference.as_str()).filter(|r| !r.is_empty());
                o.insert("order".into(), json!(order));
            }
        }
    }
    out
}

/// `movement_json` with each line's product name, as the store's screens show them.
fn named_json(m: &Movement, catalog: &Catalog) -> Value {
    let mut out = movement_json(m);
    if let Some(Value::Array(lines)) = out.get_mut("lines") {
        for line in lines.iter_mut() {
            let name = line
                .get("sku")
                .and_then(Value::as_str)
                .and_then(|s| Sku::parse(s).ok())
                .and_then(|sku| catalog.get(&sku).map(|p| p.name));
            if let Value::Object(o) = line {
                o.insert("name".into(), json!(name));
            }
        }
    }
    out
}

/// One movement of this store, rendered with product names.
fn render(state: &TerminalState, m: &Movement) -> Value {
    state.read(|r| named_json(m, &r.state().catalog))
}

fn parse_id(kind: MotionKind, id: &str) -> Result<MotionId, ApiError> {
    let id = id.strip_prefix(TRANSFER_QR_PREFIX).unwrap_or(id);
    MotionId::parse(id).map_err(|_| unknown(kind, id))
}

fn unknown(kind: MotionKind, id: &str) -> ApiError {
    let code = match kind {
        MotionKind::Shipment => "unknown_shipment",
        MotionKind::Transfer => "unknown_transfer",
    };
    ApiError::not_found(code, format!("no {} {id} here", kind.as_str()))
}

/// The movement if this store is its sender or receiver.
fn find(state: &TerminalState, kind: MotionKind, id: &MotionId) -> Result<Movement, ApiError> {
    let here = state.store();
    state
        .read(|r| {
            let s = r.state();
            let map = match kind {
                MotionKind::Shipment => &s.shipments,
                MotionKind::Transfer => &s.transfers,
            };
            map.get(id).cloned()
        })
        .filter(|m| {
            m.to() == Some(here)
                || m.sent
                    .as_ref()
                    .is_some_and(|s| s.from.as_ref() == Some(here))
        })
        .ok_or_else(|| unknown(kind, id.as_str()))
}

fn list(state: &TerminalState, kind: MotionKind, status: Option<&String>) -> Vec<Value> {
    let here = state.store();
    state.read(|r| {
        let s = r.state();
        let map = match kind {
            MotionKind::Shipment => &s.shipments,
            MotionKind::Transfer => &s.transfers,
        };
        let mut rows: Vec<&Movement> = map
            .values()
            .filter(|m| m.sent.is_some())
            .filter(|m| {
                m.to() == Some(here)
                    || m.sent
                        .as_ref()
                        .is_some_and(|s| s.from.as_ref() == Some(here))
            })
            .filter(|m| status.is_none_or(|st| m.status() == st))
            .collect();
        rows.sort_by_key(|m| std::cmp::Reverse(m.sent.as_ref().map(|s| s.at)));
        rows.into_iter()
            .map(|m| named_json(m, &s.catalog))
            .collect()
    })
}

/// `GET /api/v1/shipments[?status=expected]`: shipments to this store, newest first.
pub async fn list_shipments(
    State(state): State<TerminalState>,
    _session: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    Json(Value::Array(list(
        &state,
        MotionKind::Shipment,
        q.get("status"),
    )))
}

/// `GET /api/v1/shipments/{id}`.
pub async fn show_shipment(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(MotionKind::Shipment, &id)?;
    let m = find(&state, MotionKind::Shipment, &id)?;
    Ok(Json(render(&state, &m)))
}

/// `GET /api/v1/transfers[?status=in_transit]`: both directions, newest first.
pub async fn list_transfers(
    State(state): State<TerminalState>,
    _session: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    Json(Value::Array(list(
        &state,
        MotionKind::Transfer,
        q.get("status"),
    )))
}

/// `GET /api/v1/transfers/{id}` (the id or the note's QR text).
pub async fn show_transfer(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(MotionKind::Transfer, &id)?;
    let m = find(&state, MotionKind::Transfer, &id)?;
    Ok(Json(render(&state, &m)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveLineBody {
    /// A sku or a scanned barcode.
    sku: String,
    received: i64,
    #[serde(default)]
    damaged: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveBody {
    lines: Vec<ReceiveLineBody>,
    /// Accept more units than were sent (or a sku not sent).
    #[serde(default)]
    over_delivery: bool,
}

fn count(value: i64, field: &'static str) -> Result<u32, ApiError> {
    u32::try_from(value)
        .ok()
        .filter(|n| *n <= crate::domain::validate::QTY_MAX)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_qty",
                format!("{field} must be a whole number from 0 to 100000, got {value}"),
            )
            .with("field", field)
        })
}

fn receipt_lines(state: &TerminalState, body: &ReceiveBody) -> Result<Vec<ReceiptLine>, ApiError> {
    body.lines
        .iter()
        .map(|l| {
            Ok(ReceiptLine {
                sku: resolve(state, &l.sku)?.sku,
                received: count(l.received, "received")?,
                damaged: count(l.damaged, "damaged")?,
            })
        })
        .collect()
}

/// `POST /api/v1/shipments/{id}/receive` `{"lines": [{"sku", "received", "damaged"?}],
/// "over_delivery"?}`: lines left out were not received at all.
pub async fn receive_shipment(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReceiveBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(MotionKind::Shipment, &id)?;
    let lines = receipt_lines(&state, &body)?;
    let payload = Payload::ShipmentReceive {
        shipment: id.clone(),
        store: state.store().clone(),
        lines,
        over_delivery: body.over_delivery,
    };
    let _guard = state.order_steps().lock().await;
    state.node().submit(vec![payload]).await?;
    let m = find(&state, MotionKind::Shipment, &id)?;
    Ok(Json(render(&state, &m)))
}

/// `POST /api/v1/transfers/{id}/receive` (the receiving store) `{"lines": [{"sku",
/// "received", "damaged"?}], "over_delivery"?}`.
pub async fn receive_transfer(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReceiveBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(MotionKind::Transfer, &id)?;
    let from = find(&state, MotionKind::Transfer, &id)?
        .sent
        .and_then(|s| s.from)
        .ok_or_else(|| unknown(MotionKind::Transfer, id.as_str()))?;
    let lines = receipt_lines(&state, &body)?;
    let (transfer, store, over_delivery) = (id.clone(), state.store().clone(), body.over_delivery);
    // Built in the writer: units for a ship-to-store order are set aside in the receipt's
    // own commit, against the order as it is then (a cancel that arrived first means none).
    let build: crate::store::BuildPayloads = Box::new(move |replica, _now_ms| {
        let arrived = plan_arrivals(replica.state(), &transfer, &store, &lines);
        let receipt = Payload::TransferReceive {
            transfer,
            store,
            from,
            lines,
            over_delivery,
        };
        Ok(std::iter::once(receipt).chain(arrived).collect())
    });
    let _guard = state.order_steps().lock().await;
    state.node().submit_built(build, |_, _| Ok(())).await?;
    let m = find(&state, MotionKind::Transfer, &id)?;
    Ok(Json(render(&state, &m)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferLineBody {
    sku: String,
    qty: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    to: String,
    lines: Vec<TransferLineBody>,
}

/// `POST /api/v1/transfers` (manager) `{"to", "lines": [{"sku", "qty"}]}`: the units leave
/// this store's rights now; a transfer note with the QR is printed in the same commit.
pub async fn create_transfer(
    State(state): State<TerminalState>,
    session: Session,
    JsonBody(body): JsonBody<TransferBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    session.require_manager("sending a transfer")?;
    let here = state.store().clone();
    let to = StoreId::parse(&body.to)
        .ok()
        .filter(|s| state.config().transfer_to.contains(s) || *s == here)
        .ok_or_else(|| {
            ApiError::not_found("unknown_store", format!("unknown store {:?}", body.to))
                .with("store", body.to.as_str())
        })?;
    let mut lines = Vec::with_capacity(body.lines.len());
    for l in &body.lines {
        let qty = u32::try_from(l.qty)
            .ok()
            .filter(|n| (1..=crate::domain::validate::QTY_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_qty",
                    format!("qty must be a whole number from 1 to 100000, got {}", l.qty),
                )
                .with("field", "qty")
            })?;
        lines.push(OrderLine {
            sku: resolve(&state, &l.sku)?.sku,
            qty,
        });
    }
    let id = new_motion_id("T");
    let note = PrintJob::TransferNote {
        transfer: id.to_string(),
        from: here.to_string(),
        to: to.to_string(),
        staff: session.staff.clone(),
        lines: lines.iter().map(|l| (l.sku.to_string(), l.qty)).collect(),
        qr: format!("{TRANSFER_QR_PREFIX}{id}"),
    };
    let payload = Payload::TransferDispatch {
        transfer: id.clone(),
        store: here,
        to,
        lines,
    };
    let _guard = state.order_steps().lock().await;
    state.submit_printing(vec![payload], vec![note]).await?;
    let m = find(&state, MotionKind::Transfer, &id)?;
    Ok((StatusCode::CREATED, Json(render(&state, &m))))
}

/// `GET /api/v1/transfers/destinations`: where this store may send transfers (its
/// `transfer_to`), with each store's id, for the sending screen.
pub async fn destinations(State(state): State<TerminalState>, _session: Session) -> Json<Value> {
    Json(json!({
        "from": state.store().as_str(),
        "to": state.config().transfer_to.iter().map(StoreId::as_str).collect::<Vec<_>>(),
    }))
}

/// `POST /api/v1/transfers/{id}/note` (manager, the sending store): print the transfer note
/// again, e.g. for a ship-to-store transfer HQ asked this store to send. 200 with the
/// transfer; 409 `already_received` once it arrived.
pub async fn print_note(
    State(state): State<TerminalState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    session.require_manager("printing a transfer note")?;
    let id = parse_id(MotionKind::Transfer, &id)?;
    let m = find(&state, MotionKind::Transfer, &id)?;
    let here = state.store();
    let sent = m
        .sent
        .as_ref()
        .filter(|s| s.from.as_ref() == Some(here))
        .ok_or_else(|| unknown(MotionKind::Transfer, id.as_str()))?;
    if m.received.is_some() {
        return Err(ApiError::conflict(
            "already_received",
            format!("transfer {id} was already received"),
        ));
    }
    let note = note_for(&id, sent, &session.staff);
    state.submit_printing(Vec::new(), vec![note]).await?;
    Ok(Json(render(&state, &m)))
}

/// The transfer note of `sent`, printed by `staff`.
fn note_for(id: &MotionId, sent: &crate::domain::motion::Sent, staff: &str) -> PrintJob {
    PrintJob::TransferNote {
        transfer: id.to_string(),
        from: sent
            .from
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        to: sent.to.to_string(),
        staff: staff.to_string(),
        lines: sent
            .lines
            .iter()
            .map(|l| (l.sku.to_string(), l.qty))
            .collect(),
        qr: format!("{TRANSFER_QR_PREFIX}{id}"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchBody {
    /// What was scanned out, when the screen scanned it: must be the transfer's lines.
    #[serde(default)]
    lines: Option<Vec<TransferLineBody>>,
}

/// `POST /api/v1/transfers/{id}/dispatch` (manager, the sending store of a ship-to-store
/// transfer) `{}` or `{"lines": [{"sku", "qty"}]}` (the units scanned out, which must be
/// exactly the transfer's): the units leave this store's shelf now and are in transit; the
/// transfer note prints in the same commit. 409 `already_dispatched`, `already_received`, or
/// `bad_transition` when the order was cancelled (the units stay here); 422 `lines_mismatch`.
pub async fn dispatch_transfer(
    State(state): State<TerminalState>,
    session: Session,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DispatchBody>,
) -> Result<Json<Value>, ApiError> {
    session.require_manager("dispatching a transfer")?;
    let id = parse_id(MotionKind::Transfer, &id)?;
    let m = find(&state, MotionKind::Transfer, &id)?;
    let here = state.store().clone();
    let sent = m
        .sent
        .as_ref()
        .filter(|s| s.from.as_ref() == Some(&here) && s.awaits_dispatch)
        .ok_or_else(|| unknown(MotionKind::Transfer, id.as_str()))?;
    if let Some(scanned) = &body.lines {
        check_scanned(&state, scanned, &sent.lines)?;
    }
    let payload = state
        .read(|r| crate::domain::ship_to_store::dispatch_of(r.state(), &id, &here))
        .ok_or_else(|| unknown(MotionKind::Transfer, id.as_str()))?;
    let note = note_for(&id, sent, &session.staff);
    let _guard = state.order_steps().lock().await;
    state.submit_printing(vec![payload], vec![note]).await?;
    let m = find(&state, MotionKind::Transfer, &id)?;
    Ok(Json(render(&state, &m)))
}

/// The scanned lines, summed per sku, must be the transfer's lines exactly.
fn check_scanned(
    state: &TerminalState,
    scanned: &[TransferLineBody],
    lines: &[OrderLine],
) -> Result<(), ApiError> {
    let mut got: std::collections::BTreeMap<Sku, i64> = std::collections::BTreeMap::new();
    for l in scanned {
        *got.entry(resolve(state, &l.sku)?.sku).or_default() += l.qty;
    }
    let mut want: std::collections::BTreeMap<Sku, i64> = std::collections::BTreeMap::new();
    for l in lines {
        *want.entry(l.sku.clone()).or_default() += i64::from(l.qty);
    }
    let skus: std::collections::BTreeSet<&Sku> = got.keys().chain(want.keys()).collect();
    for sku in skus {
        let (g, w) = (got.get(sku).copied(), want.get(sku).copied());
        if g != w {
            return Err(ApiError::unprocessable(
                "lines_mismatch",
                format!(
                    "{sku}: scanned {} but the transfer carries {}",
                    g.unwrap_or(0),
                    w.unwrap_or(0)
                ),
            )
            .with("sku", sku.as_str())
            .with("expected", w.unwrap_or(0)));
        }
    }
    Ok(())
}

/// `<prefix>-` and ten random characters of an unambiguous alphabet: unique without asking
/// anyone (HQ names shipments `S-...`, stores name transfers `T-...`).
pub fn new_motion_id(prefix: &str) -> MotionId {
    use rand::Rng;
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::thread_rng();
    let tail: String = (0..10)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..32)]))
        .collect();
    MotionId::parse(&format!("{prefix}-{tail}"))
        .expect("a short prefix and the alphabet form a valid id")
}
