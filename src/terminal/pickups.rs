//! Pickup orders at the store: the queue, scan-guided picking, ready (bag label), and the
//! counter handover by pickup code or signed QR (receipt).
//!
//! Each step reads the order, checks it, and submits under `order_steps` so two scans of the
//! same line never race to the same picked count.

use super::auth::Session;
use super::body::{FieldCodes, Typed};
use super::error::ApiError;
use super::print::{PrintJob, ReceiptLine};
use super::qr;
use super::stock::resolve;
use super::TerminalState;
use crate::domain::op::Advance;
use crate::domain::order::{Order, OrderStatus};
use crate::domain::{OrderId, Payload};
use crate::store::{now_ms, order_history};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

fn order_json(state: &TerminalState, o: &Order, now: u64) -> Value {
    let overdue_ms = state.config().overdue_after_ms;
    state.read(|r| {
        let s = r.state();
        let customer = s.customers.get(&o.customer);
        let lines: Vec<Value> = o
            .lines
            .iter()
            .map(|(sku, l)| {
                let p = s.catalog.get(sku);
                json!({
                    "sku": sku.as_str(),
                    "ean": p.map(|p| p.ean.as_str()),
                    "name": p.map(|p| p.name.as_str()),
                    "qty": l.qty,
                    "picked": l.picked,
                    "here": o.units_here(sku),
                })
            })
            .collect();
        json!({
            "id": o.id.as_str(),
            "status": o.status.as_str(),
            "store": o.store.as_str(),
            "customer": {
                "id": o.customer.as_str(),
                "name": customer.and_then(|c| c.name()),
                "phone": customer.and_then(|c| c.phone()),
            },
            "lines": lines,
            "items": o.lines.values().map(|l| l.qty).sum::<u32>(),
            "picked": o.lines.values().map(|l| l.picked).sum::<u32>(),
            "placed_at": o.placed_at_ms,
            "overdue": o.is_overdue(now, overdue_ms),
            "conflict": o.conflict(),
            // Ship-to-store: units come by transfer; picking waits for them.
            "transfer": o.ship.as_ref().map(|s| s.transfer.as_str()),
            "ready_by": o.ship.as_ref().map(|s| s.ready_by_ms),
            "awaiting_transfer": crate::domain::ship_to_store::awaiting_transfer(o),
        })
    })
}

/// The order `id` of this store: in memory, or finished and moved to `order_history`.
async fn find(state: &TerminalState, id: &str) -> Result<Order, ApiError> {
    let store = state.store().clone();
    let id = OrderId::parse(id).map_err(|_| unknown(id))?;
    let (held, evictions) = state.read(|r| {
        let s = r.state();
        (s.orders.get(&id).cloned(), s.evictions())
    });
    let order = match held {
        Some(o) => Some(o),
        None => {
            let of = id.clone();
            state
                .node()
                .query(move |c| order_history::load_order(c, &of, evictions))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
        }
    };
    order
        .filter(|o| o.store == store)
        .ok_or_else(|| unknown(id.as_str()))
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(
        "unknown_order",
        format!("no pickup order {id} at this store"),
    )
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    /// A pickup code typed at the counter: only the order it opens (any status).
    code: Option<String>,
}

/// `GET /api/v1/pickups?status=placed|picking|ready|overdue|open|handed_over|cancelled|expired|all`.
pub async fn list(
    State(state): State<TerminalState>,
    _session: Session,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let wanted = q
        .status
        .unwrap_or_else(|| if q.code.is_some() { "all" } else { "open" }.to_string());
    let code = q.code.map(|c| c.trim().to_ascii_uppercase());
    let now = now_ms();
    let overdue_ms = state.config().overdue_after_ms;
    let store = state.store().clone();
    // The filter is not `Send`: it lives only in this block, not across the awaits below.
    let mut orders: Vec<Order> = {
        let filter: Box<dyn Fn(&Order) -> bool> = match wanted.as_str() {
            "open" => Box::new(|o: &Order| o.status.is_open()),
            "all" => Box::new(|_: &Order| true),
            "overdue" => Box::new(move |o: &Order| o.is_overdue(now, overdue_ms)),
            other => match OrderStatus::parse(other) {
                Some(s) => Box::new(move |o: &Order| o.status == s),
                None => {
                    return Err(ApiError::unprocessable(
                        "invalid_status",
                        format!("unknown status {other:?}"),
                    )
                    .with("field", "status"))
                }
            },
        };
        state.read(|r| {
            r.state()
                .orders
                .values()
                .filter(|o| o.store == store && filter(o))
                .filter(|o| {
                    code.as_ref()
                        .is_none_or(|c| code_matches(c, &o.pickup_code))
                })
                .cloned()
                .collect()
        })
    };
    if let Some(code) = code.filter(|_| wanted == "all") {
        // A code scanned at the counter may open a finished order that left memory.
        let evictions = state.read(|r| r.state().evictions());
        let at = store.clone();
        let evicted = state
            .node()
            .query(move |c| order_history::orders_with_code(c, &at, &code, evictions))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        for o in evicted {
            if !orders.iter().any(|held| held.id == o.id) {
                orders.push(o);
            }
        }
    }
    orders.sort_by_key(|o| o.placed_at_ms);
    Ok(Json(
        orders.iter().map(|o| order_json(&state, o, now)).collect(),
    ))
}

