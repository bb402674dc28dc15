//! Carts of the online shop: `GET` and `PUT /carts/{customer}`, and the order-line parser
//! shared with orders and transfers.

use super::{parse_sku, ApiResult};
use crate::domain::validate::{LINES_MAX, QTY_MAX};
use crate::domain::{CustomerId, Payload, Sku};
use crate::hq::body::JsonBody;
use crate::hq::error::ApiError;
use crate::hq::HqState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub(super) fn parse_customer(s: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(s).map_err(|e| ApiError::invalid("customer", e.to_string()))
}

fn cart_json(state: &HqState, customer: &CustomerId) -> Value {
    state.node.read(|r| {
        let cart = r.state().carts.get(customer);
        let lines: Vec<Value> = cart
            .map(|c| {
                c.lines()
                    .into_iter()
                    .map(|(sku, qty)| json!({"sku": sku, "qty": qty}))
                    .collect()
            })
            .unwrap_or_default();
        let updated_at = cart.map(|c| c.updated().wall_ms());
        json!({"customer": customer, "lines": lines, "updated_at": updated_at})
    })
}

pub async fn get_cart(State(state): State<HqState>, Path(customer): Path<String>) -> ApiResult {
    let customer = parse_customer(&customer)?;
    Ok(Json(cart_json(&state, &customer)).into_response())
}

/// One `{"sku", "qty"}` line of a cart, an order or a shipment.
#[derive(Debug, Deserialize)]
pub struct LineBody {
    pub sku: String,
    pub qty: i64,
}

/// `PUT /carts/{customer}`: the whole cart.
#[derive(Debug, Deserialize)]
pub struct CartBody {
    pub lines: Vec<LineBody>,
}

/// `lines: [{"sku", "qty"}]` with each sku in the catalog; `allow_zero` for carts (0 removes).
pub(in crate::hq) fn parse_lines(
    state: &HqState,
    raw: &[LineBody],
    allow_zero: bool,
) -> Result<Vec<(Sku, u32)>, ApiError> {
    if raw.len() > LINES_MAX || (!allow_zero && raw.is_empty()) {
        return Err(ApiError::invalid(
            "lines",
            format!("lines must hold 1-{LINES_MAX} entries, got {}", raw.len()),
        ));
    }
    let mut out: Vec<(Sku, u32)> = Vec::new();
    for line in raw {
        let sku = parse_sku(&line.sku)?;
        let qty = line.qty;
        let min = if allow_zero { 0 } else { 1 };
        let qty = u32::try_from(qty)
            .ok()
            .filter(|q| (min..=QTY_MAX).contains(q))
            .ok_or_else(|| {
                ApiError::invalid("qty", format!("qty must be {min}-{QTY_MAX}, got {qty}"))
                    .with("sku", sku.as_str())
            })?;
        if out.iter().any(|(s, _)| *s == sku) {
            return Err(ApiError::invalid(
                "lines",
                format!("sku {sku} appears twice"),
            ));
        }
        out.push((sku, qty));
    }
    let unknown = state.node.read(|r| {
        out.iter()
            .find(|(sku, _)| !r.state().catalog.contains(sku))
            .map(|(s, _)| s.clone())
    });
    if let Some(sku) = unknown {
        return Err(ApiError::unknown_sku(
            sku.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    Ok(out)
}

pub async fn put_cart(
    State(state): State<HqState>,
    Path(customer): Path<String>,
    body: Result<JsonBody<CartBody>, ApiError>,
) -> ApiResult {
    let customer = parse_customer(&customer)?;
    let wanted: BTreeMap<Sku, u32> = parse_lines(&state, &body?.value.lines, true)?
        .into_iter()
        .filter(|(_, q)| *q > 0)
        .collect();
    let payloads = state.node.read(|r| {
        let cart = r.state().carts.get(&customer);
        let current = cart.map(|c| c.lines()).unwrap_or_default();
        let mut ops = Vec::new();
        for (sku, qty) in &wanted {
            if current.get(sku) != Some(qty) {
                ops.push(Payload::CartSet {
                    customer: customer.clone(),
                    sku: sku.clone(),
                    qty: *qty,
                });
            }
        }
        for sku in current.keys().filter(|s| !wanted.contains_key(*s)) {
            let observed = cart.map(|c| c.observed(sku)).unwrap_or_default();
            ops.push(Payload::CartRemove {
                customer: customer.clone(),
                sku: sku.clone(),
                observed,
            });
        }
        ops
    });
    if !payloads.is_empty() {
        state.node.submit(payloads).await?;
    }
    Ok(Json(cart_json(&state, &customer)).into_response())
}
