//! Contacting customers under the contact policy: the abandoned-cart list with the channels
//! each customer may be contacted on now, and `POST /customers/{id}/contacts`, refused with
//! the reason when consent, quiet hours or the weekly cap forbid it.

use super::{
    known, parse_channel, parse_customer, unknown_customer, ApiResult, ABANDONED_HOURS_DEFAULT,
    HOUR_MS, IDLE_HOURS_MAX,
};
use crate::domain::contact::{Refusal, WEEK_MS};
use crate::domain::customer::Customer;
use crate::domain::op::Channel;
use crate::domain::CustomerId;
use crate::hq::body::JsonBody;
use crate::hq::error::ApiError;
use crate::hq::HqState;
use crate::store::now_ms;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use rusqlite::params;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

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

/// `POST /customers/{id}/contacts`.
#[derive(Debug, Deserialize)]
pub struct ContactBody {
    pub channel: String,
    pub campaign: String,
}

/// `POST /customers/{id}/contacts` with `{"channel", "campaign"}`: record a contact, refused
/// (409 with the reason) when the policy says no. The weekly count is checked and the contact
/// recorded in one transaction, so concurrent calls cannot pass the limit together.
pub async fn post_contact(
    State(hq): State<HqState>,
    Path(id): Path<String>,
    body: Result<JsonBody<ContactBody>, ApiError>,
) -> ApiResult {
    let id = parse_customer(&id)?;
    let body = body?.value;
    let channel = parse_channel(&body.channel)?;
    let campaign = body.campaign.trim().to_string();
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
