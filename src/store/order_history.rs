//! Orders out of memory: finished orders that every replica holding them has acknowledged
//! leave the in-memory replica for `order_history` (its migration is listed in `schema.rs`),
//! and come back before an op that names them (`domain::history` has the calling protocol;
//! `store::history` does the same for sales and runs both passes).
//!
//! Invariants, as for sales: a row is committed before its order leaves memory; rows carry
//! the number of the eviction that wrote it (one count with `sale_history`), and rows numbered
//! above the replica's `State::evictions` are never read and are deleted by a rebuild. A
//! store's order is stable once no own op naming it waits for HQ's ack (the outbox is read
//! for that); at HQ every order is. Readers that show orders (pickup counter, order API,
//! customer card, webhooks) look in memory first, then here (`load_order`).

use super::history::{decode_body, encode_body};
use super::StoreError;
use crate::domain::history::orders_named;
use crate::domain::order::Order;
use crate::domain::{ActorId, CustomerId, OrderId, Payload, Replica, SaleId};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeMap, BTreeSet};

/// Layout of a row's `body`: this byte, then postcard over `Order`. Bump it when the record
/// changes shape.
pub const ORDER_BODY_FORMAT: u8 = 1;

/// The newest finished orders stay in memory up to this many (a few hundred KiB): the pickup
/// counter and the order API find them without a read; older ones are read from
/// `order_history`. Open orders always stay.
pub const ORDERS_KEPT_IN_MEMORY: usize = 256;

/// Most own ops still waiting for HQ's ack that a pass reads to learn which orders they name;
/// with a longer outbox (a store offline for long) no order of this store leaves memory.
const UNACKED_SCAN_MAX: usize = 20_000;

/// A row's body as its order; one that does not decode is an error naming the order.
fn decoded(order: &str, body: &[u8]) -> rusqlite::Result<Order> {
    decode_body(ORDER_BODY_FORMAT, body).map_err(|detail| {
        let e = StoreError::History {
            record: order.to_string(),
            detail,
        };
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, e.into())
    })
}

/// The evicted order `order`, if this replica (having made `evictions` evictions) evicted it.
pub fn load_order(
    conn: &Connection,
    order: &OrderId,
    evictions: u64,
) -> rusqlite::Result<Option<Order>> {
    let body: Option<Vec<u8>> = conn
        .prepare_cached("SELECT body FROM order_history WHERE id = ?1 AND eviction <= ?2")?
        .query_row(params![order.as_str(), evictions as i64], |r| r.get(0))
        .optional()?;
    body.map(|b| decoded(order.as_str(), &b)).transpose()
}

/// Put back into `replica` every evicted order `payload` names, before it is prepared or
/// applied.
pub fn recall(
    conn: &Connection,
    replica: &mut Replica,
    payload: &Payload,
) -> Result<(), StoreError> {
    let named = orders_named(replica.state(), payload);
    recall_orders(conn, replica, &named)
}

/// `recall` for the orders `orders`: those in memory, and those never evicted here, are left
/// alone.
pub fn recall_orders<'a>(
    conn: &Connection,
    replica: &mut Replica,
    orders: impl IntoIterator<Item = &'a OrderId>,
) -> Result<(), StoreError> {
    for order in orders {
        if replica.state().orders.contains_key(order) {
            continue;
        }
        if let Some(record) = load_order(conn, order, replica.state().evictions())? {
            replica.rehydrate_order(record);
        }
    }
    Ok(())
}

/// The evicted orders of `customer`, oldest first (the customer card reads these beside the
/// orders in memory). A row that does not decode is an error naming the order.
pub fn orders_of_customer(
    conn: &Connection,
    customer: &CustomerId,
    evictions: u64,
) -> rusqlite::Result<Vec<Order>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, body FROM order_history WHERE customer = ?1 AND eviction <= ?2
         ORDER BY placed_ms",
    )?;
    let rows = stmt.query_map(params![customer.as_str(), evictions as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, body) = row?;
        out.push(decoded(&id, &body)?);
    }
    Ok(out)
}

