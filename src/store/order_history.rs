//! Orders out of memory: finished orders that every replica holding them has acknowledged
//! leave the in-memory replica for `order_history` (its migration is listed in `schema.rs`),
//! and come back before an op that names them (`domain::history` has the calling protocol;
//! `store::history` does the same for sales and runs both passes). The pick, write, commit,
//! evict and recall sequence is `history_table`'s; this module says what is the orders' own.
//!
//! Invariants, as for sales: a row is committed before its order leaves memory; rows carry
//! the number of the eviction that wrote it (one count with `sale_history`), and rows numbered
//! above the replica's `State::evictions` are never read and are deleted by a rebuild. A
//! store's order is stable once no own op naming it waits for HQ's ack (the outbox is read
//! for that); at HQ every order is. Readers that show orders (pickup counter, order API,
//! customer card, webhooks) look in memory first, then here (`load_order`).

use super::history_table::{self, as_sqlite, decoded, HistoryTable, Pinned};
use super::StoreError;
use crate::domain::history::orders_named;
use crate::domain::order::Order;
use crate::domain::{ActorId, CustomerId, OrderId, Payload, Replica, SaleId, State};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeSet;

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

/// `order_history`, for `history_table`.
pub(super) struct Orders;

impl HistoryTable for Orders {
    type Id = OrderId;
    type Record = Order;
    const TABLE: &'static str = "order_history";
    const TIME_COLUMN: &'static str = "placed_ms";
    const BODY_FORMAT: u8 = ORDER_BODY_FORMAT;
    const INSERT: &'static str = "INSERT OR REPLACE INTO order_history
         (id, store, customer, placed_ms, code, eviction, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    const NOUN: &'static str = "order";

    fn id_str(id: &OrderId) -> &str {
        id.as_str()
    }

    fn insert(
        insert: &mut rusqlite::Statement<'_>,
        o: &Order,
        eviction: i64,
        body: Vec<u8>,
    ) -> rusqlite::Result<usize> {
        insert.execute(params![
            o.id.as_str(),
            o.store.as_str(),
            o.customer.as_str(),
            o.placed_at_ms as i64,
            o.pickup_code.as_str(),
            eviction,
            body,
        ])
    }

    fn held<'s>(state: &'s State, id: &OrderId) -> Option<&'s Order> {
        state.orders.get(id)
    }

    /// Finished orders in memory that are causally stable and may leave it, oldest placed first,
    /// all but the newest `ORDERS_KEPT_IN_MEMORY` of them and at most `batch_max`. At HQ every
    /// order is stable: its store holds it, and HQ's down-log hands it on from the op log, not
    /// from memory. At a store, an order is stable once no own op naming it waits for HQ's ack;
    /// any other op about it came from HQ, which holds it. `pinned`: recalled for the counter.
    fn stable(
        conn: &Connection,
        replica: &Replica,
        pinned: &Pinned,
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
        let candidates: Vec<(_, &OrderId)> = state
            .orders
            .values()
            .filter(|o| !o.status.is_open())
            .filter(|o| !unacked.contains(&o.id) && !pinned_order(&o.id))
            .map(|o| (o.placed_hlc, &o.id))
            .collect();
        Ok(history_table::oldest(
            candidates,
            over.min(batch_max),
            |id| state.order_evictable(id),
        ))
    }

    fn evict(replica: &mut Replica, id: &OrderId) -> Option<Order> {
        replica.evict_order(id)
    }

    fn rehydrate(replica: &mut Replica, record: Order) {
        replica.rehydrate_order(record);
    }

    /// A recalled order's row that does not decode comes back as the SQLite error `load_order`
    /// returns (as it always has; a sale's is `StoreError::History` itself).
    fn load(conn: &Connection, id: &OrderId, evictions: u64) -> Result<Option<Order>, StoreError> {
        Ok(load_order(conn, id, evictions)?)
    }
}

/// The evicted order `order`, if this replica (having made `evictions` evictions) evicted it.
pub fn load_order(
    conn: &Connection,
    order: &OrderId,
    evictions: u64,
) -> rusqlite::Result<Option<Order>> {
    history_table::load::<Orders, _>(conn, order, evictions, as_sqlite)
}

/// Put back into `replica` every evicted order `payload` names, before it is prepared or
/// applied.
pub fn recall(
    conn: &Connection,
    replica: &mut Replica,
    payload: &Payload,
) -> Result<(), StoreError> {
    if history_table::nothing_evicted(replica) {
        return Ok(());
    }
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
    history_table::recall::<Orders>(conn, replica, orders)
}

/// The evicted orders of `customer`, oldest first (the customer card reads these beside the
/// orders in memory). A row that does not decode is an error naming the order.
pub fn orders_of_customer(
    conn: &Connection,
    customer: &CustomerId,
    evictions: u64,
) -> rusqlite::Result<Vec<Order>> {
    history_table::of_customer::<Orders>(conn, customer, evictions)
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
    rows.iter()
        .map(|(id, body)| decoded::<Orders>(id, body).map_err(as_sqlite))
        .collect()
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
    history_table::forget_after::<Orders>(conn, evictions)
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
