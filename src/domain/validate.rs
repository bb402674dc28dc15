//! Checks an op must pass before the local replica issues it, and the authority rules every
//! replica enforces on ops from others.
//! (Just over 500 lines: one `match` over every payload; per-topic checks live in their
//! modules, `validate/contact_field.rs`, `motion`, `till`, `ship_to_store`.)
//!
//! `check_authority` depends only on the op, so it gives the same verdict everywhere.
//! `validate` reads the local state: a replica always knows all of its own ops, so its own
//! rights are never overestimated, and nothing it issues can take stock below zero.

use super::error::DomainError;
use super::fiscal::FiscalChain;
use super::ids::{ActorId, Sku, StoreId};
use super::motion::{self, MotionKind};
use super::op::{Advance, Op, Payload};
use super::order::OrderStatus;
use super::state::State;
use std::collections::BTreeMap;

mod contact_field;
pub use contact_field::{check_email, check_phone, PHONE_DIGITS};

/// Longest product name, customer field or consent source we accept.
pub const TEXT_LEN_MAX: usize = 200;
/// Largest quantity in one line or stock movement.
pub const QTY_MAX: u32 = 100_000;
/// Highest price of one unit: one million euros.
pub const PRICE_CENTS_MAX: i64 = 100_000_000;
/// Most lines in one sale or order.
pub const LINES_MAX: usize = 200;

/// Whether `actor` may author this payload at all. Same answer on every replica.
pub fn check_authority(op: &Op) -> Result<(), DomainError> {
    may_author(&op.actor, &op.payload)
}

/// `check_authority` for a payload not yet stamped as an op (`Replica::check`).
pub fn may_author(actor: &ActorId, payload: &Payload) -> Result<(), DomainError> {
    let is_store = |s: &StoreId| actor.is_store(s);
    let ok = match payload {
        Payload::CatalogPut { .. } | Payload::CatalogCategory { .. } => actor.is_hq(),
        Payload::StockTransfer { store, to, .. } => {
            (is_store(store) && to.is_hq()) || (actor.is_hq() && to.is_store(store))
        }
        Payload::OrderPlace { store, .. } | Payload::OrderCancel { store, .. } => {
            actor.is_hq() || is_store(store)
        }
        Payload::CartSet { .. }
        | Payload::CartRemove { .. }
        | Payload::CustomerUpdate { .. }
        | Payload::ConsentSet { .. }
        | Payload::CustomerErase { .. } => true,
        Payload::ConflictResolve { store, .. } => actor.is_hq() || is_store(store),
        Payload::StockReceive { store, .. }
        | Payload::StockConsume { store, .. }
        | Payload::CountRecorded { store, .. }
        | Payload::RightsReturnRequested { store, .. }
        | Payload::Sale { store, .. }
        | Payload::OrderAdvance { store, .. }
        | Payload::OrderPick { store, .. }
        | Payload::OrderRelease { store, .. }
        | Payload::CustomerFollow { store, .. }
        | Payload::Invoice { store, .. }
        | Payload::ShipmentReceive { store, .. }
        | Payload::TransferReceive { store, .. }
        | Payload::Return { store, .. }
        | Payload::ReturnRightsRequested { by: store, .. }
        | Payload::ReturnRightsGranted { from: store, .. } => is_store(store),
        Payload::ShipmentNotice { .. }
        | Payload::PromotionPut { .. }
        | Payload::PromotionSet { .. } => actor.is_hq(),
        Payload::SalePriced { store, .. }
        | Payload::CashOpen { store, .. }
        | Payload::CashMove { store, .. }
        | Payload::CashClose { store, .. }
        | Payload::CashOpenTill { store, .. }
        | Payload::TakenAt { store, .. } => is_store(store),
        Payload::TransferDispatch { store, .. } => is_store(store),
        Payload::OrderShipToStore { .. } => actor.is_hq(),
        Payload::OrderArrived { store, .. }
        | Payload::ShipDispatch { store, .. }
        | Payload::ShipWithdraw { store, .. } => is_store(store),
    };
    if ok {
        Ok(())
    } else {
        Err(DomainError::Unauthorized {
            actor: actor.clone(),
            kind: payload.kind(),
        })
    }
}

fn qty(field: &'static str, qty: u32) -> Result<(), DomainError> {
    if qty == 0 || qty > QTY_MAX {
        return Err(DomainError::InvalidQty {
            field,
            qty: u64::from(qty),
            reason: "must be between 1 and 100000",
        });
    }
    Ok(())
}

