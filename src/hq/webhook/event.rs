//! Which webhook events the merged state calls for (pure). Each event has a type, a `dedup`
//! key that makes it happen once (`order.ready:<order>`, `cart.abandoned:<customer>:<cart
//! version>`), and a body without personal data: customers appear by id only.

use crate::domain::order::{Order, OrderStatus};
use crate::domain::{CustomerId, State};
use serde_json::{json, Map, Value};

/// An event to queue: type, dedup key, and the fields of its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: &'static str,
    pub dedup: String,
    pub fields: Map<String, Value>,
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Events an order has called for so far: `order.ship_to_store` for an order shipped from
/// another store (with `ready_by`), `order.ready` once it was ready, then
/// `order.handed_over` or `order.cancelled` (an expiry is a cancellation with
/// `"reason": "expired"`).
pub fn order_events(order: &Order) -> Vec<Event> {
    let base = |status: &str| {
        let mut body = json!({
            "order": order.id, "store": order.store, "status": status,
            "pickup_code": order.pickup_code,
        });
        if let (Some(ship), Value::Object(o)) = (&order.ship, &mut body) {
            o.insert("ship_from".into(), json!(ship.store));
            o.insert("ready_by_ms".into(), json!(ship.ready_by_ms));
            o.insert(
                "ready_by".into(),
                json!(crate::hq::api::date_utc(ship.ready_by_ms)),
            );
        }
        body
    };
    let mut out = Vec::new();
    if order.ship.is_some() {
        // Ship-to-store: the shop tells the customer the later date at once.
        out.push(Event {
            kind: "order.ship_to_store",
            dedup: format!("order.ship_to_store:{}", order.id),
            fields: fields(base("placed")),
        });
    }
    if order.was_ready {
        out.push(Event {
            kind: "order.ready",
            dedup: format!("order.ready:{}", order.id),
            fields: fields(base("ready")),
        });
    }
    match order.status {
        OrderStatus::HandedOver => out.push(Event {
            kind: "order.handed_over",
            dedup: format!("order.handed_over:{}", order.id),
            fields: fields(base("handed_over")),
        }),
        OrderStatus::Cancelled | OrderStatus::Expired => {
            let mut f = fields(base("cancelled"));
            f.insert("reason".into(), json!(order.status.as_str()));
            out.push(Event {
                kind: "order.cancelled",
                dedup: format!("order.cancelled:{}", order.id),
                fields: f,
            });
        }
        _ => {}
    }
    out
}

/// `cart.abandoned` for every non-empty cart unchanged for `idle_ms`, once per cart change
/// (the dedup key carries the cart's version). Erased customers have no cart.
pub fn abandoned_cart_events(state: &State, now_ms: u64, idle_ms: u64) -> Vec<Event> {
    state
        .abandoned_carts(now_ms, idle_ms)
        .into_iter()
        .filter(|(customer, _)| !state.customer_erased(customer))
        .filter_map(|(customer, at)| {
            let body = cart_fields(state, &customer)?;
            Some(Event {
                kind: "cart.abandoned",
                dedup: format!(
                    "cart.abandoned:{customer}:{}.{}",
                    at.wall_ms(),
                    at.counter()
                ),
                fields: body,
            })
        })
        .collect()
}

fn cart_fields(state: &State, customer: &CustomerId) -> Option<Map<String, Value>> {
    let cart = state.carts.get(customer)?;
    let lines = cart.lines();
    let total_cents: i64 = lines
        .iter()
        .map(|(sku, qty)| state.product(sku).map_or(0, |p| p.price_cents) * i64::from(*qty))
        .sum();
    let lines: Vec<Value> = lines
        .iter()
        .map(|(sku, qty)| json!({"sku": sku, "qty": qty}))
        .collect();
    Some(fields(json!({
        "customer": customer, "lines": lines, "total_cents": total_cents,
        "updated_at": cart.updated().wall_ms(),
    })))
}
