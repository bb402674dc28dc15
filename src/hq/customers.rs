//! Customer calls of the HQ API (DESIGN.md sections 14 and 17): profile and consent, erasure
//! followed store by store, abandoned carts with the channels each customer may be contacted
//! on now, and the record of contacts under the contact policy.
//!
//! Personal data is validated here and in the domain, never logged: handlers log ids only.

use super::body::JsonBody;
use super::error::ApiError;
use super::HqState;
use crate::domain::customer::Customer;
use crate::domain::op::{Channel, ProfilePatch};
use crate::domain::{CustomerId, DomainError, Payload, State as Merged, StoreId};
use crate::store::{now_ms, SubmitError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::params;
use serde::Deserialize;
use serde_json::{json, Map, Value};

mod contact;
mod erasure;

pub use contact::{abandoned, post_contact, AbandonedQuery};
pub use erasure::{delete_customer, get_erasure};

type ApiResult = Result<Response, ApiError>;

/// Idle hours after which the customer card shows a cart as abandoned, unless the webhook's
/// `abandoned_cart_hours` says otherwise.
pub const ABANDONED_HOURS_DEFAULT: u32 = 24;
/// Longest `idle_hours` asked for (90 days).
const IDLE_HOURS_MAX: u64 = 24 * 90;
const HOUR_MS: u64 = 3_600_000;

fn parse_customer(s: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(s).map_err(|e| ApiError::invalid("customer", e.to_string()))
}

fn parse_channel(s: &str) -> Result<Channel, ApiError> {
    Channel::parse(s).ok_or_else(|| {
        ApiError::invalid(
            "channel",
            format!("unknown channel {s:?}: use email, sms or whatsapp"),
        )
    })
}

fn unknown_customer(id: &CustomerId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_customer",
        format!("unknown customer {id}"),
    )
    .with("id", id.as_str())
}

fn erased(id: &CustomerId, status: StatusCode) -> ApiError {
    ApiError::new(
        status,
        "customer_erased",
        format!("customer {id} was erased"),
    )
    .with("id", id.as_str())
}

/// Domain refusals of customer ops, as this API names them.
fn refused(e: SubmitError, id: &CustomerId) -> ApiError {
    match e {
        SubmitError::Domain(DomainError::CustomerErased(_)) => erased(id, StatusCode::GONE),
        other => other.into(),
    }
}

/// Whether HQ knows the customer at all (a profile, consent, erasure or a cart).
fn known(state: &Merged, id: &CustomerId) -> bool {
    state.customers.contains_key(id) || state.carts.contains_key(id)
}

/// Stores that hold the customer (an order or a sale there, or looked up at their counter),
/// as HQ's routing recorded them when it sent them the customer's data, in config order.
async fn holders(hq: &HqState, id: &CustomerId) -> Result<Vec<StoreId>, ApiError> {
    let key = id.to_string();
    let names: Vec<String> = hq
        .node
        .query(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT store FROM sync_scope WHERE customer = ?1")?;
            let rows = stmt.query_map(params![key], |r| r.get(0))?;
            rows.collect()
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(hq
        .settings
        .stores
        .iter()
        .filter(|s| names.iter().any(|n| n == s.as_str()))
        .cloned()
        .collect())
}

fn abandoned_idle_ms(hq: &HqState) -> u64 {
    u64::from(
        hq.settings
            .abandoned_cart_hours
            .unwrap_or(ABANDONED_HOURS_DEFAULT),
    ) * HOUR_MS
}

/// The customer as the API shows it (DESIGN.md section 17): profile, consent per channel with
/// source and time, the stores holding them, the cart, and `abandoned_since` when it is.
fn customer_json(
    hq: &HqState,
    state: &Merged,
    id: &CustomerId,
    stores: &[StoreId],
    now: u64,
) -> Value {
    let empty = Customer::default();
    let c = state.customers.get(id).unwrap_or(&empty);
    let mut consent = Map::new();
    for channel in Channel::ALL {
        if let Some(k) = c.consent(channel) {
            consent.insert(
                channel.as_str().into(),
                json!({"granted": k.granted, "source": k.source, "at": k.at_ms}),
            );
        }
    }
    let cart = state.carts.get(id);
    let lines: Vec<Value> = cart
        .map(|c| {
            c.lines()
                .into_iter()
                .map(|(sku, qty)| json!({"sku": sku, "qty": qty}))
                .collect()
        })
        .unwrap_or_default();
    let updated_at = cart.map(|c| c.updated().wall_ms());
    let mut out = json!({
        "id": id, "name": c.name(), "email": c.email(), "phone": c.phone(),
        "loyalty_card": c.loyalty_card(), "consent": consent,
        "cart": {"customer": id, "lines": lines, "updated_at": updated_at},
        "stores": stores,
    });
    let abandoned = cart
        .filter(|c| crate::domain::cart::is_abandoned(c, now, abandoned_idle_ms(hq)))
        .map(|c| c.updated().wall_ms());
    if let (Some(since), Some(obj)) = (abandoned, out.as_object_mut()) {
        obj.insert("abandoned_since".into(), json!(since));
    }
    out
}

async fn render(hq: &HqState, id: &CustomerId) -> ApiResult {
    let stores = holders(hq, id).await?;
    let now = now_ms();
    let body = hq
        .node
        .read(|r| customer_json(hq, r.state(), id, &stores, now));
    Ok(Json(body).into_response())
}

/// `PUT /customers/{id}`: each profile field absent (unchanged) or a string.
#[derive(Debug, Default, Deserialize)]
pub struct ProfileBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub loyalty_card: Option<String>,
}

