//! The materialised rows an op changes: which ones (`keys_for`, named by `RowKey`) and their
//! content as the state has it (`write`). The writer writes them behind the log, in batches
//! (`store::derived`); only an invoice's journal record is written with its op (`with_op`).
//!
//! Rows are upserted (`ON CONFLICT DO UPDATE`), not `INSERT OR REPLACE`d: REPLACE deletes the
//! row and inserts it again under a new rowid, which dirties the old table page, the table's
//! last page and the key index twice; an upsert rewrites the row where it is. A stock row is
//! rewritten on most ops, so this is most of the pages a group commit writes.

use crate::domain::{ActorId, CustomerId, Op, OrderId, Payload, SaleId, Sku, State, StoreId};
use rusqlite::{params, CachedStatement, Connection, Transaction};

/// A derived row (or group of rows) an op changed, named by its key. Its content is read
/// from the state when it is written, so writing a key twice, or once for many ops, gives the
/// same rows as writing it after each op.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RowKey {
    /// The product's `catalog` row.
    Catalog(Sku),
    /// The `(store, sku)` row of `stock`.
    Stock(StoreId, Sku),
    /// The `orders` row and the stock rows of the order's lines.
    Order(OrderId),
    /// The `sales` row.
    Sale(SaleId),
    /// The `customers` row and the customer's `cart_lines`.
    Customer(CustomerId),
}

/// Name every derived row `op` changes (some more than once).
pub fn keys_for(op: &Op, mut note: impl FnMut(RowKey)) {
    let mut stock_lines = |store: &StoreId, skus: &mut dyn Iterator<Item = &Sku>| {
        for sku in skus {
            note(RowKey::Stock(store.clone(), sku.clone()));
        }
    };
    match &op.payload {
        Payload::CatalogPut { sku, .. } => note(RowKey::Catalog(sku.clone())),
        Payload::StockReceive { store, sku, .. }
        | Payload::StockTransfer { store, sku, .. }
        | Payload::StockConsume { store, sku, .. } => {
            note(RowKey::Stock(store.clone(), sku.clone()))
        }
        Payload::Sale {
            store,
            sale_id,
            lines,
            ..
        } => {
            stock_lines(store, &mut lines.iter().map(|l| &l.sku));
            note(RowKey::Sale(sale_id.clone()));
        }
        Payload::OrderPlace {
            order_id, customer, ..
        } => {
            note(RowKey::Order(order_id.clone()));
            note(RowKey::Customer(customer.clone()));
        }
        Payload::OrderAdvance { order_id, .. }
        | Payload::OrderPick { order_id, .. }
        | Payload::OrderCancel { order_id, .. }
        | Payload::OrderRelease { order_id, .. } => note(RowKey::Order(order_id.clone())),
        Payload::CartSet { customer, .. }
        | Payload::CartRemove { customer, .. }
        | Payload::CustomerUpdate { customer, .. }
        | Payload::ConsentSet { customer, .. }
        | Payload::CustomerErase { customer }
        | Payload::CustomerFollow { customer, .. } => note(RowKey::Customer(customer.clone())),
        // A restocked return changes the receiving store's stock row; the rest lives in the
        // op log and the replica (no table of returns yet).
        Payload::Return { store, lines, .. } => {
            stock_lines(store, &mut lines.iter().map(|l| &l.sku))
        }
        Payload::TransferDispatch { store, lines, .. } => {
            stock_lines(store, &mut lines.iter().map(|l| &l.sku))
        }
        Payload::ShipmentReceive { store, lines, .. }
        | Payload::TransferReceive { store, lines, .. } => {
            stock_lines(store, &mut lines.iter().map(|l| &l.sku))
        }
        // Invoice records are written with their op (`with_op`), not derived later.
        Payload::Invoice { .. }
        | Payload::CountRecorded { .. }
        | Payload::RightsReturnRequested { .. }
        | Payload::ShipmentNotice { .. }
        | Payload::ConflictResolve { .. }
        | Payload::ReturnRightsRequested { .. }
        | Payload::ReturnRightsGranted { .. }
        | Payload::PromotionPut { .. }
        | Payload::PromotionSet { .. }
        | Payload::CatalogCategory { .. }
        | Payload::SalePriced { .. }
        | Payload::CashOpen { .. }
        | Payload::CashMove { .. }
        | Payload::CashClose { .. }
        | Payload::CashOpenTill { .. }
        | Payload::TakenAt { .. } => {}
        // HQ's rights at the sending store went down; the order's store is untouched until
        // its units arrive.
        Payload::OrderShipToStore {
            order_id,
            from,
            customer,
            lines,
            ..
        } => {
            stock_lines(from, &mut lines.iter().map(|l| &l.sku));
            note(RowKey::Order(order_id.clone()));
            note(RowKey::Customer(customer.clone()));
        }
        Payload::OrderArrived { order_id, .. } => note(RowKey::Order(order_id.clone())),
        // A withdrawal gives the units back to the sender: the order's rows include the
        // sending store's stock rows.
        Payload::ShipDispatch { order_id, .. } | Payload::ShipWithdraw { order_id, .. } => {
            note(RowKey::Order(order_id.clone()))
        }
    }
}

