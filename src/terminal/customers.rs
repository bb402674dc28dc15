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
use crate::domain::customer::exact_identifier;
use crate::domain::customer::Customer;
use crate::domain::{CustomerId, Payload};
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
