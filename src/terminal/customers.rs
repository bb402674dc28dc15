//! Customer lookup at the counter (phone, email, loyalty card, name) and their online cart
//! with what this store can sell now. The first lookup of a customer at a store issues a
//! `CustomerFollow`, so HQ keeps that store supplied with the customer's cart.
//!
//! A store holds only the customers it needs. When a phone, email or loyalty card matches no
//! one here, the search asks HQ (through `link::LinkStatusSource`) and waits up to `HQ_WAIT` for the
//! customers HQ found to arrive; names are searched only here. The answer stays the §11 JSON
//! list; the `X-Storenode-Lookup` header says where it came from: `local` (this store's
//! replica, HQ not needed), `hq` (HQ answered, possibly with no one), `local-only` (HQ was
//! needed but is unreachable) or `hq-timeout` (HQ did not answer in time).

use super::auth::Session;
use super::error::ApiError;
use super::link::Fetched;
use super::TerminalState;
use crate::domain::cart::is_abandoned;
use crate::domain::customer::exact_identifier;
use crate::domain::customer::Customer;
use crate::domain::op::Channel;
use crate::domain::state::SaleRecord;
use crate::domain::{CustomerId, Payload, State as DomainState};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Most customers one search returns.
const RESULTS_MAX: usize = 20;
/// Longest a search waits for HQ to answer and for the customers it found to arrive.
const HQ_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// Response header naming where a search's answer came from (see the module doc).
pub const LOOKUP_HEADER: &str = "x-storenode-lookup";

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn fold(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            other => other,
        })
        .collect()
}

fn matches(c: &Customer, q: &str) -> bool {
    let qd = digits(q);
    let only_digits = qd.len() == q.trim_start_matches('+').replace(' ', "").len();
    if only_digits && qd.len() >= 4 {
        let phone = c.phone().map(digits).unwrap_or_default();
        let card = c.loyalty_card().map(digits).unwrap_or_default();
        return phone.ends_with(&qd) || phone == qd || card == qd;
    }
    let fq = fold(q.trim());
    c.email()
        .is_some_and(|e| fold(e) == fq || (fq.contains('@') && fold(e).starts_with(&fq)))
        || c.name().is_some_and(|n| fold(n).contains(&fq))
}

fn cart_count(state: &TerminalState, id: &CustomerId) -> usize {
    state.read(|r| r.state().carts.get(id).map_or(0, |c| c.lines().len()))
}

/// Rows of the customers `pick` selects, and whether this store already follows each.
fn rows(
    state: &TerminalState,
    pick: impl Fn(&CustomerId, &Customer) -> bool,
) -> Vec<(CustomerId, Value, bool)> {
    let store = state.store().clone();
    state.read(|r| {
        let s = r.state();
        s.customers
            .iter()
            .filter(|(id, c)| !c.is_erased() && pick(id, c))
            .take(RESULTS_MAX)
            .map(|(id, c)| {
                let followed = s.follows.contains(&(store.clone(), id.clone()));
                let v = json!({
                    "id": id.as_str(),
                    "name": c.name(),
                    "email": c.email(),
                    "phone": c.phone(),
                    "loyalty_card": c.loyalty_card(),
                });
                (id.clone(), v, followed)
            })
            .collect()
    })
}

/// `GET /api/v1/customers?q=`.
pub async fn search(
    State(state): State<TerminalState>,
    _session: Session,
    Query(q): Query<SearchQuery>,
) -> Result<([(&'static str, &'static str); 1], Json<Vec<Value>>), ApiError> {
    let q = q.q.unwrap_or_default();
    let q = q.trim();
    if q.chars().count() < 3 || q.chars().count() > 100 {
        return Err(ApiError::unprocessable(
            "invalid_query",
            "search with 3-100 characters: phone, email, loyalty card or name",
        )
        .with("field", "q"));
    }
    let store = state.store().clone();
    let mut found = rows(&state, |_, c| matches(c, q));
    let mut source = "local";
    if found.is_empty() && exact_identifier(q).is_some() {
        let fetched = state.link().fetch_customers(state.node(), q, HQ_WAIT).await;
        let ids = match fetched {
            Fetched::LocalOnly => {
                source = "local-only";
                Vec::new()
            }
            Fetched::Hq(ids) => {
                source = "hq";
                ids
            }
            Fetched::HqTimeout(ids) => {
                source = "hq-timeout";
                ids
            }
        };
        if !ids.is_empty() {
            found = rows(&state, |id, _| ids.contains(id));
        }
    }
    let follow: Vec<Payload> = found
        .iter()
        .filter(|(_, _, followed)| !followed)
        .map(|(id, _, _)| Payload::CustomerFollow {
            customer: id.clone(),
            store: store.clone(),
        })
        .collect();
    if !follow.is_empty() {
        state.node().submit(follow).await?;
    }
    Ok((
        [(LOOKUP_HEADER, source)],
        Json(
            found
                .into_iter()
                .map(|(id, mut v, _)| {
                    if let Value::Object(m) = &mut v {
                        m.insert("cart_lines".into(), json!(cart_count(&state, &id)));
                    }
                    v
                })
                .collect(),
        ),
    ))
}

