//! History out of memory: closed sales that every replica holding them has acknowledged leave
//! the in-memory replica for `sale_history` (migration 0012), and come back before an op that
//! names them (`domain::history` has the calling protocol).
//!
//! Invariants: a row is committed before its sale leaves memory, so memory never lacks what
//! the file lacks. Each row carries the number of the eviction that wrote it (`eviction`, the
//! replica's `State::evictions` after it); a replica rebuilt from an older snapshot has made
//! fewer evictions, so rows numbered above its count are not its own: they are never
//! rehydrated and the rebuild deletes them (`forget_after`). A sale rehydrated keeps its row
//! (memory is looked at first), and its next eviction rewrites it.

use super::StoreError;
use crate::domain::history::sales_named;
use crate::domain::state::SaleRecord;
use crate::domain::{ActorId, CustomerId, Hlc, Op, Payload, Replica, SaleId};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::sync::RwLock;

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

/// A history row's `body`: the layout byte `format`, then postcard over the record (sales
/// here, orders in `order_history`).
pub fn encode_body<T: serde::Serialize>(format: u8, record: &T) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    postcard::to_extend(record, vec![format]).unwrap_or_else(|_| vec![format])
}

/// A row's `body` back as the record it stores, if it has the layout `format`.
pub fn decode_body<T: serde::de::DeserializeOwned>(format: u8, bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&f, rest)) if f == format => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((f, _)) => Err(format!("format {f}, this binary reads {format}")),
        None => Err("empty body".to_string()),
    }
}

fn decoded(sale: &str, body: &[u8]) -> Result<SaleRecord, StoreError> {
    decode_body(SALE_BODY_FORMAT, body).map_err(|detail| StoreError::History {
        record: sale.to_string(),
        detail,
    })
}

/// The evicted sale `sale`, if this replica (having made `evictions` evictions) evicted it.
pub fn load_sale(
    conn: &Connection,
    sale: &SaleId,
    evictions: u64,
) -> Result<Option<SaleRecord>, StoreError> {
    let body: Option<Vec<u8>> = conn
        .prepare_cached("SELECT body FROM sale_history WHERE id = ?1 AND eviction <= ?2")?
        .query_row(params![sale.as_str(), evictions as i64], |r| r.get(0))
        .optional()?;
    body.map(|b| decoded(sale.as_str(), &b)).transpose()
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

/// No eviction on this replica's lineage: no history row is its own, so none is read.
pub(super) fn nothing_evicted(replica: &Replica) -> bool {
    replica.state().evictions() == 0
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
        if replica.state().sales.contains_key(sale) {
            continue;
        }
        if let Some(record) = load_sale(conn, sale, replica.state().evictions())? {
            replica.rehydrate_sale(record);
        }
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
    let mut stmt = conn.prepare_cached(
        "SELECT id, body FROM sale_history WHERE customer = ?1 AND eviction <= ?2
         ORDER BY at_ms",
    )?;
    let rows = stmt.query_map(params![customer.as_str(), evictions as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, body) = row?;
        let record = decoded(&id, &body).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, e.into())
        })?;
        out.push(record);
    }
    Ok(out)
}