/// The rows written in the same transaction as `op` itself: an `Invoice`'s journal record
/// (the fiscal chain is read from `fiscal_records` and must never lag its op).
pub fn with_op(tx: &Transaction, op: &Op) -> rusqlite::Result<()> {
    match &op.payload {
        Payload::Invoice { store, record } => super::fiscal::insert_record(tx, store, record),
        _ => Ok(()),
    }
}

/// Write the rows named by `key` as `state` has them.
pub fn write(conn: &Connection, state: &State, key: &RowKey) -> rusqlite::Result<()> {
    RowWriter::new(conn)?.write(state, key)
}

/// Write every row `op` changed, as `state` has them after it (tests, and callers that need
/// the rows at once).
pub fn rows_for(tx: &Transaction, state: &State, op: &Op) -> rusqlite::Result<()> {
    with_op(tx, op)?;
    let mut keys = Vec::new();
    keys_for(op, |k| keys.push(k));
    let mut rows = RowWriter::new(tx)?;
    keys.iter().try_for_each(|k| rows.write(state, k))
}

const CATALOG_SQL: &str =
    "INSERT INTO catalog (sku, ean, name, price_cents, vat_bp) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (sku) DO UPDATE SET ean = excluded.ean, name = excluded.name,
       price_cents = excluded.price_cents, vat_bp = excluded.vat_bp";
const STOCK_SQL: &str =
    "INSERT INTO stock (store, sku, available, store_rights, hq_rights, reserved)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (store, sku) DO UPDATE SET available = excluded.available,
       store_rights = excluded.store_rights, hq_rights = excluded.hq_rights,
       reserved = excluded.reserved";
const ORDER_SQL: &str = "INSERT INTO orders
     (id, store, customer, status, pickup_code, placed_at_ms, conflict, lines_json)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
     ON CONFLICT (id) DO UPDATE SET store = excluded.store, customer = excluded.customer,
       status = excluded.status, pickup_code = excluded.pickup_code,
       placed_at_ms = excluded.placed_at_ms, conflict = excluded.conflict,
       lines_json = excluded.lines_json";
const SALE_SQL: &str =
    "INSERT INTO sales (id, store, total_cents, tender, customer, at_ms, lines_json)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (id) DO UPDATE SET store = excluded.store,
       total_cents = excluded.total_cents, tender = excluded.tender,
       customer = excluded.customer, at_ms = excluded.at_ms, lines_json = excluded.lines_json";
const CUSTOMER_SQL: &str = "INSERT INTO customers (id, name, email, phone, loyalty_card, erased)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email,
       phone = excluded.phone, loyalty_card = excluded.loyalty_card,
       erased = excluded.erased";
const CART_CLEAR_SQL: &str = "DELETE FROM cart_lines WHERE customer = ?1";
const CART_LINE_SQL: &str = "INSERT INTO cart_lines (customer, sku, qty) VALUES (?1, ?2, ?3)";

/// An order line as `orders.lines_json` holds it (fields in key order: the text is what
/// `serde_json::json!` wrote before, whose maps sort their keys).
#[derive(serde::Serialize)]
struct OrderLineJson<'a> {
    picked: u32,
    qty: u32,
    sku: &'a str,
}

/// A sale line as `sales.lines_json` holds it (fields in key order, as above).
#[derive(serde::Serialize)]
struct SaleLineJson<'a> {
    qty: u32,
    sku: &'a str,
    unit_cents: i64,
    vat_bp: u32,
}

/// Writes derived rows with its statements prepared once and held for a whole batch of keys
/// (one statement-cache lookup per table per batch, not per row).
pub struct RowWriter<'c> {
    catalog: CachedStatement<'c>,
    stock: CachedStatement<'c>,
    order: CachedStatement<'c>,
    sale: CachedStatement<'c>,
    customer: CachedStatement<'c>,
    cart_clear: CachedStatement<'c>,
    cart_line: CachedStatement<'c>,
    /// The last store whose stock row was written, with its replica's actor id (keys come
    /// sorted, so a batch's stock rows are mostly one store's).
    store_actor: Option<(StoreId, ActorId)>,
}

