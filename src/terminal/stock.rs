//! `GET /api/v1/stock/{sku-or-ean}` and `POST /api/v1/stock/{sku}/count` (manager), plus the
//! scan-to-product resolution the other screens share.

use super::auth::Session;
use super::body::{int_field, JsonBody};
use super::error::ApiError;
use super::TerminalState;
use crate::domain::catalog::Product;
use crate::domain::count::plan_count;
use crate::domain::validate::QTY_MAX;
use crate::domain::{Ean13, Sku};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};

/// The GTIN-13 inside a scan: plain EAN-13, UPC-A (12 digits), GTIN-14 with a leading 0, or
/// a GS1 element string starting with AI 01; an AIM prefix (`]E0`, `]C1`) is dropped.
fn gtin13(code: &str) -> Option<String> {
    let code = code.trim();
    let code = match code.strip_prefix(']') {
        Some(rest) => rest.get(2..)?,
        None => code,
    };
    let digits: String = code.chars().filter(|c| !matches!(c, '(' | ')')).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match digits.len() {
        12 => Some(format!("0{digits}")),
        13 => Some(digits),
        14 if digits.starts_with('0') => Some(digits[1..].to_string()),
        n if n >= 16 && digits.starts_with("010") => Some(digits[3..16].to_string()),
        _ => None,
    }
}

/// The product a scan or typed code names: an EAN (checked) or a sku.
pub(crate) fn resolve(state: &TerminalState, code: &str) -> Result<Product, ApiError> {
    let code = code.trim();
    if let Some(gtin) = gtin13(code) {
        let ean = Ean13::parse(&gtin).map_err(|e| {
            ApiError::unprocessable("invalid_ean", e.to_string()).with("scan", code)
        })?;
        return state
            .read(|r| r.state().catalog.by_ean(&ean).cloned())
            .ok_or_else(|| {
                ApiError::unprocessable("unknown_sku", format!("no product has barcode {ean}"))
                    .with("scan", code)
            });
    }
    let sku = Sku::parse(code)
        .map_err(|e| ApiError::unprocessable("invalid_sku", e.to_string()).with("scan", code))?;
    state
        .read(|r| r.state().catalog.get(&sku).cloned())
        .ok_or_else(|| {
            ApiError::unprocessable("unknown_sku", format!("unknown sku {sku}"))
                .with("sku", sku.as_str())
        })
}

fn stock_json(state: &TerminalState, p: &Product) -> Value {
    let store = state.store();
    let hq = crate::domain::ActorId::hq();
    state.read(|r| {
        let s = r.state();
        json!({
            "sku": p.sku.as_str(),
            "ean": p.ean.as_str(),
            "name": p.name,
            "price_cents": p.price_cents,
            "vat_bp": p.vat_bp,
            "available": s.available(store, &p.sku).max(0),
            "store_rights": s.rights(store, &p.sku, &store.actor()).max(0),
            "hq_rights": s.rights(store, &p.sku, &hq).max(0),
            "reserved": s.reserved(store, &p.sku),
            "on_hand": s.on_hand(store, &p.sku).max(0),
            "shortfall": s.shortfall.get(&(store.clone(), p.sku.clone())).copied().unwrap_or(0),
        })
    })
}

/// `GET /api/v1/stock/{sku-or-ean}`.
pub async fn lookup(
    State(state): State<TerminalState>,
    _session: Session,
    Path(code): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let product = resolve(&state, &code).map_err(|mut e| {
        if e.code == "unknown_sku" {
            e.status = axum::http::StatusCode::NOT_FOUND;
        }
        e
    })?;
    Ok(Json(stock_json(&state, &product)))
}

/// `POST /api/v1/stock/{sku}/count` `{"counted"}`: manager only.
pub async fn count(
    State(state): State<TerminalState>,
    session: Session,
    Path(sku): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    session.require_manager("adjusting a count")?;
    let product = resolve(&state, &sku)?;
    let counted = int_field(
        body.get("counted"),
        "counted",
        "invalid_qty",
        0,
        i64::from(QTY_MAX),
    )?;
    let store = state.store().clone();
    let _guard = state.order_steps().lock().await;
    let payloads = state.read(|r| plan_count(r.state(), &store, &product.sku, counted as u32));
    let shrinkage = payloads
        .iter()
        .find_map(|p| match p {
            crate::domain::Payload::CountRecorded {
                shrinkage,
                expected,
                ..
            } => Some((*shrinkage, *expected)),
            _ => None,
        })
        .unwrap_or((0, 0));
    state.node().submit(payloads).await?;
    let mut out = stock_json(&state, &product);
    if let Value::Object(m) = &mut out {
        m.insert("counted".into(), json!(counted));
        m.insert("expected".into(), json!(shrinkage.1));
        m.insert("shrinkage".into(), json!(shrinkage.0));
    }
    Ok(Json(out))
}
