//! Ship-to-store (DESIGN.md §19): a pickup order for a store that lacks the stock, fulfilled
//! by a transfer from another store out of the rights HQ holds there.
//!
//! `plan_order` decides, on HQ's replica, between a plain `OrderPlace` (HQ's rights at the
//! pickup store cover every line) and an `OrderShipToStore` from the first other store where
//! HQ's rights cover every line. An order only several stores together could fulfil is
//! refused (`NoSingleSource`, naming where HQ's rights are), never split. Either way a replica spends only rights it holds itself, so
//! neither store can be oversold. At the pickup store the transfer's receipt creates the
//! units and `plan_arrivals` sets aside what the order still awaits (`OrderArrived`, in the
//! receipt's commit); picking is refused beyond what arrived, so the order is ready only once
//! the store has received and picked it.
//!
//! The sending store scans the units out (`ShipDispatch`) when they physically leave; until
//! then they are on its shelf, set aside (a count there does not re-add them). An order
//! cancelled or expired before that gives them back to the sender (`plan_withdrawals`:
//! `ShipWithdraw`). Only the sender issues either, once, checked against its own state, so
//! the units are either in transit or back on its shelf, never both.

use super::error::{DomainError, SplitRefusal};
use super::ids::{ActorId, CustomerId, MotionId, OrderId, Sku, StoreId};
use super::op::{OrderLine, Payload, ReceiptLine};
use super::order::OrderStatus;
use super::state::State;
use super::validate::validate;
use std::collections::BTreeMap;

/// How long a transfer takes before the customer may collect, when HQ's config says nothing:
/// two days.
pub const LEAD_MS_DEFAULT: u64 = 2 * 24 * 60 * 60 * 1000;

/// A pickup order as the shop asked for it, with the ids the adapter drew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub order_id: OrderId,
    pub store: StoreId,
    pub customer: CustomerId,
    pub lines: Vec<OrderLine>,
    pub pickup_code: String,
    /// The transfer's id, used only when the order ships from another store.
    pub transfer: MotionId,
}

/// The order op `actor` (HQ) should issue for `req` at `now_ms`: from its rights at the
/// pickup store, else shipped from the first of `sources` (other stores, in preference order)
/// whose HQ rights cover every line, ready `lead_ms` later. When none can, the pickup store's
/// own refusal (`insufficient_stock` naming what HQ can sell there).
pub fn plan_order(
    state: &State,
    actor: &ActorId,
    sources: &[StoreId],
    req: OrderRequest,
    now_ms: u64,
    lead_ms: u64,
) -> Result<Payload, DomainError> {
    let here = Payload::OrderPlace {
        order_id: req.order_id.clone(),
        store: req.store.clone(),
        customer: req.customer.clone(),
        lines: req.lines.clone(),
        pickup_code: req.pickup_code.clone(),
        placed_at_ms: now_ms,
    };
    let refusal = match validate(state, actor, &here) {
        Ok(()) => return Ok(here),
        Err(e @ DomainError::InsufficientStock { .. }) => e,
        Err(e) => return Err(e),
    };
    for from in sources.iter().filter(|s| **s != req.store) {
        let shipped = Payload::OrderShipToStore {
            order_id: req.order_id.clone(),
            store: req.store.clone(),
            from: from.clone(),
            transfer: req.transfer.clone(),
            customer: req.customer.clone(),
            lines: req.lines.clone(),
            pickup_code: req.pickup_code.clone(),
            placed_at_ms: now_ms,
            ready_by_ms: now_ms.saturating_add(lead_ms),
        };
        if validate(state, actor, &shipped).is_ok() {
            return Ok(shipped);
        }
    }
    Err(split_refusal(state, actor, sources, &req, refusal))
}

