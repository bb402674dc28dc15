//! Orders of the online shop: `POST /orders` (idempotent by `Idempotency-Key`), `GET` and
//! cancel. A 201 means the order's ops are committed; a replayed key answers what it answered.

use super::cart::{parse_customer, parse_lines, LineBody};
use super::{known_store, ApiResult};
use crate::domain::op::{CancelKind, OrderLine, ProfilePatch};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::pickup::{qr_payload, PickupCode};
use crate::domain::ship_to_store::{self, awaiting_transfer, plan_order, LEAD_MS_DEFAULT};
use crate::domain::{CustomerId, OrderId, Payload, StoreId};
use crate::hq::body::JsonBody;
use crate::hq::error::ApiError;
use crate::hq::HqState;
use crate::store::{Node, SubmitError};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use rand::Rng;
use rusqlite::{params, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// `O-` and ten characters of Crockford base32: about 50 bits, collision-free in practice.
fn new_order_id() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::thread_rng();
    let tail: String = (0..10)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..32)]))
        .collect();
    format!("O-{tail}")
}

/// Longest Idempotency-Key accepted.
const IDEMPOTENCY_KEY_LEN_MAX: usize = 200;

struct OrderRequest {
    store: StoreId,
    customer: CustomerId,
    patch: Option<ProfilePatch>,
    lines: Vec<OrderLine>,
}

/// `POST /orders`.
#[derive(Debug, Deserialize)]
pub struct OrderBody {
    pub store: String,
    pub customer: OrderCustomer,
    pub lines: Vec<LineBody>,
}

/// The customer of an order: an id, and optionally the profile fields to record with it.
#[derive(Debug, Deserialize)]
pub struct OrderCustomer {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

fn parse_order(state: &HqState, b: &OrderBody) -> Result<OrderRequest, ApiError> {
    let store = known_store(state, &b.store)?;
    let c = &b.customer;
    let customer = parse_customer(&c.id)?;
    let mut patch = ProfilePatch::default();
    for (key, value, slot) in [
        ("name", &c.name, &mut patch.name),
        ("email", &c.email, &mut patch.email),
        ("phone", &c.phone, &mut patch.phone),
    ] {
        if let Some(v) = value {
            let v = v.trim();
            if v.is_empty() || v.chars().count() > 200 || v.chars().any(char::is_control) {
                return Err(ApiError::invalid(
                    key,
                    format!("{key} must be 1-200 printable characters"),
                ));
            }
            if key == "email" && !v.contains('@') {
                return Err(ApiError::invalid(
                    "email",
                    format!("not an email address: {v:?}"),
                ));
            }
            *slot = Some(v.to_string());
        }
    }
    let has_patch = patch.name.is_some() || patch.email.is_some() || patch.phone.is_some();
    let lines = parse_lines(state, &b.lines, false)?
        .into_iter()
        .map(|(sku, qty)| OrderLine { sku, qty })
        .collect();
    Ok(OrderRequest {
        store,
        customer,
        patch: has_patch.then_some(patch),
        lines,
    })
}

/// The first answer given for an Idempotency-Key, if any: (request hash, status, body).
async fn remembered(node: &Node, key: &str) -> Result<Option<(String, u16, String)>, ApiError> {
    let key = key.to_string();
    node.query(move |conn| {
        conn.query_row(
            "SELECT request_hash, status, response FROM hq_idempotency WHERE key = ?1",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
    })
    .await
    .map_err(ApiError::internal)
}

fn replay(hash: &str, found: (String, u16, String)) -> ApiResult {
    let (first_hash, status, body) = found;
    if first_hash != hash {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different body",
        ));
    }
    let value: Value = serde_json::from_str(&body).map_err(ApiError::internal)?;
    let status = StatusCode::from_u16(status).map_err(ApiError::internal)?;
    Ok((status, Json(value)).into_response())
}

