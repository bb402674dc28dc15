//! Customer calls of the HQ API (DESIGN.md sections 14 and 17): profile and consent, erasure
//! followed store by store, abandoned carts with the channels each customer may be contacted
//! on now, and the record of contacts under the contact policy.
//!
//! Personal data is validated here and in the domain, never logged: handlers log ids only.

use super::body::{Fields, JsonBody};
use super::error::ApiError;
use super::HqState;
use crate::domain::contact::{Refusal, WEEK_MS};
use crate::domain::customer::Customer;
use crate::domain::op::{Channel, ProfilePatch};
use crate::domain::{CustomerId, DomainError, Payload, State as Merged, StoreId};
use crate::store::{now_ms, SubmitError};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::{params, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

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

/// A profile field from the body: absent, or a trimmed non-empty string.
fn profile(b: &Map<String, Value>) -> Result<ProfilePatch, ApiError> {
    let mut patch = ProfilePatch::default();
    for (key, slot) in [
        ("name", &mut patch.name),
        ("email", &mut patch.email),
        ("phone", &mut patch.phone),
        ("loyalty_card", &mut patch.loyalty_card),
    ] {
        if let Some(v) = b.opt_str(key)? {
            *slot = Some(v.trim().to_string());
        }
    }
    Ok(patch)
}

/// `PUT /customers/{id}`: create or update the profile (each field last writer wins).
pub async fn put_customer(
    State(hq): State<HqState>,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult {
    let id = parse_customer(&id)?;
    let patch = profile(&body.object)?;
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
    body: JsonBody,
) -> ApiResult {
    let id = parse_customer(&id)?;
    let channel = parse_channel(&channel)?;
    let granted = match body.object.get("granted") {
        Some(Value::Bool(b)) => *b,
        _ => {
            return Err(ApiError::invalid(
                "granted",
                "granted must be true or false",
            ))
        }
    };
    let source = body.object.opt_str("source")?.unwrap_or("shop").trim();
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

/// `DELETE /customers/{id}`: erase everywhere. 202: the stores apply it as they sync; follow
/// it with `GET /customers/{id}/erasure`. Asking again answers the same.
pub async fn delete_customer(State(hq): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_customer(&id)?;
    let (known, gone) = hq
        .node
        .read(|r| (known(r.state(), &id), r.state().customer_erased(&id)));
    if !known {
        return Err(unknown_customer(&id));
    }
    if !gone {
        let key = id.to_string();
        hq.node
            .submit_with(
                vec![Payload::CustomerErase {
                    customer: id.clone(),
                }],
                move |tx, ops| {
                    let Some(op) = ops.first() else { return Ok(0) };
                    tx.execute(
                        "INSERT OR IGNORE INTO hq_erasures (customer, actor, seq, requested_ms)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![key, op.actor.as_str(), op.seq as i64, now_ms() as i64],
                    )
                },
            )
            .await?;
        tracing::info!(customer = %id, "customer erased at hq");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "complete": false})),
    )
        .into_response())
}

/// `GET /customers/{id}/erasure`: per store holding the customer, whether it applied the
/// erasure (its ack covers the erasure's place in its down-log).
pub async fn get_erasure(State(hq): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_customer(&id)?;
    let key = id.to_string();
    let erase_op: Option<(String, i64)> = hq
        .node
        .query(move |conn| {
            conn.query_row(
                "SELECT actor, seq FROM hq_erasures WHERE customer = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .await
        .map_err(ApiError::internal)?;
    let Some((actor, seq)) = erase_op else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_erasure",
            format!("no erasure was requested for customer {id}"),
        )
        .with("id", id.as_str()));
    };
    let stores = holders(&hq, &id).await?;
    let mut rows = Vec::new();
    for store in stores {
        let (name, actor) = (store.to_string(), actor.clone());
        let idx: Option<i64> = hq
            .node
            .query(move |conn| {
                conn.query_row(
                    "SELECT idx FROM downlog WHERE store = ?1 AND actor = ?2 AND seq = ?3",
                    params![name, actor, seq],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
            .map_err(ApiError::internal)?;
        let acked = hq.sync.down_acked(&store);
        let done = matches!((idx, acked), (Some(i), Some(a)) if a >= i.max(0) as u64);
        rows.push(json!({"store": store, "erased": done}));
    }
    let complete = rows.iter().all(|r| r["erased"] == json!(true));
    Ok(Json(json!({"id": id, "complete": complete, "stores": rows})).into_response())
}

#[derive(Debug, Deserialize)]
pub struct AbandonedQuery {
    idle_hours: Option<String>,
    channel: Option<String>,
}

/// Contacts per customer in the seven days before `now`.
async fn contacts_last_week(hq: &HqState, now: u64) -> Result<BTreeMap<String, u32>, ApiError> {
    let since = now.saturating_sub(WEEK_MS) as i64;
    hq.node
        .query(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT customer, COUNT(*) FROM hq_contacts WHERE at_ms > ?1 GROUP BY customer",
            )?;
            let rows = stmt.query_map(params![since], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?.clamp(0, 1_000_000) as u32,
                ))
            })?;
            rows.collect()
        })
        .await
        .map_err(ApiError::internal)
}

