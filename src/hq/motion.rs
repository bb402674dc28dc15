//! HQ's side of inventory in motion (DESIGN.md section 19): shipment notices from the ERP or
//! warehouse (`POST /api/v1/shipments`), and every shipment and transfer with what arrived,
//! so HQ sees discrepancies and units in transit.

use super::api::parse_lines;
use super::body::{Fields, JsonBody};
use super::error::ApiError;
use super::HqState;
use crate::domain::motion::{MotionKind, Movement};
use crate::domain::op::OrderLine;
use crate::domain::{MotionId, Payload, StoreId};
use crate::terminal::motion::{movement_json, new_motion_id};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::collections::HashMap;

type ApiResult = Result<Response, ApiError>;

/// `POST /api/v1/shipments` `{"store", "reference"?, "lines": [{"sku", "qty"}]}`: 201 with the
/// shipment (`expected`); 404 `unknown_store`, 422 `unknown_sku` / `invalid_qty`.
pub async fn post_shipment(State(state): State<HqState>, body: JsonBody) -> ApiResult {
    let b = &body.object;
    let raw_store = b.req_str("store")?;
    let store = StoreId::parse(raw_store)
        .ok()
        .filter(|s| state.knows(s))
        .ok_or_else(|| ApiError::unknown_store(raw_store))?;
    let reference = match b.get("reference") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::invalid("reference", "reference must be a string")),
    };
    let lines: Vec<OrderLine> = parse_lines(&state, b, false)?
        .into_iter()
        .map(|(sku, qty)| OrderLine { sku, qty })
        .collect();
    let id = new_motion_id("S");
    let payload = Payload::ShipmentNotice {
        shipment: id.clone(),
        store,
        reference,
        lines,
    };
    state.node.submit(vec![payload]).await?;
    let m = find(&state, MotionKind::Shipment, id.as_str())?;
    Ok((StatusCode::CREATED, Json(movement_json(&m))).into_response())
}

fn find(state: &HqState, kind: MotionKind, id: &str) -> Result<Movement, ApiError> {
    let (code, what) = match kind {
        MotionKind::Shipment => ("unknown_shipment", "shipment"),
        MotionKind::Transfer => ("unknown_transfer", "transfer"),
    };
    let missing = || ApiError::new(StatusCode::NOT_FOUND, code, format!("no {what} {id}"));
    let id = MotionId::parse(id).map_err(|_| missing())?;
    state
        .node
        .read(|r| {
            let s = r.state();
            match kind {
                MotionKind::Shipment => s.shipments.get(&id).cloned(),
                MotionKind::Transfer => s.transfers.get(&id).cloned(),
            }
        })
        .filter(|m| m.sent.is_some())
        .ok_or_else(missing)
}

fn list(state: &HqState, kind: MotionKind, q: &HashMap<String, String>) -> Vec<Value> {
    let store = q.get("store");
    let status = q.get("status");
    state.node.read(|r| {
        let s = r.state();
        let map = match kind {
            MotionKind::Shipment => &s.shipments,
            MotionKind::Transfer => &s.transfers,
        };
        map.values()
            .filter(|m| m.sent.is_some())
            .filter(|m| status.is_none_or(|st| m.status() == st))
            .filter(|m| {
                store.is_none_or(|st| {
                    m.to().is_some_and(|t| t.as_str() == st)
                        || m.sent
                            .as_ref()
                            .and_then(|x| x.from.as_ref())
                            .is_some_and(|f| f.as_str() == st)
                })
            })
            .map(movement_json)
            .collect()
    })
}

/// `GET /api/v1/shipments/{id}`.
pub async fn get_shipment(State(state): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let m = find(&state, MotionKind::Shipment, &id)?;
    Ok(Json(movement_json(&m)).into_response())
}

/// `GET /api/v1/shipments[?store=S][&status=expected|received]`.
pub async fn list_shipments(
    State(state): State<HqState>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    Json(Value::Array(list(&state, MotionKind::Shipment, &q)))
}

/// `GET /api/v1/transfers/{id}`.
pub async fn get_transfer(State(state): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let m = find(&state, MotionKind::Transfer, &id)?;
    Ok(Json(movement_json(&m)).into_response())
}

/// `GET /api/v1/transfers[?store=S][&status=in_transit|received]`: units in transit at HQ.
pub async fn list_transfers(
    State(state): State<HqState>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    Json(Value::Array(list(&state, MotionKind::Transfer, &q)))
}
