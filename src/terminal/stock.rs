//! `GET /api/v1/stock/{sku-or-ean}` and `POST /api/v1/stock/{sku}/count` (manager), plus the
//! scan-to-product resolution the other screens share.

use super::auth::Session;
use super::body::{FieldCodes, Typed};
use super::error::ApiError;
use super::TerminalState;
use crate::devices::barcode;
use crate::domain::catalog::Product;
use crate::domain::count::plan_count;
use crate::domain::validate::QTY_MAX;
use crate::domain::{Ean13, Sku};
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// The product a scan or typed code names: a barcode (EAN-13, UPC-A, GS1 with a unit GTIN,
/// with or without an AIM prefix; check digits verified) or a sku.
pub(crate) fn resolve(state: &TerminalState, code: &str) -> Result<Product, ApiError> {
    let code = code.trim();
    let looks_numeric = code.len() >= 8 && code.bytes().all(|b| b.is_ascii_digit());
    match barcode::parse_scan(code) {
        Ok(scan) => {
            if let Some(ean) = scan.product_ean() {
                let found = Ean13::parse(&ean).ok().and_then(|e| {
                    state.read(|r| r.state().catalog.by_ean(&e).map(|p| p.to_product()))
                });
                return found.ok_or_else(|| {
                    ApiError::unprocessable("unknown_sku", format!("no product has barcode {ean}"))
                        .with("scan", code)
                });
            }
        }
        Err(e) if looks_numeric || code.starts_with(']') => {
            return Err(ApiError::unprocessable("invalid_ean", e.to_string()).with("scan", code));
        }
        Err(_) => {}
    }
    let sku = Sku::parse(code)
        .map_err(|e| ApiError::unprocessable("invalid_sku", e.to_string()).with("scan", code))?;
    state
        .read(|r| r.state().catalog.get(&sku).map(|p| p.to_product()))
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
            "ean": p.ean.to_string(),
            "name": p.name,
            "price_cents": p.price_cents,
            "vat_bp": p.vat_bp,
            "category": s.catalog.category(&p.sku).map(|c| c.as_str()),
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

/// `POST /api/v1/stock/{sku}/count`.
#[derive(Debug, Deserialize)]
pub struct CountBody {
    pub counted: i64,
}

impl FieldCodes for CountBody {
    fn code(_field: &str) -> &'static str {
        "invalid_qty"
    }
}

/// `POST /api/v1/stock/{sku}/count` `{"counted"}`: manager only.
pub async fn count(
    State(state): State<TerminalState>,
    session: Session,
    Path(sku): Path<String>,
    body: Result<Typed<CountBody>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    session.require_manager("adjusting a count")?;
    let product = resolve(&state, &sku)?;
    let counted = body?.0.counted;
    if !(0..=i64::from(QTY_MAX)).contains(&counted) {
        return Err(ApiError::unprocessable(
            "invalid_qty",
            format!("counted must be a whole number from 0 to {QTY_MAX}"),
        )
        .with("field", "counted"));
    }
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
