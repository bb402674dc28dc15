//! The materialised rows an op changes: which ones (`keys_for`, named by `RowKey`) and their
//! content as the state has it (`write`). The writer writes them behind the log, in batches
//! (`store::derived`); only an invoice's journal record is written with its op (`with_op`).
//!
//! Rows are upserted (`ON CONFLICT DO UPDATE`), not `INSERT OR REPLACE`d: REPLACE deletes the
//! row and inserts it again under a new rowid, which dirties the old table page, the table's
//! last page and the key index twice; an upsert rewrites the row where it is. A stock row is
//! rewritten on most ops, so this is most of the pages a group commit writes.

use crate::domain::{ActorId, CustomerId, Op, OrderId, Payload, SaleId, Sku, State, StoreId};
use rusqlite::{params, Connection, Transaction};

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
    match key {
        RowKey::Catalog(sku) => catalog(conn, state, sku),
        RowKey::Stock(store, sku) => stock(conn, state, store, sku),
        RowKey::Order(id) => order_with_stock(conn, state, id),
        RowKey::Sale(id) => sale(conn, state, id),
        RowKey::Customer(id) => customer_rows(conn, state, id),
    }
}

/// Write every row `op` changed, as `state` has them after it (tests, and callers that need
/// the rows at once).
pub fn rows_for(tx: &Transaction, state: &State, op: &Op) -> rusqlite::Result<()> {
    with_op(tx, op)?;
    let mut keys = Vec::new();
    keys_for(op, |k| keys.push(k));
    keys.iter().try_for_each(|k| write(tx, state, k))
}

fn catalog(tx: &Connection, state: &State, sku: &Sku) -> rusqlite::Result<()> {
    let Some(p) = state.catalog.get(sku) else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO catalog (sku, ean, name, price_cents, vat_bp) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (sku) DO UPDATE SET ean = excluded.ean, name = excluded.name,
           price_cents = excluded.price_cents, vat_bp = excluded.vat_bp",
    )?
    .execute(params![
        p.sku.as_str(),
        p.ean.to_string(),
        p.name,
        p.price_cents,
        p.vat_bp
    ])?;
    Ok(())
}

fn stock(tx: &Connection, state: &State, store: &StoreId, sku: &Sku) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO stock (store, sku, available, store_rights, hq_rights, reserved)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (store, sku) DO UPDATE SET available = excluded.available,
           store_rights = excluded.store_rights, hq_rights = excluded.hq_rights,
           reserved = excluded.reserved",
    )?
    .execute(params![
        store.as_str(),
        sku.as_str(),
        state.available(store, sku),
        state.rights(store, sku, &store.actor()),
        state.rights(store, sku, &ActorId::hq()),
        state.reserved(store, sku) as i64,
    ])?;
    Ok(())
}

fn order_with_stock(tx: &Connection, state: &State, id: &OrderId) -> rusqlite::Result<()> {
    let Some(o) = state.orders.get(id) else {
        return Ok(()); // waiting for its placement
    };
    let lines: Vec<_> = o
        .lines
        .iter()
        .map(|(sku, l)| serde_json::json!({"sku": sku, "qty": l.qty, "picked": l.picked}))
        .collect();
    tx.prepare_cached(
        "INSERT INTO orders
         (id, store, customer, status, pickup_code, placed_at_ms, conflict, lines_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET store = excluded.store, customer = excluded.customer,
           status = excluded.status, pickup_code = excluded.pickup_code,
           placed_at_ms = excluded.placed_at_ms, conflict = excluded.conflict,
           lines_json = excluded.lines_json",
    )?
    .execute(params![
        o.id.as_str(),
        o.store.as_str(),
        o.customer.as_str(),
        o.status.as_str(),
        o.pickup_code,
        o.placed_at_ms as i64,
        o.conflict(),
        serde_json::Value::Array(lines).to_string(),
    ])?;
    for sku in o.lines.keys() {
        stock(tx, state, &o.store, sku)?;
        if let Some(ship) = &o.ship {
            stock(tx, state, &ship.store, sku)?;
        }
    }
    Ok(())
}

fn sale(tx: &Connection, state: &State, id: &SaleId) -> rusqlite::Result<()> {
    let Some(s) = state.sales.get(id) else {
        return Ok(());
    };
    let lines: Vec<_> = s
        .lines
        .iter()
        .map(|l| serde_json::json!({"sku": l.sku, "qty": l.qty, "unit_cents": l.unit_cents, "vat_bp": l.vat_bp}))
        .collect();
    tx.prepare_cached(
        "INSERT INTO sales (id, store, total_cents, tender, customer, at_ms, lines_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET store = excluded.store,
           total_cents = excluded.total_cents, tender = excluded.tender,
           customer = excluded.customer, at_ms = excluded.at_ms, lines_json = excluded.lines_json",
    )?
    .execute(params![
        s.id.as_str(),
        s.store.as_str(),
        s.total_cents(),
        format!("{:?}", s.tender).to_lowercase(),
        s.customer.as_ref().map(|c| c.as_str()),
        s.at.wall_ms() as i64,
        serde_json::Value::Array(lines).to_string(),
    ])?;
    Ok(())
}

fn customer_rows(tx: &Connection, state: &State, id: &CustomerId) -> rusqlite::Result<()> {
    if let Some(c) = state.customers.get(id) {
        tx.prepare_cached(
            "INSERT INTO customers (id, name, email, phone, loyalty_card, erased)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email,
               phone = excluded.phone, loyalty_card = excluded.loyalty_card,
               erased = excluded.erased",
        )?
        .execute(params![
            id.as_str(),
            c.name(),
            c.email(),
            c.phone(),
            c.loyalty_card(),
            c.is_erased()
        ])?;
    }
    tx.prepare_cached("DELETE FROM cart_lines WHERE customer = ?1")?
        .execute(params![id.as_str()])?;
    if let Some(cart) = state.carts.get(id) {
        let mut insert =
            tx.prepare_cached("INSERT INTO cart_lines (customer, sku, qty) VALUES (?1, ?2, ?3)")?;
        for (sku, qty) in cart.lines() {
            insert.execute(params![id.as_str(), sku.as_str(), qty])?;
        }
    }
    Ok(())
}