fn text(field: &'static str, value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() || value.chars().count() > TEXT_LEN_MAX {
        return Err(DomainError::InvalidField {
            field,
            reason: format!("must be 1-{TEXT_LEN_MAX} characters, got {value:?}"),
        });
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::InvalidField {
            field,
            reason: format!("control characters in {value:?}"),
        });
    }
    Ok(())
}

fn known(state: &State, sku: &Sku) -> Result<(), DomainError> {
    if state.catalog.contains(sku) {
        Ok(())
    } else {
        Err(DomainError::UnknownSku(sku.clone()))
    }
}

/// Enough rights at `actor` for every (sku, qty), summed per sku.
fn has_rights<'a>(
    state: &State,
    store: &StoreId,
    actor: &ActorId,
    lines: impl Iterator<Item = (&'a Sku, u32)>,
) -> Result<(), DomainError> {
    let mut wanted: BTreeMap<&Sku, u64> = BTreeMap::new();
    let mut count = 0usize;
    for (sku, n) in lines {
        qty("qty", n)?;
        known(state, sku)?;
        *wanted.entry(sku).or_default() += u64::from(n);
        count += 1;
    }
    if count == 0 || count > LINES_MAX {
        return Err(DomainError::InvalidField {
            field: "lines",
            reason: format!("must hold 1-{LINES_MAX} lines, got {count}"),
        });
    }
    for (sku, requested) in wanted {
        let available = state.rights(store, sku, actor);
        if (available.max(0) as u64) < requested {
            return Err(DomainError::InsufficientStock {
                store: store.clone(),
                sku: sku.clone(),
                requested,
                available,
            });
        }
    }
    Ok(())
}