/// The refusal for an order no single store can fulfil: `NoSingleSource` when HQ's rights
/// across the pickup store and `sources` would cover every line (the shop may split it into
/// one order per store), else the pickup store's own `refusal`.
///
/// Not split here on purpose: one order, one pickup code, one transfer. A split order would
/// need several transfers arriving apart, a ready date set by the slowest, and cancels and
/// shorts per part; several orders, which the shop can place from `sources`, already have all
/// of that, each with its own date.
fn split_refusal(
    state: &State,
    actor: &ActorId,
    sources: &[StoreId],
    req: &OrderRequest,
    refusal: DomainError,
) -> DomainError {
    let DomainError::InsufficientStock {
        store,
        sku,
        requested,
        available,
    } = refusal
    else {
        return refusal;
    };
    let mut wanted: BTreeMap<&Sku, u64> = BTreeMap::new();
    for l in &req.lines {
        *wanted.entry(&l.sku).or_default() += u64::from(l.qty);
    }
    let candidates: Vec<&StoreId> = std::iter::once(&req.store)
        .chain(sources.iter().filter(|s| **s != req.store))
        .collect();
    let mut per_sku = Vec::with_capacity(wanted.len());
    let mut covered = !sources.iter().all(|s| *s == req.store);
    for (k, qty) in &wanted {
        let stores: Vec<(StoreId, i64)> = candidates
            .iter()
            .map(|s| ((*s).clone(), state.rights(s, k, actor)))
            .filter(|(_, n)| *n > 0)
            .collect();
        covered &= stores.iter().map(|(_, n)| *n as u64).sum::<u64>() >= *qty;
        per_sku.push(((*k).clone(), stores));
    }
    if !covered {
        return DomainError::InsufficientStock {
            store,
            sku,
            requested,
            available,
        };
    }
    DomainError::NoSingleSource(Box::new(SplitRefusal {
        store,
        sku,
        requested,
        available,
        sources: per_sku,
    }))
}

/// The open ship-to-store order of `store` that `transfer` carries units for, if any.
fn order_for<'a>(
    state: &'a State,
    transfer: &MotionId,
    store: &StoreId,
) -> Option<&'a super::order::Order> {
    let sent = state.transfers.get(transfer)?.sent.as_ref()?;
    let order = state.orders.get(&OrderId::parse(&sent.reference).ok()?)?;
    let ours = order.ship.as_ref().is_some_and(|s| &s.transfer == transfer);
    (ours && &order.store == store && order.status.is_open() && !order.released).then_some(order)
}

/// What `store` sets aside for a ship-to-store order when it receives `transfer` with
/// `lines`: per sku the good units received, up to what the order still awaits. `None` when
/// the transfer serves no open order of this store (a plain transfer, or one whose order was
/// cancelled: its units simply become the store's).
pub fn plan_arrivals(
    state: &State,
    transfer: &MotionId,
    store: &StoreId,
    lines: &[ReceiptLine],
) -> Option<Payload> {
    let order = order_for(state, transfer, store)?;
    let mut good: BTreeMap<&Sku, u32> = BTreeMap::new();
    for l in lines {
        *good.entry(&l.sku).or_default() += l.received.saturating_sub(l.damaged);
    }
    let arrived: Vec<OrderLine> = order
        .awaiting()
        .into_iter()
        .filter_map(|(sku, wanted)| {
            let qty = good.get(&sku).copied().unwrap_or(0).min(wanted);
            (qty > 0).then_some(OrderLine { sku, qty })
        })
        .collect();
    (!arrived.is_empty()).then(|| Payload::OrderArrived {
        order_id: order.id.clone(),
        store: store.clone(),
        lines: arrived,
    })
}

/// Checks for `OrderArrived`: an open ship-to-store order of `store` whose transfer `store`
/// has received, each line a sku of the order once, 1 up to what it still awaits, and the
/// store's rights (which the receipt created) cover it.
pub(crate) fn validate_arrived(
    state: &State,
    order_id: &OrderId,
    store: &StoreId,
    lines: &[OrderLine],
) -> Result<(), DomainError> {
    let order = state
        .orders
        .get(order_id)
        .ok_or_else(|| DomainError::UnknownOrder(order_id.clone()))?;
    let bad = |step| DomainError::BadTransition {
        order: order_id.clone(),
        status: order.status.as_str(),
        step,
    };
    let ship = order
        .ship
        .as_ref()
        .ok_or_else(|| bad("receive units by transfer"))?;
    if &order.store != store || !order.status.is_open() || order.released {
        return Err(bad("set units aside"));
    }
    let received = state
        .transfers
        .get(&ship.transfer)
        .is_some_and(|m| m.received.is_some());
    if !received {
        return Err(DomainError::UnknownMovement {
            kind: "transfer",
            id: ship.transfer.clone(),
        });
    }
    let awaiting: BTreeMap<Sku, u32> = order.awaiting().into_iter().collect();
    let mut seen: Vec<&Sku> = Vec::new();
    if lines.is_empty() {
        return Err(DomainError::InvalidField {
            field: "lines",
            reason: "must hold at least one line".into(),
        });
    }
    for l in lines {
        if seen.contains(&&l.sku) {
            return Err(DomainError::InvalidField {
                field: "lines",
                reason: format!("{} appears twice", l.sku),
            });
        }
        seen.push(&l.sku);
        let wanted = awaiting.get(&l.sku).copied().unwrap_or(0);
        if l.qty == 0 || l.qty > wanted {
            return Err(DomainError::InvalidQty {
                field: "qty",
                qty: u64::from(l.qty),
                reason: "must be 1 up to the units the order still awaits",
            });
        }
        let rights = state.rights(store, &l.sku, &store.actor());
        if rights < i64::from(l.qty) {
            return Err(DomainError::InsufficientStock {
                store: store.clone(),
                sku: l.sku.clone(),
                requested: u64::from(l.qty),
                available: rights,
            });
        }
    }
    Ok(())
}