/// `GET /carts/abandoned?idle_hours=N[&channel=C]`: carts unchanged for N hours (default 24),
/// oldest first, each with the channels its customer may be contacted on right now.
pub async fn abandoned(State(hq): State<HqState>, Query(q): Query<AbandonedQuery>) -> ApiResult {
    let idle_hours = match q.idle_hours.as_deref() {
        None => u64::from(ABANDONED_HOURS_DEFAULT),
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|h| (1..=IDLE_HOURS_MAX).contains(h))
            .ok_or_else(|| {
                ApiError::invalid(
                    "idle_hours",
                    format!("idle_hours must be 1-{IDLE_HOURS_MAX}, got {s:?}"),
                )
            })?,
    };
    let only = q.channel.as_deref().map(parse_channel).transpose()?;
    let now = now_ms();
    let counts = contacts_last_week(&hq, now).await?;
    let policy = hq.settings.contact_policy;
    let rows: Vec<Value> = hq.node.read(|r| {
        let state = r.state();
        let empty = Customer::default();
        state
            .abandoned_carts(now, idle_hours * HOUR_MS)
            .into_iter()
            .filter(|(id, _)| !state.customer_erased(id))
            .filter_map(|(id, at)| {
                let customer = state.customers.get(&id).unwrap_or(&empty);
                let contacted = counts.get(id.as_str()).copied().unwrap_or(0);
                let channels: Vec<&str> = Channel::ALL
                    .into_iter()
                    .filter(|c| policy.check(customer, *c, contacted, now).is_ok())
                    .map(|c| c.as_str())
                    .collect();
                if only.is_some_and(|c| !channels.contains(&c.as_str())) {
                    return None;
                }
                let lines = state.carts.get(&id)?.lines();
                let total_cents: i64 = lines
                    .iter()
                    .map(|(sku, qty)| {
                        state.product(sku).map_or(0, |p| p.price_cents) * i64::from(*qty)
                    })
                    .sum();
                let lines: Vec<Value> = lines
                    .iter()
                    .map(|(sku, qty)| json!({"sku": sku, "qty": qty}))
                    .collect();
                Some(json!({
                    "customer": id, "idle_hours": now.saturating_sub(at.wall_ms()) / HOUR_MS,
                    "total_cents": total_cents, "lines": lines, "channels": channels,
                    "updated_at": at.wall_ms(),
                }))
            })
            .collect()
    });
    Ok(Json(Value::Array(rows)).into_response())
}

/// Longest campaign name.
const CAMPAIGN_LEN_MAX: usize = 200;

/// `POST /customers/{id}/contacts` with `{"channel", "campaign"}`: record a contact, refused
/// (409 with the reason) when the policy says no. The weekly count is checked and the contact
/// recorded in one transaction, so concurrent calls cannot pass the limit together.
pub async fn post_contact(
    State(hq): State<HqState>,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult {
    let id = parse_customer(&id)?;
    let channel = parse_channel(body.object.req_str("channel")?)?;
    let campaign = body.object.req_str("campaign")?.trim().to_string();
    if campaign.is_empty()
        || campaign.chars().count() > CAMPAIGN_LEN_MAX
        || campaign.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            "campaign",
            format!("campaign must be 1-{CAMPAIGN_LEN_MAX} printable characters"),
        ));
    }
    let customer = hq
        .node
        .read(|r| known(r.state(), &id).then(|| r.state().customers.get(&id).cloned()));
    let Some(customer) = customer else {
        return Err(unknown_customer(&id));
    };
    let customer = customer.unwrap_or_default();
    let policy = hq.settings.contact_policy;
    let key = id.to_string();
    let now = now_ms();
    let outcome = hq
        .node
        .write(move |tx| {
            let since = now.saturating_sub(WEEK_MS) as i64;
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) FROM hq_contacts WHERE customer = ?1 AND at_ms > ?2",
                params![key, since],
                |r| r.get(0),
            )?;
            let count = count.clamp(0, i64::from(u32::MAX)) as u32;
            if let Err(refusal) = policy.check(&customer, channel, count, now) {
                return Ok(Err(refusal));
            }
            tx.execute(
                "INSERT INTO hq_contacts (customer, channel, campaign, at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![key, channel.as_str(), campaign, now as i64],
            )?;
            Ok(Ok(now))
        })
        .await
        .map_err(ApiError::internal)?;
    match outcome {
        Ok(at) => {
            tracing::info!(customer = %id, channel = channel.as_str(), "contact recorded");
            Ok((
                StatusCode::CREATED,
                Json(json!({"customer": id, "channel": channel.as_str(), "at": at})),
            )
                .into_response())
        }
        Err(refusal) => Err(contact_refused(&id, channel, refusal)),
    }
}

fn contact_refused(id: &CustomerId, channel: Channel, refusal: Refusal) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        refusal.code(),
        format!(
            "cannot contact customer {id} on {}: {refusal}",
            channel.as_str()
        ),
    )
    .with("customer", id.as_str())
    .with("channel", channel.as_str())
}

#[cfg(test)]
mod tests;