/// `GET /api/v1/pickups/{id}`.
pub async fn show(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let order = find(&state, &id).await?;
    Ok(Json(order_json(&state, &order, now_ms())))
}

fn closed(order: &Order) -> Option<ApiError> {
    let id = order.id.as_str();
    match order.status {
        OrderStatus::Cancelled => Some(ApiError::conflict(
            "order_cancelled",
            format!("order {id} was cancelled: do not hand it over"),
        )),
        OrderStatus::Expired => Some(ApiError::conflict(
            "order_expired",
            format!("order {id} expired: it was not collected in time"),
        )),
        OrderStatus::HandedOver => Some(ApiError::conflict(
            "already_handed_over",
            format!("order {id} was already handed over"),
        )),
        _ => None,
    }
}

/// `POST /api/v1/pickups/{id}/pick`.
#[derive(Debug, Deserialize)]
pub struct PickBody {
    pub scan: String,
}

impl FieldCodes for PickBody {
    fn code(_field: &str) -> &'static str {
        "invalid_scan"
    }
}

/// `POST /api/v1/pickups/{id}/pick` `{"scan"}`: one unit of the scanned item.
pub async fn pick(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
    body: Result<Typed<PickBody>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let scan = body?.0.scan;
    let scan = scan.as_str();
    let _guard = state.order_steps().lock().await;
    let order = find(&state, &id).await?;
    if let Some(e) = closed(&order) {
        return Err(e);
    }
    let product = match resolve(&state, scan) {
        Ok(p) => p,
        Err(e) if e.code == "unknown_sku" => {
            return Err(ApiError::unprocessable(
                "not_in_order",
                format!("{} is not an item of order {}", scan.trim(), order.id),
            )
            .with("scan", scan.trim()))
        }
        Err(e) => return Err(e),
    };
    let Some(line) = order.lines.get(&product.sku) else {
        return Err(ApiError::unprocessable(
            "not_in_order",
            format!(
                "{} ({}) is not in order {}",
                product.name, product.sku, order.id
            ),
        )
        .with("sku", product.sku.as_str()));
    };
    if line.picked >= line.qty || order.status == OrderStatus::Ready {
        return Err(ApiError::unprocessable(
            "already_picked",
            format!(
                "{} is already picked: {} of {}",
                product.name, line.picked, line.qty
            ),
        )
        .with("sku", product.sku.as_str()));
    }
    let mut payloads = Vec::new();
    if order.status == OrderStatus::Placed {
        payloads.push(Payload::OrderAdvance {
            order_id: order.id.clone(),
            store: order.store.clone(),
            to: Advance::Picking,
        });
    }
    payloads.push(Payload::OrderPick {
        order_id: order.id.clone(),
        store: order.store.clone(),
        sku: product.sku.clone(),
        picked: line.picked + 1,
    });
    state.node().submit(payloads).await?;
    let order = find(&state, &id).await?;
    let mut out = order_json(&state, &order, now_ms());
    if let Value::Object(m) = &mut out {
        m.insert(
            "last_pick".into(),
            json!({"sku": product.sku.as_str(), "name": product.name}),
        );
    }
    Ok(Json(out))
}