/// Every check the local replica runs before issuing `payload` as `actor`.
pub fn validate(state: &State, actor: &ActorId, payload: &Payload) -> Result<(), DomainError> {
    match payload {
        Payload::CatalogPut {
            name,
            price_cents,
            vat_bp,
            ..
        } => {
            text("name", name)?;
            if !(0..=PRICE_CENTS_MAX).contains(price_cents) {
                return Err(DomainError::InvalidField {
                    field: "price_cents",
                    reason: format!("must be 0-{PRICE_CENTS_MAX}, got {price_cents}"),
                });
            }
            if *vat_bp > 10_000 {
                return Err(DomainError::InvalidField {
                    field: "vat_bp",
                    reason: format!("must be 0-10000, got {vat_bp}"),
                });
            }
        }
        Payload::StockReceive { sku, qty: n, .. } => {
            qty("qty", *n)?;
            known(state, sku)?;
        }
        Payload::StockTransfer {
            store, sku, qty: n, ..
        }
        | Payload::StockConsume {
            store, sku, qty: n, ..
        } => has_rights(state, store, actor, std::iter::once((sku, *n)))?,
        Payload::CountRecorded { sku, .. } => known(state, sku)?,
        Payload::RightsReturnRequested { sku, qty: n, .. } => {
            qty("qty", *n)?;
            known(state, sku)?;
        }
        Payload::Sale {
            store,
            sale_id,
            lines,
            ..
        } => {
            if state.sales.contains_key(sale_id) {
                return Err(DomainError::DuplicateSale(sale_id.clone()));
            }
            has_rights(state, store, actor, lines.iter().map(|l| (&l.sku, l.qty)))?;
        }
        Payload::OrderPlace {
            order_id,
            store,
            customer,
            lines,
            pickup_code,
            ..
        } => {
            if state.orders.contains_key(order_id) {
                return Err(DomainError::DuplicateOrder(order_id.clone()));
            }
            if state.customer_erased(customer) {
                return Err(DomainError::CustomerErased(customer.clone()));
            }
            text("pickup_code", pickup_code)?;
            has_rights(state, store, actor, lines.iter().map(|l| (&l.sku, l.qty)))?;
        }
        Payload::OrderAdvance { order_id, to, .. } => validate_advance(state, order_id, *to)?,
        Payload::OrderPick {
            order_id,
            sku,
            picked,
            ..
        } => {
            let order = order(state, order_id)?;
            open(order_id, order.status)?;
            let line = order.lines.get(sku).ok_or(DomainError::NotInOrder {
                order: order_id.clone(),
                sku: sku.clone(),
            })?;
            if *picked <= line.picked || *picked > line.qty {
                return Err(DomainError::AlreadyPicked {
                    order: order_id.clone(),
                    sku: sku.clone(),
                    picked: line.picked,
                    qty: line.qty,
                });
            }
            let here = order.units_here(sku);
            if *picked > here {
                return Err(DomainError::NotArrived {
                    order: order_id.clone(),
                    sku: sku.clone(),
                    arrived: here,
                });
            }
        }
        Payload::OrderCancel { order_id, .. } => {
            let order = order(state, order_id)?;
            open(order_id, order.status)?;
        }
        Payload::OrderRelease { order_id, .. } => {
            let order = order(state, order_id)?;
            if order.released || order.status.is_open() || order.status == OrderStatus::HandedOver {
                return Err(DomainError::BadTransition {
                    order: order_id.clone(),
                    status: order.status.as_str(),
                    step: "release its units",
                });
            }
        }
        Payload::CartSet {
            customer,
            sku,
            qty: n,
        } => {
            if state.customer_erased(customer) {
                return Err(DomainError::CustomerErased(customer.clone()));
            }
            qty("qty", *n)?;
            known(state, sku)?;
        }
        Payload::CartRemove { customer, .. } | Payload::CustomerUpdate { customer, .. } => {
            if state.customer_erased(customer) {
                return Err(DomainError::CustomerErased(customer.clone()));
            }
            if let Payload::CustomerUpdate { patch, .. } = payload {
                for (field, value) in [
                    ("name", &patch.name),
                    ("email", &patch.email),
                    ("phone", &patch.phone),
                    ("loyalty_card", &patch.loyalty_card),
                ] {
                    if let Some(v) = value {
                        text(field, v)?;
                    }
                }
                if let Some(email) = &patch.email {
                    check_email(email)?;
                }
                if let Some(phone) = &patch.phone {
                    check_phone(phone)?;
                }
            }
        }
        Payload::ConsentSet {
            customer, source, ..
        } => {
            if state.customer_erased(customer) {
                return Err(DomainError::CustomerErased(customer.clone()));
            }
            text("source", source)?
        }
        Payload::CustomerErase { .. } | Payload::CustomerFollow { .. } => {}
        Payload::Return { store, .. }
        | Payload::ReturnRightsRequested { by: store, .. }
        | Payload::ReturnRightsGranted { from: store, .. } => {
            super::returns::validate(state, store, payload)?
        }
        Payload::Invoice { store, record } => {
            let fresh = FiscalChain::default();
            state
                .fiscal
                .get(store)
                .unwrap_or(&fresh)
                .check_next(record)
                .map_err(|reason| DomainError::InvalidField {
                    field: "invoice",
                    reason: format!("record {}: {reason}", record.numserie()),
                })?;
        }
        Payload::CatalogCategory { sku, .. } => {
            if !state.catalog.contains(sku) {
                return Err(DomainError::InvalidField {
                    field: "category",
                    reason: format!("no catalog entry for {sku}"),
                });
            }
        }
        Payload::ShipmentNotice {
            shipment,
            reference,
            lines,
            ..
        } => motion::validate_sent(state, MotionKind::Shipment, shipment, reference, lines)?,
        Payload::TransferDispatch {
            transfer,
            store,
            to,
            lines,
        } => {
            if to == store {
                return Err(DomainError::SameStore(store.clone()));
            }
            motion::validate_sent(state, MotionKind::Transfer, transfer, "", lines)?;
            has_rights(state, store, actor, lines.iter().map(|l| (&l.sku, l.qty)))?;
        }
        Payload::ShipmentReceive {
            shipment,
            store,
            lines,
            over_delivery,
        } => motion::validate_received(
            state,
            MotionKind::Shipment,
            shipment,
            store,
            lines,
            *over_delivery,
        )?,
        Payload::TransferReceive {
            transfer,
            store,
            from,
            lines,
            over_delivery,
        } => {
            motion::validate_received(
                state,
                MotionKind::Transfer,
                transfer,
                store,
                lines,
                *over_delivery,
            )?;
            let sender = state.transfers.get(transfer).and_then(|m| m.sent.as_ref());
            if sender.and_then(|s| s.from.as_ref()) != Some(from) {
                return Err(DomainError::InvalidField {
                    field: "from",
                    reason: format!("transfer {transfer} was not sent by {from}"),
                });
            }
        }
        Payload::ConflictResolve {
            store,
            conflict,
            action,
            note,
            by,
        } => validate_resolve(state, store, conflict, action, note, by)?,
        Payload::PromotionPut { .. }
        | Payload::PromotionSet { .. }
        | Payload::SalePriced { .. }
        | Payload::CashOpen { .. }
        | Payload::CashMove { .. }
        | Payload::CashClose { .. }
        | Payload::CashOpenTill { .. }
        | Payload::TakenAt { .. } => super::till::check(state, payload)?,
        Payload::OrderShipToStore {
            order_id,
            store,
            from,
            transfer,
            customer,
            lines,
            pickup_code,
            ..
        } => {
            if state.orders.contains_key(order_id) {
                return Err(DomainError::DuplicateOrder(order_id.clone()));
            }
            if state.customer_erased(customer) {
                return Err(DomainError::CustomerErased(customer.clone()));
            }
            if from == store {
                return Err(DomainError::SameStore(store.clone()));
            }
            text("pickup_code", pickup_code)?;
            motion::validate_sent(state, MotionKind::Transfer, transfer, "", lines)?;
            has_rights(state, from, actor, lines.iter().map(|l| (&l.sku, l.qty)))?;
        }
        Payload::OrderArrived {
            order_id,
            store,
            lines,
        } => super::ship_to_store::validate_arrived(state, order_id, store, lines)?,
        Payload::ShipDispatch {
            order_id,
            transfer,
            store,
            to,
        }
        | Payload::ShipWithdraw {
            order_id,
            transfer,
            store,
            to,
        } => {
            let withdraw = matches!(payload, Payload::ShipWithdraw { .. });
            super::ship_to_store::validate_ship_out(state, order_id, transfer, store, to, withdraw)?
        }
    }
    Ok(())
}

