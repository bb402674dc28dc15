//! History out of memory: closed sales that every replica holding them has acknowledged leave
//! the in-memory replica for `sale_history` (migration 0012), and come back before an op that
//! names them (`domain::history` has the calling protocol). The pick, write, commit, evict and
//! recall sequence is `history_table`'s, shared with `order_history`; this module says what
//! is the sales' own (their row, which are stable) and runs both passes (`Evictor`).
//!
//! Invariants (`history_table` has the rest): a row is committed before its sale leaves
//! memory; rows numbered above the replica's `State::evictions` are never rehydrated and the
//! rebuild deletes them (`forget_after`). A sale rehydrated keeps its row (memory is looked at
//! first), and its next eviction rewrites it.

use super::history_table::{self, nothing_evicted, HistoryTable, Pinned};
use super::order_history::Orders;
use super::StoreError;
use crate::domain::history::sales_named;
use crate::domain::state::SaleRecord;
use crate::domain::{ActorId, CustomerId, Hlc, Op, Payload, Replica, SaleId, State};
use rusqlite::{params, Connection, OptionalExtension};
use std::sync::RwLock;

pub use history_table::{decode_body, encode_body};

/// Layout of a row's `body`: this byte, then postcard over `SaleRecord`. Bump it when the
/// record changes shape (the golden case in tests/formats.rs fails when it does).
pub const SALE_BODY_FORMAT: u8 = 1;

/// The newest sales stay in memory up to this many (a few hundred KiB): the ones the counter
/// most likely looks up and takes back. Older ones are read from `sale_history`; keeping more
/// would make memory follow history (issue 18: 1M sales behind a store cost <= 1.2x idle).
pub const SALES_KEPT_IN_MEMORY: usize = 512;

/// Most sales one eviction pass moves: bounds its transaction and the writer's pause.
pub const EVICT_BATCH_MAX: usize = 50_000;

/// A sale recalled for the counter (`Node::recall`) stays in memory for this many eviction
/// passes, so the return planned from memory finds it when it is submitted.
const RECALL_PIN_PASSES: u64 = 2;

/// `sale_history`, for `history_table`.
pub(super) struct Sales;

impl HistoryTable for Sales {
    type Id = SaleId;
    type Record = SaleRecord;
    const TABLE: &'static str = "sale_history";
    const TIME_COLUMN: &'static str = "at_ms";
    const BODY_FORMAT: u8 = SALE_BODY_FORMAT;
    const INSERT: &'static str =
        "INSERT OR REPLACE INTO sale_history (id, store, customer, at_ms, eviction, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    const NOUN: &'static str = "sale";

    fn id_str(id: &SaleId) -> &str {
        id.as_str()
    }

    fn insert(
        insert: &mut rusqlite::Statement<'_>,
        s: &SaleRecord,
        eviction: i64,
        body: Vec<u8>,
    ) -> rusqlite::Result<usize> {
        insert.execute(params![
            s.id.as_str(),
            s.store.as_str(),
            s.customer.as_ref().map(|c| c.as_str()),
            s.at.wall_ms() as i64,
            eviction,
            body,
        ])
    }

    fn held<'s>(state: &'s State, id: &SaleId) -> Option<&'s SaleRecord> {
        state.sales.get(id)
    }

    /// Sales in memory that are causally stable and may leave it, oldest first, as many as are
    /// above `SALES_KEPT_IN_MEMORY` and at most `batch_max`. Only their store authors sales
    /// (`check_authority`), so at HQ every sale is held by its store and HQ, and HQ's down-log
    /// hands it to other stores from the op log, not from memory: all are stable. At a store, its
    /// own sales are stable once HQ acked them (own HLCs grow with seq, so a sale at or before
    /// the acked op's HLC is acked), and any other store's came from HQ, which holds them.
    fn stable(
        conn: &Connection,
        replica: &Replica,
        pinned: &Pinned,
        batch_max: usize,
    ) -> Result<Vec<SaleId>, StoreError> {
        let state = replica.state();
        let over = state.sales.len().saturating_sub(SALES_KEPT_IN_MEMORY);
        if over == 0 {
            return Ok(Vec::new());
        }
        let me = replica.actor();
        let own = me.store();
        let acked = match own {
            Some(_) => acked_hlc(conn, me)?,
            None => None,
        };
        let candidates: Vec<(Hlc, &SaleId)> = state
            .sales
            .values()
            .filter(|s| match &own {
                Some(store) if &s.store == store => acked.is_some_and(|h| s.at <= h),
                _ => true,
            })
            .filter(|s| !pinned.contains_key(&s.id))
            .map(|s| (s.at, &s.id))
            .collect();
        Ok(history_table::oldest(
            candidates,
            over.min(batch_max),
            |id| state.sale_evictable(id),
        ))
    }

    fn evict(replica: &mut Replica, id: &SaleId) -> Option<SaleRecord> {
        replica.evict_sale(id)
    }

    fn rehydrate(replica: &mut Replica, record: SaleRecord) {
        replica.rehydrate_sale(record);
    }
}

