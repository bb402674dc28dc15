//! Handlers of the HQ API (DESIGN.md section 11, HQ table). Each parses its input at the edge,
//! turns it into payloads, submits them, and renders the merged state back as JSON.

use super::body::{Fields, JsonBody};
use super::error::ApiError;
use super::HqState;
use crate::domain::op::{CancelKind, OrderLine, ProfilePatch};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::pickup::{qr_payload, PickupCode};
use crate::domain::validate::{LINES_MAX, PRICE_CENTS_MAX, QTY_MAX};
use crate::domain::{CustomerId, Ean13, OrderId, Payload, Sku, StoreId};
use crate::store::{Node, SubmitError};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};

type ApiResult = Result<Response, ApiError>;

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> ApiError {
        match e {
            SubmitError::Domain(d) => d.into(),
            SubmitError::Store(s) => ApiError::store(s),
        }
    }
}

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

pub async fn put_catalog(
    State(state): State<HqState>,
    Path(sku): Path<String>,
    body: JsonBody,
) -> ApiResult {
    let sku = parse_sku(&sku)?;
    let b = &body.object;
    let name = b.req_str("name")?.trim().to_string();
    let ean =
        Ean13::parse(b.req_str("ean")?).map_err(|e| ApiError::invalid("ean", e.to_string()))?;
    let price_cents = b
        .req_i64("price_cents")
        .map_err(|e| ApiError::invalid("price", e.message))?;
    if !(0..=PRICE_CENTS_MAX).contains(&price_cents) {
        return Err(ApiError::invalid(
            "price",
            format!("price_cents must be 0-{PRICE_CENTS_MAX}, got {price_cents}"),
        ));
    }
    let vat_bp = b.req_i64("vat_bp")?;
    let vat_bp = u32::try_from(vat_bp)
        .ok()
        .filter(|v| *v <= 10_000)
        .ok_or_else(|| {
            ApiError::invalid("vat_bp", format!("vat_bp must be 0-10000, got {vat_bp}"))
        })?;
    let taken = state.node.read(|r| {
        r.state()
            .catalog
            .by_ean(&ean)
            .filter(|p| p.sku != sku)
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
        ean: ean.clone(),
        name: name.clone(),
        price_cents,
        vat_bp,
    };
    state.node.submit(vec![payload]).await?;
    Ok(Json(json!({
        "sku": sku, "ean": ean, "name": name, "price_cents": price_cents, "vat_bp": vat_bp,
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

fn parse_customer(s: &str) -> Result<CustomerId, ApiError> {
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

/// `lines: [{"sku", "qty"}]` with each sku in the catalog; `allow_zero` for carts (0 removes).
pub(super) fn parse_lines(
    state: &HqState,
    b: &serde_json::Map<String, Value>,
    allow_zero: bool,
) -> Result<Vec<(Sku, u32)>, ApiError> {
    let raw = b.req_array("lines")?;
    if raw.len() > LINES_MAX || (!allow_zero && raw.is_empty()) {
        return Err(ApiError::invalid(
            "lines",
            format!("lines must hold 1-{LINES_MAX} entries, got {}", raw.len()),
        ));
    }
    let mut out: Vec<(Sku, u32)> = Vec::new();
    for line in raw {
        let obj = line
            .as_object()
            .ok_or_else(|| ApiError::invalid("lines", "each line is an object {sku, qty}"))?;
        let sku = parse_sku(obj.req_str("sku")?)?;
        let qty = obj
            .req_i64("qty")
            .map_err(|e| ApiError::invalid("qty", e.message))?;
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
    body: JsonBody,
) -> ApiResult {
    let customer = parse_customer(&customer)?;
    let wanted: BTreeMap<Sku, u32> = parse_lines(&state, &body.object, true)?
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

fn parse_order(
    state: &HqState,
    b: &serde_json::Map<String, Value>,
) -> Result<OrderRequest, ApiError> {
    let store = known_store(state, b.req_str("store")?)?;
    let c = match b.get("customer") {
        Some(Value::Object(c)) => c,
        _ => {
            return Err(ApiError::invalid(
                "customer",
                "customer must be an object with an id",
            ))
        }
    };
    let customer = parse_customer(c.req_str("id")?)?;
    let mut patch = ProfilePatch::default();
    for (key, slot) in [
        ("name", &mut patch.name),
        ("email", &mut patch.email),
        ("phone", &mut patch.phone),
    ] {
        if let Some(v) = c.opt_str(key)? {
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
    let lines = parse_lines(state, b, false)?
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
    body: JsonBody,
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
    let hash = hex::encode(Sha256::digest(body.canonical.as_bytes()));
    if let Some(found) = remembered(&state.node, &key).await? {
        return replay(&hash, found);
    }
    let req = parse_order(&state, &body.object)?;
    let id = new_order_id();
    let order_id = OrderId::parse(&id).map_err(ApiError::internal)?;
    let pickup = PickupCode::from_random(rand::thread_rng().gen());
    let qr = qr_payload(&id, &pickup, &state.settings.qr_key);
    let code = pickup.as_str().to_string();
    let answer = json!({
        "id": id, "status": "placed", "pickup_code": code, "qr": qr, "store": req.store,
        "customer": req.customer,
        "lines": req.lines.iter().map(|l| json!({"sku": l.sku, "qty": l.qty})).collect::<Vec<_>>(),
    });
    let mut payloads = Vec::new();
    if let Some(patch) = req.patch {
        payloads.push(Payload::CustomerUpdate {
            customer: req.customer.clone(),
            patch,
        });
    }
    payloads.push(Payload::OrderPlace {
        order_id,
        store: req.store,
        customer: req.customer,
        lines: req.lines,
        pickup_code: code,
        placed_at_ms: crate::store::now_ms(),
    });
    let record = (key.clone(), hash.clone(), answer.to_string(), id);
    let result = state
        .node
        .submit_with(payloads, move |tx, _ops| {
            let (key, hash, response, id) = record;
            tx.execute(
                "INSERT INTO hq_idempotency (key, request_hash, status, response, order_id, created_ms)
                 VALUES (?1, ?2, 201, ?3, ?4, ?5)",
                params![key, hash, response, id, crate::store::now_ms() as i64],
            )
        })
        .await;
    match result {
        Ok(_) => Ok((StatusCode::CREATED, Json(answer)).into_response()),
        Err(SubmitError::Store(e)) => {
            // A concurrent request with the same key won the insert: answer as it was answered.
            match remembered(&state.node, &key).await? {
                Some(found) => replay(&hash, found),
                None => Err(ApiError::store(e)),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn order_json(order: &Order) -> Value {
    let lines: Vec<Value> = order
        .lines
        .iter()
        .map(|(sku, l)| json!({"sku": sku, "qty": l.qty, "picked": l.picked}))
        .collect();
    json!({
        "id": order.id, "store": order.store, "customer": order.customer,
        "status": order.status.as_str(), "lines": lines, "pickup_code": order.pickup_code,
        "placed_at_ms": order.placed_at_ms, "conflict": order.conflict(),
    })
}

fn find_order(state: &HqState, id: &str) -> Result<(OrderId, Order), ApiError> {
    let order_id = OrderId::parse(id).map_err(|_| ApiError::unknown_order(id))?;
    state
        .node
        .read(|r| r.state().orders.get(&order_id).cloned())
        .map(|o| (order_id, o))
        .ok_or_else(|| ApiError::unknown_order(id))
}

pub async fn get_order(State(state): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let (_, order) = find_order(&state, &id)?;
    Ok(Json(order_json(&order)).into_response())
}

pub async fn cancel_order(State(state): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let (order_id, order) = find_order(&state, &id)?;
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
    let (_, order) = find_order(&state, &id)?;
    Ok(Json(order_json(&order)).into_response())
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

pub async fn demo_link(
    State(state): State<HqState>,
    Path(store): Path<String>,
    body: JsonBody,
) -> ApiResult {
    let Some(links) = state.links.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "the link switch exists only in the demo",
        ));
    };
    let store = known_store(&state, &store)?;
    let online = match body.object.get("online") {
        Some(Value::Bool(b)) => *b,
        _ => return Err(ApiError::invalid("online", "online must be true or false")),
    };
    if !links.set_link(&store, online) {
        return Err(ApiError::unknown_store(store.as_str()));
    }
    Ok(Json(json!({"store": store, "online": online})).into_response())
}

pub async fn metrics(State(state): State<HqState>) -> Response {
    let (ops, orders) = state
        .node
        .read(|r| (r.version().total(), r.state().orders.len()));
    let queue = super::webhook::queue_depth(&state.node).await.unwrap_or(0);
    let mut out = String::new();
    out.push_str("# HELP storenode_ops_applied Ops in this replica's log.\n# TYPE storenode_ops_applied gauge\n");
    out.push_str(&format!("storenode_ops_applied{{role=\"hq\"}} {ops}\n"));
    out.push_str("# TYPE storenode_orders gauge\n");
    out.push_str(&format!("storenode_orders{{role=\"hq\"}} {orders}\n"));
    out.push_str("# HELP storenode_webhook_queue Webhook events not yet delivered.\n# TYPE storenode_webhook_queue gauge\n");
    out.push_str(&format!("storenode_webhook_queue {queue}\n"));
    out.push_str("# TYPE storenode_store_online gauge\n# TYPE storenode_store_outbox gauge\n# TYPE storenode_store_lag_ops gauge\n# TYPE storenode_store_last_contact_ms gauge\n");
    for store in &state.settings.stores {
        let link = state.sync.link(store);
        out.push_str(&format!(
            "storenode_store_online{{store=\"{store}\"}} {}\nstorenode_store_outbox{{store=\"{store}\"}} {}\nstorenode_store_lag_ops{{store=\"{store}\"}} {}\n",
            u8::from(link.online), link.outbox, link.lag_ops
        ));
        if let Some(ms) = link.last_seen_ms {
            out.push_str(&format!(
                "storenode_store_last_contact_ms{{store=\"{store}\"}} {ms}\n"
            ));
        }
    }
    out.push_str("# HELP storenode_http_errors_total HTTP error answers by code.\n# TYPE storenode_http_errors_total counter\n");
    for (code, n) in state.http_errors() {
        out.push_str(&format!(
            "storenode_http_errors_total{{code=\"{code}\"}} {n}\n"
        ));
    }
    out.push_str(&super::journal::render_metrics(&state));
    out.push_str(&state.sync.render_metrics());
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}