/// The evicted orders of `store` whose pickup code is `code` (the counter typed or scanned it).
pub fn orders_with_code(
    conn: &Connection,
    store: &crate::domain::StoreId,
    code: &str,
    evictions: u64,
) -> rusqlite::Result<Vec<Order>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, body FROM order_history WHERE store = ?1 AND code = ?2 AND eviction <= ?3",
    )?;
    let rows: Vec<(String, Vec<u8>)> = stmt
        .query_map(params![store.as_str(), code, evictions as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    rows.iter().map(|(id, body)| decoded(id, body)).collect()
}

/// The orders `orders` that are evicted here, for a reader that found them missing from
/// memory (a webhook follower, the pickup counter).
pub fn load_orders(
    conn: &Connection,
    orders: &[OrderId],
    evictions: u64,
) -> rusqlite::Result<Vec<Order>> {
    let mut out = Vec::new();
    for id in orders {
        out.extend(load_order(conn, id, evictions)?);
    }
    Ok(out)
}

/// Delete the rows of evictions a replica rebuilt with `evictions` evictions never made.
pub fn forget_after(conn: &Connection, evictions: u64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM order_history WHERE eviction > ?1",
        params![evictions as i64],
    )
}

/// Orders named by own ops HQ has not acked yet, or `None` when that is unknown (never acked)
/// or too long to read: then no order of ours may leave memory.
fn unacked_orders(
    conn: &Connection,
    replica: &Replica,
    me: &ActorId,
) -> Result<Option<BTreeSet<OrderId>>, StoreError> {
    let acked: Option<i64> = conn
        .prepare_cached("SELECT value FROM sync_state WHERE key = 'hq_acked_seq'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let Some(acked) = acked else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT body FROM ops WHERE actor = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let bodies: Vec<Vec<u8>> = stmt
        .query_map(
            params![me.as_str(), acked, UNACKED_SCAN_MAX as i64 + 1],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    if bodies.len() > UNACKED_SCAN_MAX {
        return Ok(None);
    }
    let mut out = BTreeSet::new();
    for body in bodies {
        // An own op that does not decode names orders we cannot tell: evict none of ours.
        let Ok(op) = super::decode_op(&body) else {
            return Ok(None);
        };
        out.extend(orders_named(replica.state(), &op.payload));
    }
    Ok(Some(out))
}

/// Finished orders in memory that are causally stable and may leave it, oldest placed first,
/// all but the newest `ORDERS_KEPT_IN_MEMORY` of them and at most `batch_max`. At HQ every
/// order is stable: its store holds it, and HQ's down-log hands it on from the op log, not
/// from memory. At a store, an order is stable once no own op naming it waits for HQ's ack;
/// any other op about it came from HQ, which holds it. `pinned`: recalled for the counter.
pub(super) fn stable(
    conn: &Connection,
    replica: &Replica,
    pinned: &BTreeMap<SaleId, u64>,
    batch_max: usize,
) -> Result<Vec<OrderId>, StoreError> {
    let state = replica.state();
    let finished = state
        .orders
        .values()
        .filter(|o| !o.status.is_open())
        .count();
    let over = finished.saturating_sub(ORDERS_KEPT_IN_MEMORY);
    if over == 0 {
        return Ok(Vec::new());
    }
    let me = replica.actor();
    let unacked = match me.store() {
        Some(_) => match unacked_orders(conn, replica, me)? {
            Some(set) => set,
            None => return Ok(Vec::new()),
        },
        None => BTreeSet::new(),
    };
    let pinned_order =
        |id: &OrderId| SaleId::parse(id.as_str()).is_ok_and(|sale| pinned.contains_key(&sale));
    let mut out: Vec<(_, &OrderId)> = state
        .orders
        .values()
        .filter(|o| !o.status.is_open())
        .filter(|o| !unacked.contains(&o.id) && !pinned_order(&o.id))
        .map(|o| (o.placed_hlc, &o.id))
        .collect();
    out.sort_unstable();
    Ok(out
        .into_iter()
        .filter(|(_, id)| state.order_evictable(id))
        .take(over.min(batch_max))
        .map(|(_, id)| id.clone())
        .collect())
}

/// Write `ids` (orders in `replica`) to `order_history` in `tx`, numbering the rows from
/// `first`.
pub(super) fn write_rows(
    tx: &rusqlite::Transaction,
    replica: &Replica,
    ids: &[OrderId],
    first: u64,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO order_history
         (id, store, customer, placed_ms, code, eviction, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (n, id) in (first..).zip(ids) {
        let Some(o) = replica.state().orders.get(id) else {
            continue;
        };
        insert.execute(params![
            o.id.as_str(),
            o.store.as_str(),
            o.customer.as_str(),
            o.placed_at_ms as i64,
            o.pickup_code.as_str(),
            n as i64,
            encode_body(ORDER_BODY_FORMAT, o),
        ])?;
    }
    Ok(())
}