/// The evicted sale `sale`, if this replica (having made `evictions` evictions) evicted it.
pub fn load_sale(
    conn: &Connection,
    sale: &SaleId,
    evictions: u64,
) -> Result<Option<SaleRecord>, StoreError> {
    Sales::load(conn, sale, evictions)
}

/// Put back into `replica` every evicted sale `payload` names, before it is prepared or
/// applied. Sales in memory, and sales never evicted here, are left alone. A replica that
/// never evicted anything has no row to read (rows are numbered from its first eviction,
/// `State::evictions` >= 1, and only rows at or below its count are read): no query.
pub fn recall(
    conn: &Connection,
    replica: &mut Replica,
    payload: &Payload,
) -> Result<(), StoreError> {
    if nothing_evicted(replica) {
        return Ok(());
    }
    recall_sales(conn, replica, sales_named(payload))?;
    super::order_history::recall(conn, replica, payload)
}

/// `recall` for an op about to be applied: an op this replica has seen already is a
/// duplicate, which `Replica::apply` answers from the version vector before it reads any
/// record, so nothing is read for it.
pub fn recall_op(conn: &Connection, replica: &mut Replica, op: &Op) -> Result<(), StoreError> {
    if replica.version().contains(&op.actor, op.seq) {
        return Ok(());
    }
    recall(conn, replica, &op.payload)
}

/// `recall` for the sales `sales`; a sale id that is a handed-over order's (a return
/// against a pickup) brings that order back.
pub fn recall_sales<'a>(
    conn: &Connection,
    replica: &mut Replica,
    sales: impl IntoIterator<Item = &'a SaleId>,
) -> Result<(), StoreError> {
    if nothing_evicted(replica) {
        return Ok(());
    }
    for sale in sales {
        if let Ok(order) = crate::domain::OrderId::parse(sale.as_str()) {
            super::order_history::recall_orders(conn, replica, [&order])?;
        }
        history_table::recall_one::<Sales>(conn, replica, sale)?;
    }
    Ok(())
}

/// The evicted sales of `customer`, oldest first (the customer card's history reads these
/// beside the sales in memory). A row that does not decode is an error naming the sale.
pub fn sales_of_customer(
    conn: &Connection,
    customer: &CustomerId,
    evictions: u64,
) -> rusqlite::Result<Vec<SaleRecord>> {
    history_table::of_customer::<Sales>(conn, customer, evictions)
}

/// Delete the rows of evictions a replica rebuilt with `evictions` evictions never made, sales
/// and orders.
pub fn forget_after(conn: &Connection, evictions: u64) -> rusqlite::Result<usize> {
    let sales = history_table::forget_after::<Sales>(conn, evictions)?;
    Ok(sales + super::order_history::forget_after(conn, evictions)?)
}

/// HLC of the last own op HQ acknowledged (the sync engine's `hq_acked_seq`), if any.
fn acked_hlc(conn: &Connection, me: &ActorId) -> rusqlite::Result<Option<Hlc>> {
    conn.prepare_cached(
        "SELECT o.hlc_wall, o.hlc_counter FROM sync_state s
         JOIN ops o ON o.actor = ?1 AND o.seq = s.value
         WHERE s.key = 'hq_acked_seq'",
    )?
    .query_row(params![me.as_str()], |r| {
        Ok(Hlc::new(r.get::<_, i64>(0)?.max(0) as u64, r.get(1)?))
    })
    .optional()
}

/// The writer's side of eviction: passes made, and sales pinned in memory by a recall.
#[derive(Debug, Default)]
pub struct Evictor {
    passes: u64,
    pinned: Pinned,
}

impl Evictor {
    /// Keep `sales` in memory for the next `RECALL_PIN_PASSES` passes.
    pub fn pin(&mut self, sales: impl IntoIterator<Item = SaleId>) {
        for sale in sales {
            self.pinned.insert(sale, self.passes);
        }
    }

    /// One pass: write the stable sales, then the stable finished orders, to their history
    /// tables, each in a transaction of its own, and once it committed take them out of
    /// memory. Returns how many left memory (at most `EVICT_BATCH_MAX` of each).
    pub fn run(
        &mut self,
        conn: &mut Connection,
        replica: &RwLock<Replica>,
    ) -> Result<usize, StoreError> {
        self.passes += 1;
        let passes = self.passes;
        self.pinned
            .retain(|_, at| passes.saturating_sub(*at) <= RECALL_PIN_PASSES);
        let sales =
            history_table::evict_pass::<Sales>(conn, replica, &self.pinned, EVICT_BATCH_MAX)?;
        Ok(sales
            + history_table::evict_pass::<Orders>(conn, replica, &self.pinned, EVICT_BATCH_MAX)?)
    }
}