/// Whether an order is a ship-to-store order still waiting for units (for lists and the
/// shop's answer: `awaiting_transfer`).
pub fn awaiting_transfer(order: &super::order::Order) -> bool {
    order.status == OrderStatus::Placed && !order.awaiting().is_empty()
}

/// Checks for `ShipDispatch` (`withdraw` false) or `ShipWithdraw` by `store`: the sender of
/// ship-to-store order `order_id` to `to` by `transfer`, its units still on the shelf (not
/// dispatched, withdrawn or received); dispatch needs the order open, withdrawal a cancelled
/// or expired one.
pub(crate) fn validate_ship_out(
    state: &State,
    order_id: &OrderId,
    transfer: &MotionId,
    store: &StoreId,
    to: &StoreId,
    withdraw: bool,
) -> Result<(), DomainError> {
    let order = state
        .orders
        .get(order_id)
        .ok_or_else(|| DomainError::UnknownOrder(order_id.clone()))?;
    let unknown = || DomainError::UnknownMovement {
        kind: "transfer",
        id: transfer.clone(),
    };
    let ship = order.ship.as_ref().ok_or_else(unknown)?;
    if &ship.store != store || &ship.transfer != transfer || &order.store != to {
        return Err(unknown());
    }
    let m = state.transfers.get(transfer).ok_or_else(unknown)?;
    if m.received.is_some() {
        return Err(DomainError::AlreadyReceived {
            kind: "transfer",
            id: transfer.clone(),
        });
    }
    if m.dispatch.is_some() {
        return Err(DomainError::AlreadyDispatched(transfer.clone()));
    }
    let cancelled = matches!(order.status, OrderStatus::Cancelled | OrderStatus::Expired);
    if withdraw != cancelled {
        return Err(DomainError::BadTransition {
            order: order_id.clone(),
            status: order.status.as_str(),
            step: if withdraw {
                "keep its units at the sender"
            } else {
                "dispatch its units"
            },
        });
    }
    Ok(())
}

/// `ShipWithdraw` for every ship-to-store order `store` sends whose units are still on its
/// shelf and that was cancelled or expired: the sender keeps the units.
pub fn plan_withdrawals(state: &State, store: &StoreId) -> Vec<Payload> {
    state
        .awaiting_dispatch()
        .filter_map(|m| {
            let sent = m.sent.as_ref()?;
            (sent.from.as_ref() == Some(store)).then_some(())?;
            let order = state.orders.get(&OrderId::parse(&sent.reference).ok()?)?;
            let over = matches!(order.status, OrderStatus::Cancelled | OrderStatus::Expired);
            over.then(|| Payload::ShipWithdraw {
                order_id: order.id.clone(),
                transfer: m.id.clone(),
                store: store.clone(),
                to: sent.to.clone(),
            })
        })
        .collect()
}

/// The `ShipDispatch` `store` issues for transfer `transfer` it sends for a ship-to-store
/// order, or `None` when it is not such a transfer of this store.
pub fn dispatch_of(state: &State, transfer: &MotionId, store: &StoreId) -> Option<Payload> {
    let sent = state.transfers.get(transfer)?.sent.as_ref()?;
    if sent.from.as_ref() != Some(store) || !sent.awaits_dispatch {
        return None;
    }
    Some(Payload::ShipDispatch {
        order_id: OrderId::parse(&sent.reference).ok()?,
        transfer: transfer.clone(),
        store: store.clone(),
        to: sent.to.clone(),
    })
}
