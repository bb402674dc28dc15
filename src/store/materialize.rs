//! Rewriting the materialised rows an op changed, inside the op's own transaction, so what
//! SQL readers see always matches the op log.
//!
//! Rows are upserted (`ON CONFLICT DO UPDATE`), not `INSERT OR REPLACE`d: REPLACE deletes the
//! row and inserts it again under a new rowid, which dirties the old table page, the table's
//! last page and the key index twice; an upsert rewrites the row where it is. A stock row is
//! rewritten on most ops, so this is most of the pages a group commit writes.

use crate::domain::{ActorId, CustomerId, Op, OrderId, Payload, SaleId, Sku, State, StoreId};
use rusqlite::{params, Transaction};

/// Write the rows `op` changed, read from `state` after the op was applied.
pub fn rows_for(tx: &Transaction, state: &State, op: &Op) -> rusqlite::Result<()> {
    match &op.payload {
        Payload::CatalogPut { sku, .. } => catalog(tx, state, sku),
        Payload::StockReceive { store, sku, .. }
        | Payload::StockTransfer { store, sku, .. }
        | Payload::StockConsume { store, sku, .. } => stock(tx, state, store, sku),
        Payload::Sale {
            store,
            sale_id,
            lines,
            ..
        } => {
            for line in lines {
                stock(tx, state, store, &line.sku)?;
            }
            sale(tx, state, sale_id)
        }
        Payload::OrderPlace {
            order_id,
            store,
            customer,
            ..
        } => {
            order_with_stock(tx, state, order_id, store)?;
            customer_rows(tx, state, customer)
        }
        Payload::OrderAdvance {
            order_id, store, ..
        }
        | Payload::OrderPick {
            order_id, store, ..
        }
        | Payload::OrderCancel {
            order_id, store, ..
        }
        | Payload::OrderRelease { order_id, store } => order_with_stock(tx, state, order_id, store),
        Payload::CartSet { customer, .. }
        | Payload::CartRemove { customer, .. }
        | Payload::CustomerUpdate { customer, .. }
        | Payload::ConsentSet { customer, .. }
        | Payload::CustomerErase { customer }
        | Payload::CustomerFollow { customer, .. } => customer_rows(tx, state, customer),
        // A restocked return changes the receiving store's stock row; the rest lives in the
        // op log and the replica (no table of returns yet).
        Payload::Return { store, lines, .. } => {
            for line in lines {
                stock(tx, state, store, &line.sku)?;
            }
            Ok(())
        }
        Payload::Invoice { store, record } => super::fiscal::insert_record(tx, store, record),
        Payload::CountRecorded { .. }
        | Payload::RightsReturnRequested { .. }
        | Payload::ShipmentNotice { .. }
        | Payload::ConflictResolve { .. }
        | Payload::ReturnRightsRequested { .. }
        | Payload::ReturnRightsGranted { .. }
        | Payload::PromotionPut { .. }
        | Payload::SalePriced { .. }
        | Payload::CashOpen { .. }
        | Payload::CashMove { .. }
        | Payload::CashClose { .. } => Ok(()),
        Payload::TransferDispatch { store, lines, .. } => {
            for line in lines {
                stock(tx, state, store, &line.sku)?;
            }
            Ok(())
        }
        Payload::ShipmentReceive { store, lines, .. }
        | Payload::TransferReceive { store, lines, .. } => {
            for line in lines {
                stock(tx, state, store, &line.sku)?;
            }
            Ok(())
        }
    }
}

fn catalog(tx: &Transaction, state: &State, sku: &Sku) -> rusqlite::Result<()> {
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
        p.ean.as_str(),
        p.name,
        p.price_cents,
        p.vat_bp
    ])?;
    Ok(())
}

fn stock(tx: &Transaction, state: &State, store: &StoreId, sku: &Sku) -> rusqlite::Result<()> {
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

fn order_with_stock(
    tx: &Transaction,
    state: &State,
    id: &OrderId,
    store: &StoreId,
) -> rusqlite::Result<()> {
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
        stock(tx, state, store, sku)?;
    }
    Ok(())
}

fn sale(tx: &Transaction, state: &State, id: &SaleId) -> rusqlite::Result<()> {
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

fn customer_rows(tx: &Transaction, state: &State, id: &CustomerId) -> rusqlite::Result<()> {
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