/// `POST /api/v1/pickups/{id}/ready`: every line picked; prints the bag label.
pub async fn ready(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let _guard = state.order_steps().lock().await;
    let order = find(&state, &id).await?;
    if let Some(e) = closed(&order) {
        return Err(e);
    }
    if order.status == OrderStatus::Ready {
        return Ok(Json(order_json(&state, &order, now_ms())));
    }
    if !order.fully_picked() {
        let missing: u32 = order
            .lines
            .values()
            .map(|l| l.qty - l.picked.min(l.qty))
            .sum();
        return Err(ApiError::conflict(
            "not_picked",
            format!("order {} still has {missing} items to pick", order.id),
        )
        .with("missing", missing));
    }
    let key = state.config().pickup_keys.first().map(|k| k.as_slice());
    let customer = state
        .read(|r| {
            r.state()
                .customers
                .get(&order.customer)
                .and_then(|c| c.name().map(str::to_string))
        })
        .unwrap_or_else(|| order.customer.to_string());
    let label = PrintJob::BagLabel {
        store: order.store.to_string(),
        order: order.id.to_string(),
        customer,
        pickup_code: order.pickup_code.clone(),
        qr: qr::payload(order.id.as_str(), &order.pickup_code, key),
        items: order.lines.values().map(|l| l.qty).sum(),
    };
    let ready = Payload::OrderAdvance {
        order_id: order.id.clone(),
        store: order.store.clone(),
        to: Advance::Ready,
    };
    state.submit_printing(vec![ready], vec![label]).await?;
    let order = find(&state, &id).await?;
    Ok(Json(order_json(&state, &order, now_ms())))
}

fn code_matches(given: &str, expected: &str) -> bool {
    let given = given.trim().to_ascii_uppercase();
    // Constant-time over the expected length: no early exit on the first wrong character.
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The body of `POST /api/v1/pickups/{id}/handover`: the typed pickup code or the scanned QR.
#[derive(Debug, Deserialize)]
pub struct HandoverBody {
    code: Option<String>,
    qr: Option<String>,
}

impl FieldCodes for HandoverBody {
    fn code(_field: &str) -> &'static str {
        "invalid_code"
    }
}

/// The code or signed QR in a handover body opens `order`, or a 422 says why not.
fn check_code(state: &TerminalState, order: &Order, body: &HandoverBody) -> Result<(), ApiError> {
    let wrong = || {
        ApiError::unprocessable(
            "wrong_code",
            format!("that code does not open order {}", order.id),
        )
    };
    let opens = match (body.code.as_deref(), body.qr.as_deref()) {
        (Some(code), _) => code_matches(code, &order.pickup_code),
        (None, Some(payload)) => {
            qr::verify(payload, &state.config().pickup_keys).is_some_and(|(qr_order, code)| {
                qr_order == order.id.as_str() && code_matches(&code, &order.pickup_code)
            })
        }
        (None, None) => {
            return Err(ApiError::unprocessable(
                "invalid_code",
                "send the pickup code or the scanned QR",
            )
            .with("field", "code"))
        }
    };
    if opens {
        Ok(())
    } else {
        Err(wrong())
    }
}

/// The receipt lines of an order, priced from the catalog.
fn receipt_lines(state: &TerminalState, order: &Order) -> Vec<ReceiptLine> {
    state.read(|r| {
        order
            .lines
            .iter()
            .map(|(sku, l)| {
                let p = r.state().catalog.get(sku);
                ReceiptLine {
                    sku: sku.to_string(),
                    name: p.map(|p| p.name.clone()).unwrap_or_else(|| sku.to_string()),
                    qty: l.qty,
                    unit_cents: p.map_or(0, |p| p.price_cents),
                    vat_bp: p.map_or(0, |p| p.vat_bp),
                }
            })
            .collect()
    })
}

/// `POST /api/v1/pickups/{id}/handover` `{"code"}` or `{"qr"}`: prints the receipt.
pub async fn handover(
    State(state): State<TerminalState>,
    session: Session,
    Path(id): Path<String>,
    Typed(body): Typed<HandoverBody>,
) -> Result<Json<Value>, ApiError> {
    let _guard = state.order_steps().lock().await;
    let order = find(&state, &id).await?;
    check_code(&state, &order, &body)?;
    if let Some(e) = closed(&order) {
        return Err(e);
    }
    if order.status != OrderStatus::Ready {
        return Err(ApiError::conflict(
            "not_ready",
            format!(
                "order {} is {}: pick it and mark it ready first",
                order.id,
                order.status.as_str()
            ),
        )
        .with("status", order.status.as_str()));
    }
    let lines = receipt_lines(&state, &order);
    let total_cents = lines.iter().map(|l| l.unit_cents * i64::from(l.qty)).sum();
    let receipt = PrintJob::Receipt {
        store: order.store.to_string(),
        reference: order.id.to_string(),
        staff: session.staff.clone(),
        lines,
        total_cents,
        tender: "pickup".into(),
        at_ms: now_ms(),
        fiscal: None,
    };
    let handover = Payload::OrderAdvance {
        order_id: order.id.clone(),
        store: order.store.clone(),
        to: Advance::HandedOver,
    };
    state.submit_printing(vec![handover], vec![receipt]).await?;
    let order = find(&state, &id).await?;
    Ok(Json(order_json(&state, &order, now_ms())))
}