fn order<'a>(
    state: &'a State,
    id: &super::ids::OrderId,
) -> Result<&'a super::order::Order, DomainError> {
    state
        .orders
        .get(id)
        .ok_or_else(|| DomainError::UnknownOrder(id.clone()))
}

fn open(id: &super::ids::OrderId, status: OrderStatus) -> Result<(), DomainError> {
    match status {
        OrderStatus::HandedOver => Err(DomainError::AlreadyHandedOver(id.clone())),
        OrderStatus::Cancelled | OrderStatus::Expired => Err(DomainError::OrderClosed {
            order: id.clone(),
            status: status.as_str(),
        }),
        _ => Ok(()),
    }
}

fn validate_advance(
    state: &State,
    id: &super::ids::OrderId,
    to: Advance,
) -> Result<(), DomainError> {
    let order = order(state, id)?;
    open(id, order.status)?;
    let bad = |step| DomainError::BadTransition {
        order: id.clone(),
        status: order.status.as_str(),
        step,
    };
    match to {
        Advance::Picking if order.status != OrderStatus::Placed => Err(bad("start picking")),
        Advance::Ready if order.status == OrderStatus::Ready => Err(bad("mark ready")),
        Advance::Ready if !order.fully_picked() => Err(DomainError::NotPicked(id.clone())),
        Advance::HandedOver if order.status != OrderStatus::Ready => Err(bad("hand over")),
        _ => Ok(()),
    }
}

fn validate_resolve(
    state: &State,
    store: &StoreId,
    id: &str,
    action: &str,
    note: &str,
    by: &str,
) -> Result<(), DomainError> {
    text("by", by)?;
    if note.chars().count() > super::conflict::RESOLVE_TEXT_MAX
        || note.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(DomainError::InvalidField {
            field: "note",
            reason: format!(
                "must be at most {} characters without control characters",
                super::conflict::RESOLVE_TEXT_MAX
            ),
        });
    }
    let item = super::conflict::find(state, id).ok_or_else(|| DomainError::InvalidField {
        field: "conflict",
        reason: format!("no conflict {id:?} here"),
    })?;
    if &item.store != store {
        return Err(DomainError::InvalidField {
            field: "store",
            reason: format!("conflict {id} belongs to {}, not {store}", item.store),
        });
    }
    if !item.actions.iter().any(|a| a == action) {
        return Err(DomainError::InvalidField {
            field: "action",
            reason: format!(
                "{action:?} is not offered for {id}: one of {}",
                item.actions.join(", ")
            ),
        });
    }
    Ok(())
}