/// Delete the rows of evictions a replica rebuilt with `evictions` evictions never made, sales
/// and orders.
pub fn forget_after(conn: &Connection, evictions: u64) -> rusqlite::Result<usize> {
    let sales = conn.execute(
        "DELETE FROM sale_history WHERE eviction > ?1",
        params![evictions as i64],
    )?;
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

/// Sales in memory that are causally stable and may leave it, oldest first, as many as are
/// above `SALES_KEPT_IN_MEMORY` and at most `EVICT_BATCH_MAX`. Only their store authors sales
/// (`check_authority`), so at HQ every sale is held by its store and HQ, and HQ's down-log
/// hands it to other stores from the op log, not from memory: all are stable. At a store, its
/// own sales are stable once HQ acked them (own HLCs grow with seq, so a sale at or before
/// the acked op's HLC is acked), and any other store's came from HQ, which holds them.
fn stable(
    conn: &Connection,
    replica: &Replica,
    pinned: &BTreeMap<SaleId, u64>,
) -> rusqlite::Result<Vec<SaleId>> {
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
    let mut out: Vec<(Hlc, &SaleId)> = state
        .sales
        .values()
        .filter(|s| match &own {
            Some(store) if &s.store == store => acked.is_some_and(|h| s.at <= h),
            _ => true,
        })
        .filter(|s| !pinned.contains_key(&s.id))
        .map(|s| (s.at, &s.id))
        .collect();
    out.sort_unstable();
    Ok(out
        .into_iter()
        .filter(|(_, id)| state.sale_evictable(id))
        .take(over.min(EVICT_BATCH_MAX))
        .map(|(_, id)| id.clone())
        .collect())
}

/// The writer's side of eviction: passes made, and sales pinned in memory by a recall.
#[derive(Debug, Default)]
pub struct Evictor {
    passes: u64,
    pinned: BTreeMap<SaleId, u64>,
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
        let sales = self.run_sales(conn, replica)?;
        Ok(sales + self.run_orders(conn, replica)?)
    }

    /// The sales' part of `run`.
    fn run_sales(
        &mut self,
        conn: &mut Connection,
        replica: &RwLock<Replica>,
    ) -> Result<usize, StoreError> {
        let (ids, first) = {
            let r = replica.read().unwrap_or_else(|p| p.into_inner());
            (stable(conn, &r, &self.pinned)?, r.state().evictions() + 1)
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let tx = rusqlite::Transaction::new(conn, rusqlite::TransactionBehavior::Immediate)?;
        {
            let r = replica.read().unwrap_or_else(|p| p.into_inner());
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO sale_history (id, store, customer, at_ms, eviction, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (n, id) in (first..).zip(&ids) {
                let Some(s) = r.state().sales.get(id) else {
                    continue;
                };
                insert.execute(params![
                    s.id.as_str(),
                    s.store.as_str(),
                    s.customer.as_ref().map(|c| c.as_str()),
                    s.at.wall_ms() as i64,
                    n as i64,
                    encode_body(SALE_BODY_FORMAT, s),
                ])?;
            }
        }
        tx.commit()?;
        let mut r = replica.write().unwrap_or_else(|p| p.into_inner());
        let mut evicted = 0;
        for id in &ids {
            // Only this thread changes the replica, so each is still evictable; were one not,
            // the rows after it carry numbers above the count and are simply not used.
            if r.evict_sale(id).is_none() {
                debug_assert!(false, "sale {id} stopped being evictable");
                break;
            }
            evicted += 1;
        }
        Ok(evicted)
    }

    /// The orders' part of `run`, as for sales: rows committed, then the orders evicted in
    /// the order their rows were numbered.
    fn run_orders(
        &mut self,
        conn: &mut Connection,
        replica: &RwLock<Replica>,
    ) -> Result<usize, StoreError> {
        let (ids, first) = {
            let r = replica.read().unwrap_or_else(|p| p.into_inner());
            let ids = super::order_history::stable(conn, &r, &self.pinned, EVICT_BATCH_MAX)?;
            (ids, r.state().evictions() + 1)
        };
        if ids.is_empty() {
            return Ok(0);
        }
        let tx = rusqlite::Transaction::new(conn, rusqlite::TransactionBehavior::Immediate)?;
        {
            let r = replica.read().unwrap_or_else(|p| p.into_inner());
            super::order_history::write_rows(&tx, &r, &ids, first)?;
        }
        tx.commit()?;
        let mut r = replica.write().unwrap_or_else(|p| p.into_inner());
        let mut evicted = 0;
        for id in &ids {
            // Only this thread changes the replica: see `run_sales`.
            if r.evict_order(id).is_none() {
                debug_assert!(false, "order {id} stopped being evictable");
                break;
            }
            evicted += 1;
        }
        Ok(evicted)
    }
}