/// `GET /api/v1/customers/{id}/cart`: lines with `available_here` (what this store can sell).
pub async fn cart(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let unknown = || ApiError::not_found("unknown_customer", format!("no customer {id} here"));
    let cid = CustomerId::parse(&id).map_err(|_| unknown())?;
    let store = state.store().clone();
    let out = state.read(|r| {
        let s = r.state();
        let customer = s.customers.get(&cid).filter(|c| !c.is_erased())?;
        let cart = s.carts.get(&cid);
        let lines: Vec<Value> = cart
            .map(|c| c.lines())
            .unwrap_or_default()
            .iter()
            .map(|(sku, qty)| {
                let p = s.catalog.get(sku);
                let here = s.rights(&store, sku, &store.actor()).max(0);
                json!({
                    "sku": sku.as_str(),
                    "ean": p.map(|p| p.ean.as_str()),
                    "name": p.map(|p| p.name.as_str()),
                    "qty": qty,
                    "price_cents": p.map(|p| p.price_cents),
                    "available_here": here,
                })
            })
            .collect();
        let mut out = json!({
            "customer": cid.as_str(),
            "name": customer.name(),
            "lines": lines,
            "updated_at": cart.map(|c| c.updated().wall_ms()),
        });
        if let Some(obj) = out.as_object_mut() {
            obj.extend(super::profile::card_fields(s, &cid, crate::store::now_ms()));
        }
        Some(out)
    });
    out.map(Json).ok_or_else(unknown)
}

/// A cart untouched this long (and not empty) shows as abandoned on the customer card.
const ABANDONED_AFTER_MS: u64 = 24 * 3_600_000;

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::Whatsapp => "whatsapp",
    }
}