/// The profile patch of a body: each given field trimmed (the domain checks the rest).
fn profile(b: ProfileBody) -> ProfilePatch {
    let trim = |v: Option<String>| v.map(|s| s.trim().to_string());
    ProfilePatch {
        name: trim(b.name),
        email: trim(b.email),
        phone: trim(b.phone),
        loyalty_card: trim(b.loyalty_card),
    }
}

/// `PUT /customers/{id}/consent/{channel}`.
#[derive(Debug, Deserialize)]
pub struct ConsentBody {
    pub granted: bool,
    #[serde(default)]
    pub source: Option<String>,
}

/// `PUT /customers/{id}`: create or update the profile (each field last writer wins).
pub async fn put_customer(
    State(hq): State<HqState>,
    Path(id): Path<String>,
    body: Result<JsonBody<ProfileBody>, ApiError>,
) -> ApiResult {
    let id = parse_customer(&id)?;
    let patch = profile(body?.value);
    if hq.node.read(|r| r.state().customer_erased(&id)) {
        return Err(erased(&id, StatusCode::GONE));
    }
    hq.node
        .submit(vec![Payload::CustomerUpdate {
            customer: id.clone(),
            patch,
        }])
        .await
        .map_err(|e| refused(e, &id))?;
    tracing::info!(customer = %id, "customer updated");
    render(&hq, &id).await
}

/// `GET /customers/{id}`.
pub async fn get_customer(State(hq): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_customer(&id)?;
    let (known, gone) = hq
        .node
        .read(|r| (known(r.state(), &id), r.state().customer_erased(&id)));
    if gone {
        return Err(erased(&id, StatusCode::GONE));
    }
    if !known {
        return Err(unknown_customer(&id));
    }
    render(&hq, &id).await
}

/// `PUT /customers/{id}/consent/{channel}` with `{"granted": bool, "source"?}`.
pub async fn put_consent(
    State(hq): State<HqState>,
    Path((id, channel)): Path<(String, String)>,
    body: Result<JsonBody<ConsentBody>, ApiError>,
) -> ApiResult {
    let id = parse_customer(&id)?;
    let channel = parse_channel(&channel)?;
    let body = body?.value;
    let granted = body.granted;
    let source = body.source.as_deref().unwrap_or("shop").trim();
    let (known, gone) = hq
        .node
        .read(|r| (known(r.state(), &id), r.state().customer_erased(&id)));
    if gone {
        return Err(erased(&id, StatusCode::GONE));
    }
    if !known {
        return Err(unknown_customer(&id));
    }
    hq.node
        .submit(vec![Payload::ConsentSet {
            customer: id.clone(),
            channel,
            granted,
            source: source.to_string(),
        }])
        .await
        .map_err(|e| refused(e, &id))?;
    tracing::info!(customer = %id, channel = channel.as_str(), granted, "consent recorded");
    render(&hq, &id).await
}

#[cfg(test)]
mod tests;
