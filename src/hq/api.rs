//! Handlers of the HQ API (DESIGN.md section 11, HQ table). Each parses its input at the edge,
//! turns it into payloads, submits them, and renders the merged state back as JSON.

use super::body::JsonBody;
use super::error::ApiError;
use super::HqState;
use crate::domain::ids::Category;
use crate::domain::validate::PRICE_CENTS_MAX;
use crate::domain::{Ean13, Payload, Sku, StoreId};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

mod cart;
mod metrics;
mod order;

pub use cart::{get_cart, put_cart};
pub(super) use cart::{parse_lines, LineBody};
pub use metrics::metrics;
pub(crate) use order::date_utc;
pub use order::{cancel_order, get_order, post_order};

type ApiResult = Result<Response, ApiError>;

fn parse_sku(s: &str) -> Result<Sku, ApiError> {
    Sku::parse(s).map_err(|e| ApiError::invalid("sku", e.to_string()))
}

pub(super) fn known_store(state: &HqState, s: &str) -> Result<StoreId, ApiError> {
    match StoreId::parse(s) {
        Ok(store) if state.knows(&store) => Ok(store),
        _ => Err(ApiError::unknown_store(s)),
    }
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

pub async fn healthz(State(state): State<HqState>) -> Json<Value> {
    let ops = state.node.read(|r| r.version().total());
    Json(json!({"status": "ok", "role": "hq", "ops": ops}))
}

/// `PUT /catalog/{sku}`. `category` (DESIGN.md §18, promotions by category) is optional:
/// absent or null leaves the sku's category as it is, `""` clears it.
#[derive(Debug, Deserialize)]
pub struct CatalogBody {
    pub name: String,
    pub ean: String,
    pub price_cents: i64,
    pub vat_bp: i64,
    #[serde(default)]
    pub category: Option<String>,
}

pub async fn put_catalog(
    State(state): State<HqState>,
    Path(sku): Path<String>,
    body: Result<JsonBody<CatalogBody>, ApiError>,
) -> ApiResult {
    let sku = parse_sku(&sku)?;
    let b = body?.value;
    let name = b.name.trim().to_string();
    let ean = Ean13::parse(&b.ean).map_err(|e| ApiError::invalid("ean", e.to_string()))?;
    let price_cents = b.price_cents;
    if !(0..=PRICE_CENTS_MAX).contains(&price_cents) {
        return Err(ApiError::invalid(
            "price",
            format!("price_cents must be 0-{PRICE_CENTS_MAX}, got {price_cents}"),
        ));
    }
    let vat_bp = b.vat_bp;
    let vat_bp = u32::try_from(vat_bp)
        .ok()
        .filter(|v| *v <= 10_000)
        .ok_or_else(|| {
            ApiError::invalid("vat_bp", format!("vat_bp must be 0-10000, got {vat_bp}"))
        })?;
    let category = match b.category.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(c) => Some(Some(
            Category::parse(c).map_err(|e| ApiError::invalid("category", e.to_string()))?,
        )),
    };
    let taken = state.node.read(|r| {
        r.state()
            .catalog
            .by_ean(&ean)
            .filter(|p| *p.sku != sku)
            .map(|p| p.sku.to_string())
    });
    if let Some(other) = taken {
        return Err(ApiError::invalid(
            "ean",
            format!("ean {ean} already belongs to {other}"),
        ));
    }
    let payload = Payload::CatalogPut {
        sku: sku.clone(),
        ean,
        name: name.clone(),
        price_cents,
        vat_bp,
    };
    let mut payloads = vec![payload];
    if let Some(category) = category {
        payloads.push(Payload::CatalogCategory {
            sku: sku.clone(),
            category,
        });
    }
    state.node.submit(payloads).await?;
    let category = state
        .node
        .read(|r| r.state().catalog.category(&sku).cloned());
    Ok(Json(json!({
        "sku": sku, "ean": ean, "name": name, "price_cents": price_cents, "vat_bp": vat_bp,
        "category": category,
    }))
    .into_response())
}

pub async fn availability(
    State(state): State<HqState>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let sku = parse_sku(q.get("sku").map(String::as_str).unwrap_or(""))?;
    let stores = match q.get("store") {
        Some(s) => vec![known_store(&state, s)?],
        None => state.settings.stores.clone(),
    };
    let rows = state.node.read(|r| {
        let st = r.state();
        if !st.catalog.contains(&sku) {
            return None;
        }
        let hq = r.actor().clone();
        Some(
            stores
                .iter()
                .map(|store| {
                    (
                        store.clone(),
                        st.available(store, &sku).max(0),
                        st.rights(store, &sku, &hq).max(0),
                        crate::domain::motion::in_transit(st, store, &sku),
                    )
                })
                .collect::<Vec<_>>(),
        )
    });
    let rows = rows.ok_or_else(|| ApiError::unknown_sku(sku.as_str(), StatusCode::NOT_FOUND))?;
    let stores: Vec<Value> = rows
        .into_iter()
        .map(|(store, available, hq_can_sell, in_transit)| {
            let online = state.sync.link(&store).online;
            json!({"store": store, "available": available, "hq_can_sell": hq_can_sell,
                   "online": online, "in_transit": in_transit})
        })
        .collect();
    Ok(Json(json!({"sku": sku, "stores": stores})).into_response())
}

/// One row of `GET /stores`, shared with the dashboard.
pub fn store_rows(state: &HqState) -> Vec<Value> {
    state
        .settings
        .stores
        .iter()
        .map(|store| {
            let link = state.sync.link(store);
            let digest = state.node.read(|r| r.digest_for_store(store).short());
            json!({
                "store": store, "online": link.online, "last_seen": link.last_seen_ms,
                "outbox": link.outbox, "digest": digest, "lag": link.lag_ops,
            })
        })
        .collect()
}

pub async fn stores(State(state): State<HqState>) -> Json<Value> {
    Json(Value::Array(store_rows(&state)))
}

/// `POST /demo/stores/{store}/link`.
#[derive(Debug, Deserialize)]
pub struct LinkBody {
    pub online: bool,
}

pub async fn demo_link(
    State(state): State<HqState>,
    Path(store): Path<String>,
    body: Result<JsonBody<LinkBody>, ApiError>,
) -> ApiResult {
    let Some(links) = state.links.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the link switch exists only in the demo",
        ));
    };
    let store = known_store(&state, &store)?;
    let online = body?.value.online;
    if !links.set_link(&store, online) {
        return Err(ApiError::unknown_store(store.as_str()));
    }
    Ok(Json(json!({"store": store, "online": online})).into_response())
}