/// Purchases of `id` this store's replica holds, newest first: sales and collected or open
/// orders anywhere, and returns (HQ routes them to every store following the customer).
/// `evicted`: the customer's sales and orders that left memory (`store::history`,
/// `order_history`); one back in memory since is counted once.
fn history(s: &DomainState, id: &CustomerId, evicted: &Evicted) -> Vec<Value> {
    let mut rows: Vec<(u64, Value)> = Vec::new();
    let gone = evicted.0.iter().filter(|x| !s.sales.contains_key(&x.id));
    for sale in s
        .sales
        .values()
        .filter(|x| x.customer.as_ref() == Some(id))
        .chain(gone)
    {
        let at = sale.at.wall_ms();
        rows.push((
            at,
            json!({"kind": "sale", "id": sale.id.as_str(), "store": sale.store.as_str(),
            "at": at, "total_cents": sale.total_cents()}),
        ));
    }
    let gone = evicted.1.iter().filter(|x| !s.orders.contains_key(&x.id));
    for o in s.orders.values().filter(|o| &o.customer == id).chain(gone) {
        let total: i64 = o
            .lines
            .iter()
            .map(|(sku, l)| s.product(sku).map_or(0, |p| p.price_cents) * i64::from(l.qty))
            .sum();
        rows.push((
            o.placed_at_ms,
            json!({"kind": "order", "id": o.id.as_str(),
            "store": o.store.as_str(), "at": o.placed_at_ms, "total_cents": total,
            "status": o.status.as_str()}),
        ));
    }
    for r in s
        .returns
        .returns
        .values()
        .filter(|r| r.customer.as_ref() == Some(id))
    {
        let at = r.at.wall_ms();
        rows.push((
            at,
            json!({"kind": "return", "id": r.id.as_str(), "store": r.store.as_str(),
            "at": at, "total_cents": -r.refund_cents(), "sale": r.sale.as_str(),
            "verified": r.verified}),
        ));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    rows.into_iter().map(|(_, v)| v).collect()
}

/// The customer's sales and orders that left memory (`store::history`, `order_history`).
type Evicted = (Vec<SaleRecord>, Vec<crate::domain::order::Order>);

/// The §17 customer card: profile, consent per channel, cart, `abandoned_since`, history.
fn card(s: &DomainState, id: &CustomerId, now: u64, evicted: &Evicted) -> Option<Value> {
    let c = s.customers.get(id).filter(|c| !c.is_erased())?;
    let consent: serde_json::Map<String, Value> = [Channel::Email, Channel::Sms, Channel::Whatsapp]
        .into_iter()
        .filter_map(|ch| {
            let k = c.consent(ch)?;
            Some((
                channel_name(ch).to_string(),
                json!({"granted": k.granted, "source": k.source, "at": k.at_ms}),
            ))
        })
        .collect();
    let cart = s.carts.get(id);
    let lines: Vec<Value> = cart
        .map(|c| c.lines())
        .unwrap_or_default()
        .iter()
        .map(|(sku, qty)| {
            let p = s.catalog.get(sku);
            json!({"sku": sku.as_str(), "qty": qty, "name": p.map(|p| p.name.as_str()),
                "price_cents": p.map(|p| p.price_cents)})
        })
        .collect();
    let mut v = json!({
        "id": id.as_str(), "name": c.name(), "email": c.email(), "phone": c.phone(),
        "loyalty_card": c.loyalty_card(), "consent": consent,
        "cart": {"lines": lines, "updated_at": cart.map(|c| c.updated().wall_ms())},
        "history": history(s, id, evicted),
    });
    let abandoned = cart.filter(|c| is_abandoned(c, now, ABANDONED_AFTER_MS));
    if let (Some(cart), Value::Object(m)) = (abandoned, &mut v) {
        m.insert("abandoned_since".into(), json!(cart.updated().wall_ms()));
    }
    Some(v)
}

/// `GET /api/v1/customers/{id}`: the customer card. A customer this store does not follow yet
/// is followed now, and HQ back-fills profile, cart and purchase history (at most `HQ_WAIT`).
pub async fn show(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<([(&'static str, &'static str); 1], Json<Value>), ApiError> {
    let unknown = || ApiError::not_found("unknown_customer", format!("no customer {id}"));
    let cid = CustomerId::parse(&id).map_err(|_| unknown())?;
    let store = state.store().clone();
    let followed = state.read(|r| r.state().follows.contains(&(store.clone(), cid.clone())));
    let mut source = "local";
    if !followed {
        source = match state.link().link().online {
            false => "local-only",
            true => {
                let mut events = state.node().subscribe();
                let follow = Payload::CustomerFollow {
                    customer: cid.clone(),
                    store: store.clone(),
                };
                state.node().submit(vec![follow]).await?;
                let arrived = wait_for(&state, &cid, &mut events).await;
                if arrived {
                    "hq"
                } else {
                    "hq-timeout"
                }
            }
        };
    }
    let now = crate::store::now_ms();
    let evictions = state.read(|r| r.state().evictions());
    let of = cid.clone();
    let evicted = state
        .node()
        .query(move |c| {
            Ok((
                crate::store::history::sales_of_customer(c, &of, evictions)?,
                crate::store::order_history::orders_of_customer(c, &of, evictions)?,
            ))
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let v = state.read(|r| card(r.state(), &cid, now, &evicted));
    v.map(|v| ([(LOOKUP_HEADER, source)], Json(v)))
        .ok_or_else(unknown)
}

/// Wait (at most `HQ_WAIT`, woken by commits) for the customer's profile to arrive from HQ.
async fn wait_for(
    state: &TerminalState,
    id: &CustomerId,
    events: &mut tokio::sync::broadcast::Receiver<crate::store::NodeEvent>,
) -> bool {
    let deadline = tokio::time::Instant::now() + HQ_WAIT;
    loop {
        if state.read(|r| r.state().customers.contains_key(id)) {
            return true;
        }
        tokio::select! {
            ev = events.recv() => if let Err(tokio::sync::broadcast::error::RecvError::Closed) = ev {
                return false;
            },
            _ = tokio::time::sleep_until(deadline) => return false,
        }
    }
}