impl<'c> RowWriter<'c> {
    pub fn new(conn: &'c Connection) -> rusqlite::Result<RowWriter<'c>> {
        Ok(RowWriter {
            catalog: conn.prepare_cached(CATALOG_SQL)?,
            stock: conn.prepare_cached(STOCK_SQL)?,
            order: conn.prepare_cached(ORDER_SQL)?,
            sale: conn.prepare_cached(SALE_SQL)?,
            customer: conn.prepare_cached(CUSTOMER_SQL)?,
            cart_clear: conn.prepare_cached(CART_CLEAR_SQL)?,
            cart_line: conn.prepare_cached(CART_LINE_SQL)?,
            store_actor: None,
        })
    }

    /// Write the rows named by `key` as `state` has them.
    pub fn write(&mut self, state: &State, key: &RowKey) -> rusqlite::Result<()> {
        match key {
            RowKey::Catalog(sku) => self.catalog(state, sku),
            RowKey::Stock(store, sku) => self.stock(state, store, sku),
            RowKey::Order(id) => self.order_with_stock(state, id),
            RowKey::Sale(id) => self.sale(state, id),
            RowKey::Customer(id) => self.customer_rows(state, id),
        }
    }

    fn catalog(&mut self, state: &State, sku: &Sku) -> rusqlite::Result<()> {
        let Some(p) = state.catalog.get(sku) else {
            return Ok(());
        };
        self.catalog.execute(params![
            p.sku.as_str(),
            p.ean.to_string(),
            p.name,
            p.price_cents,
            p.vat_bp
        ])?;
        Ok(())
    }

    fn stock(&mut self, state: &State, store: &StoreId, sku: &Sku) -> rusqlite::Result<()> {
        let own = match &self.store_actor {
            Some((s, actor)) if s == store => actor,
            _ => &self.store_actor.insert((store.clone(), store.actor())).1,
        };
        let (available, store_rights, hq_rights) = match state.counter(store, sku) {
            Some(c) => (c.available(), c.rights(own), c.rights(&ActorId::hq())),
            None => (0, 0, 0),
        };
        self.stock.execute(params![
            store.as_str(),
            sku.as_str(),
            available,
            store_rights,
            hq_rights,
            state.reserved(store, sku) as i64,
        ])?;
        Ok(())
    }

    fn order_with_stock(&mut self, state: &State, id: &OrderId) -> rusqlite::Result<()> {
        let Some(o) = state.orders.get(id) else {
            return Ok(()); // waiting for its placement
        };
        let lines: Vec<_> = o
            .lines
            .iter()
            .map(|(sku, l)| OrderLineJson {
                picked: l.picked,
                qty: l.qty,
                sku: sku.as_str(),
            })
            .collect();
        self.order.execute(params![
            o.id.as_str(),
            o.store.as_str(),
            o.customer.as_str(),
            o.status.as_str(),
            o.pickup_code,
            o.placed_at_ms as i64,
            o.conflict(),
            json(&lines),
        ])?;
        for sku in o.lines.keys() {
            self.stock(state, &o.store, sku)?;
            if let Some(ship) = &o.ship {
                self.stock(state, &ship.store, sku)?;
            }
        }
        Ok(())
    }

    fn sale(&mut self, state: &State, id: &SaleId) -> rusqlite::Result<()> {
        let Some(s) = state.sales.get(id) else {
            return Ok(());
        };
        let lines: Vec<_> = s
            .lines
            .iter()
            .map(|l| SaleLineJson {
                qty: l.qty,
                sku: l.sku.as_str(),
                unit_cents: l.unit_cents,
                vat_bp: l.vat_bp,
            })
            .collect();
        self.sale.execute(params![
            s.id.as_str(),
            s.store.as_str(),
            s.total_cents(),
            format!("{:?}", s.tender).to_lowercase(),
            s.customer.as_ref().map(|c| c.as_str()),
            s.at.wall_ms() as i64,
            json(&lines),
        ])?;
        Ok(())
    }

    fn customer_rows(&mut self, state: &State, id: &CustomerId) -> rusqlite::Result<()> {
        if let Some(c) = state.customers.get(id) {
            self.customer.execute(params![
                id.as_str(),
                c.name(),
                c.email(),
                c.phone(),
                c.loyalty_card(),
                c.is_erased()
            ])?;
        }
        self.cart_clear.execute(params![id.as_str()])?;
        if let Some(cart) = state.carts.get(id) {
            for (sku, qty) in cart.lines() {
                self.cart_line
                    .execute(params![id.as_str(), sku.as_str(), qty])?;
            }
        }
        Ok(())
    }
}

/// `lines` as JSON text (plain data: serialising it cannot fail).
fn json(lines: &impl serde::Serialize) -> String {
    serde_json::to_string(lines).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_json_text_is_what_the_json_macro_wrote_before() {
        let sale = [SaleLineJson {
            qty: 2,
            sku: "SKU-1",
            unit_cents: 1_295,
            vat_bp: 2100,
        }];
        let before = serde_json::Value::Array(vec![serde_json::json!(
            {"sku": "SKU-1", "qty": 2, "unit_cents": 1_295, "vat_bp": 2100}
        )]);
        assert_eq!(json(&sale), before.to_string());
        let order = [OrderLineJson {
            picked: 1,
            qty: 3,
            sku: "SKU-2",
        }];
        let before = serde_json::Value::Array(vec![serde_json::json!(
            {"sku": "SKU-2", "qty": 3, "picked": 1}
        )]);
        assert_eq!(json(&order), before.to_string());
    }
}