pub async fn post_order(
    State(state): State<HqState>,
    headers: HeaderMap,
    body: Result<JsonBody<OrderBody>, ApiError>,
) -> ApiResult {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_LEN_MAX)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_required",
                format!("send an Idempotency-Key header of 1-{IDEMPOTENCY_KEY_LEN_MAX} characters"),
            )
        })?
        .to_string();
    let body = body?;
    let hash = hex::encode(Sha256::digest(body.canonical.as_bytes()));
    if let Some(found) = remembered(&state.node, &key).await? {
        return replay(&hash, found);
    }
    let (key_again, hash_again) = (key.clone(), hash.clone());
    let req = parse_order(&state, &body.value)?;
    let id = new_order_id();
    let order_id = OrderId::parse(&id).map_err(ApiError::internal)?;
    let pickup = PickupCode::from_random(rand::thread_rng().gen());
    let qr = qr_payload(&id, &pickup, &state.settings.qr_key);
    let request = ship_to_store::OrderRequest {
        order_id,
        store: req.store,
        customer: req.customer.clone(),
        lines: req.lines,
        pickup_code: pickup.as_str().to_string(),
        transfer: crate::terminal::motion::new_motion_id("T"),
    };
    let patch = req.patch.map(|patch| Payload::CustomerUpdate {
        customer: req.customer,
        patch,
    });
    // Without ship-to-store, no other store is a source: the pickup store's refusal stands.
    let lead_ms = state.settings.ship_to_store_lead_ms;
    let sources = match lead_ms {
        Some(_) => state.settings.stores.clone(),
        None => Vec::new(),
    };
    // Decided in the writer, on the replica as this commit has it: the rights HQ checks
    // cannot be spent by another request in between.
    let build: crate::store::BuildPayloads = Box::new(move |replica, now_ms| {
        let order = plan_order(
            replica.state(),
            replica.actor(),
            &sources,
            request,
            now_ms,
            lead_ms.unwrap_or(LEAD_MS_DEFAULT),
        )?;
        Ok(patch.into_iter().chain(std::iter::once(order)).collect())
    });
    let result = state
        .node
        .submit_built(build, move |tx, ops| {
            let answer = ops
                .iter()
                .find_map(|op| placed_json(&op.payload, &qr))
                .unwrap_or(Value::Null);
            tx.execute(
                "INSERT INTO hq_idempotency (key, request_hash, status, response, order_id, created_ms)
                 VALUES (?1, ?2, 201, ?3, ?4, ?5)",
                params![key, hash, answer.to_string(), id, crate::store::now_ms() as i64],
            )?;
            Ok(answer)
        })
        .await;
    match result {
        Ok((_, answer)) => Ok((StatusCode::CREATED, Json(answer)).into_response()),
        Err(SubmitError::Store(e)) => {
            // A concurrent request with the same key won the insert: answer as it was answered.
            match remembered(&state.node, &key_again).await? {
                Some(found) => replay(&hash_again, found),
                None => Err(ApiError::store(e)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The 201 answer to `POST /orders` for the order op that was committed. A ship-to-store
/// order adds where it ships from and the date the customer may collect it.
fn placed_json(payload: &Payload, qr: &str) -> Option<Value> {
    let (id, store, customer, lines, code) = match payload {
        Payload::OrderPlace {
            order_id,
            store,
            customer,
            lines,
            pickup_code,
            ..
        }
        | Payload::OrderShipToStore {
            order_id,
            store,
            customer,
            lines,
            pickup_code,
            ..
        } => (order_id, store, customer, lines, pickup_code),
        _ => return None,
    };
    let mut answer = json!({
        "id": id, "status": "placed", "pickup_code": code, "qr": qr, "store": store,
        "customer": customer, "fulfilment": "in_store",
        "lines": lines.iter().map(|l| json!({"sku": l.sku, "qty": l.qty})).collect::<Vec<_>>(),
    });
    if let (
        Payload::OrderShipToStore {
            from,
            transfer,
            ready_by_ms,
            ..
        },
        Value::Object(o),
    ) = (payload, &mut answer)
    {
        o.insert("fulfilment".into(), json!("ship_to_store"));
        o.insert("ship_from".into(), json!(from));
        o.insert("transfer".into(), json!(transfer.as_str()));
        o.insert("ready_by_ms".into(), json!(ready_by_ms));
        o.insert("ready_by".into(), json!(date_utc(*ready_by_ms)));
    }
    Some(answer)
}

/// `YYYY-MM-DD` (UTC) of a moment in milliseconds.
pub(crate) fn date_utc(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .strftime("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_default()
}

fn order_json(order: &Order) -> Value {
    let lines: Vec<Value> = order
        .lines
        .iter()
        .map(|(sku, l)| {
            let mut line = json!({"sku": sku, "qty": l.qty, "picked": l.picked});
            if let (Some(_), Value::Object(o)) = (&order.ship, &mut line) {
                o.insert("arrived".into(), json!(order.units_here(sku)));
            }
            line
        })
        .collect();
    let mut out = json!({
        "id": order.id, "store": order.store, "customer": order.customer,
        "status": order.status.as_str(), "lines": lines, "pickup_code": order.pickup_code,
        "placed_at_ms": order.placed_at_ms, "conflict": order.conflict(),
        "fulfilment": if order.ship.is_some() { "ship_to_store" } else { "in_store" },
    });
    if let (Some(ship), Value::Object(o)) = (&order.ship, &mut out) {
        o.insert("ship_from".into(), json!(ship.store));
        o.insert("transfer".into(), json!(ship.transfer.as_str()));
        o.insert("ready_by_ms".into(), json!(ship.ready_by_ms));
        o.insert("ready_by".into(), json!(date_utc(ship.ready_by_ms)));
        o.insert("awaiting_transfer".into(), json!(awaiting_transfer(order)));
    }
    out
}

/// The order `id`: in memory, or finished and moved to `order_history`.
async fn find_order(state: &HqState, id: &str) -> Result<(OrderId, Order), ApiError> {
    let order_id = OrderId::parse(id).map_err(|_| ApiError::unknown_order(id))?;
    let (held, evictions) = state.node.read(|r| {
        let s = r.state();
        (s.orders.get(&order_id).cloned(), s.evictions())
    });
    let order = match held {
        Some(o) => Some(o),
        None => {
            let of = order_id.clone();
            state
                .node
                .query(move |c| crate::store::order_history::load_order(c, &of, evictions))
                .await?
        }
    };
    order
        .map(|o| (order_id, o))
        .ok_or_else(|| ApiError::unknown_order(id))
}

pub async fn get_order(State(state): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let (_, order) = find_order(&state, &id).await?;
    Ok(Json(order_json(&order)).into_response())
}

pub async fn cancel_order(State(state): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let (order_id, order) = find_order(&state, &id).await?;
    match order.status {
        OrderStatus::Cancelled => return Ok(Json(order_json(&order)).into_response()),
        OrderStatus::HandedOver => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_handed_over",
                format!("order {id} was already handed over"),
            ))
        }
        _ => {}
    }
    state
        .node
        .submit(vec![Payload::OrderCancel {
            order_id,
            store: order.store.clone(),
            kind: CancelKind::Cancelled,
        }])
        .await?;
    let (_, order) = find_order(&state, &id).await?;
    Ok(Json(order_json(&order)).into_response())
}
