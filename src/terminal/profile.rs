//! Customer changes at the counter: a new customer (works offline: the ops reach HQ when the
//! link returns), and consent given or withdrawn at the counter, recorded with this store as
//! its source. Also what the customer card adds to the cart: consent per channel and the
//! abandoned badge.
//!
//! Personal data is checked by the domain and never logged here: logs name customer ids only.

use super::auth::Session;
use super::body::JsonBody;
use super::error::ApiError;
use super::TerminalState;
use crate::domain::op::{Channel, ProfilePatch};
use crate::domain::{CustomerId, DomainError, Payload, State};
use crate::store::SubmitError;
use axum::extract::{Path, State as Extract};
use axum::http::StatusCode;
use axum::Json;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A cart unchanged this long shows the abandoned badge on the card.
pub const ABANDONED_HOURS: u64 = 24;

/// Consent per channel (`{"email": {"granted", "source", "at"}}`) and, when the cart is
/// abandoned, since when: what the customer card shows beside the cart.
pub fn card_fields(state: &State, id: &CustomerId, now_ms: u64) -> Map<String, Value> {
    let mut consent = Map::new();
    if let Some(c) = state.customers.get(id).filter(|c| !c.is_erased()) {
        for channel in Channel::ALL {
            if let Some(k) = c.consent(channel) {
                consent.insert(
                    channel.as_str().into(),
                    json!({"granted": k.granted, "source": k.source, "at": k.at_ms}),
                );
            }
        }
    }
    let mut out = Map::new();
    out.insert("consent".into(), Value::Object(consent));
    let idle_ms = ABANDONED_HOURS * 3_600_000;
    if let Some(cart) = state
        .carts
        .get(id)
        .filter(|c| crate::domain::cart::is_abandoned(c, now_ms, idle_ms))
    {
        out.insert("abandoned_since".into(), json!(cart.updated().wall_ms()));
    }
    out
}

/// The customer as the card shows them (§17 shape, without the history).
fn customer_json(state: &TerminalState, id: &CustomerId) -> Option<Value> {
    let now = crate::store::now_ms();
    state.read(|r| {
        let s = r.state();
        let c = s.customers.get(id).filter(|c| !c.is_erased())?;
        let cart = s.carts.get(id);
        let lines: Vec<Value> = cart
            .map(|c| c.lines())
            .unwrap_or_default()
            .iter()
            .map(|(sku, qty)| json!({"sku": sku, "qty": qty}))
            .collect();
        let mut out = json!({
            "id": id, "name": c.name(), "email": c.email(), "phone": c.phone(),
            "loyalty_card": c.loyalty_card(),
            "cart": {"customer": id, "lines": lines, "updated_at": cart.map(|c| c.updated().wall_ms())},
        });
        if let Some(obj) = out.as_object_mut() {
            obj.extend(card_fields(s, id, now));
        }
        Some(out)
    })
}

/// Profile fields refused by the domain get the §17 code naming the field.
fn refused(e: SubmitError) -> ApiError {
    match e {
        SubmitError::Domain(DomainError::InvalidField { field, reason }) => {
            let code = match field {
                "email" => "invalid_email",
                "phone" => "invalid_phone",
                "name" => "invalid_name",
                "loyalty_card" => "invalid_loyalty_card",
                _ => "invalid_field",
            };
            ApiError::unprocessable(code, format!("{field}: {reason}")).with("field", field)
        }
        other => other.into(),
    }
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found("unknown_customer", format!("no customer {id} here"))
}

/// `C-` and ten characters of Crockford base32: about 50 bits, collision-free in practice.
fn new_customer_id() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::thread_rng();
    let tail: String = (0..10)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..32)]))
        .collect();
    format!("C-{tail}")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    id: Option<String>,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    loyalty_card: Option<String>,
}

/// `POST /api/v1/customers`: a new customer, created here (offline too) and followed by this
/// store, so HQ learns of them and keeps them supplied. 201 with the customer.
pub async fn create(
    Extract(state): Extract<TerminalState>,
    _session: Session,
    JsonBody(body): JsonBody<NewCustomer>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = body.id.unwrap_or_else(new_customer_id);
    let cid = CustomerId::parse(id.trim())
        .map_err(|e| ApiError::unprocessable("invalid_id", e.to_string()).with("field", "id"))?;
    let exists = state.read(|r| r.state().customers.contains_key(&cid));
    if exists {
        return Err(ApiError::conflict(
            "customer_exists",
            format!("customer {cid} already exists"),
        ));
    }
    let trim = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let patch = ProfilePatch {
        name: Some(body.name.trim().to_string()),
        email: trim(body.email),
        phone: trim(body.phone),
        loyalty_card: trim(body.loyalty_card),
    };
    let store = state.store().clone();
    state
        .node()
        .submit(vec![
            Payload::CustomerUpdate {
                customer: cid.clone(),
                patch,
            },
            Payload::CustomerFollow {
                customer: cid.clone(),
                store,
            },
        ])
        .await
        .map_err(refused)?;
    tracing::info!(customer = %cid, "customer created at the counter");
    let out = customer_json(&state, &cid).ok_or_else(|| unknown(cid.as_str()))?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize)]
pub struct ConsentBody {
    granted: Option<bool>,
}

/// `PUT /api/v1/customers/{id}/consent/{channel}` with `{"granted": bool}`: consent given or
/// withdrawn at this counter (source: this store). 200 with the customer.
pub async fn put_consent(
    Extract(state): Extract<TerminalState>,
    _session: Session,
    Path((id, channel)): Path<(String, String)>,
    JsonBody(body): JsonBody<ConsentBody>,
) -> Result<Json<Value>, ApiError> {
    let Some(channel) = Channel::parse(&channel) else {
        return Err(ApiError::unprocessable(
            "invalid_channel",
            format!("unknown channel {channel:?}: use email, sms or whatsapp"),
        )
        .with("field", "channel"));
    };
    let granted = body.granted.ok_or_else(|| {
        ApiError::unprocessable("invalid_granted", "granted must be true or false")
            .with("field", "granted")
    })?;
    let cid = CustomerId::parse(&id).map_err(|_| unknown(&id))?;
    let (here, erased) = state.read(|r| {
        let s = r.state();
        (s.customers.contains_key(&cid), s.customer_erased(&cid))
    });
    if erased {
        return Err(ApiError::new(
            StatusCode::GONE,
            "customer_erased",
            format!("customer {cid} was erased"),
        ));
    }
    if !here {
        return Err(unknown(&id));
    }
    let store = state.store().clone();
    state
        .node()
        .submit(vec![Payload::ConsentSet {
            customer: cid.clone(),
            channel,
            granted,
            source: store.to_string(),
        }])
        .await
        .map_err(refused)?;
    tracing::info!(customer = %cid, channel = channel.as_str(), granted, "consent recorded at the counter");
    customer_json(&state, &cid)
        .map(Json)
        .ok_or_else(|| unknown(&id))
}
