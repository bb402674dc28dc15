//! Merging orders into the state, ship-to-store ones included (DESIGN.md §19): an
//! `OrderShipToStore` consumes HQ's rights at the sending store and opens a transfer to the
//! order's store, where nothing is consumed until `OrderArrived` sets the received units aside
//! for the order. Until the sender's `ShipDispatch` the units are still on its shelf
//! (`State::outgoing`); a `ShipWithdraw` gives them back to the sender.

use super::{Effect, State};
use crate::domain::ids::{ActorId, MotionId, OrderId, SaleId, StoreId};
use crate::domain::motion::{merge_dispatch, merge_sent, Dispatch, MotionKind, Sent};
use crate::domain::op::{Op, OrderLine, Payload};
use crate::domain::order::{Order, ShipFrom};

impl State {
    /// Index a new order by line and announce it.
    pub(super) fn insert_order(&mut self, order: Order, effects: &mut Vec<Effect>) {
        let order_id = order.id.clone();
        self.index_order(&order);
        let store = order.store.clone();
        self.orders.insert(order_id.clone(), order);
        if let Ok(sale) = SaleId::parse(order_id.as_str()) {
            self.recheck_double_returns(&sale);
        }
        effects.push(Effect::OrderPlaced {
            order: order_id,
            store,
        });
    }

    /// List `order` under each of its lines in `orders_by_line` (once).
    pub(crate) fn index_order(&mut self, order: &Order) {
        for sku in order.lines.keys() {
            let ids = self
                .orders_by_line
                .entry((order.store.clone(), sku.clone()))
                .or_default();
            if !ids.contains(&order.id) {
                ids.push(order.id.clone());
            }
        }
    }

    /// Take `order` out of `orders_by_line` (it leaves memory, `history`), dropping lines
    /// left without orders.
    pub(crate) fn unindex_order(&mut self, order: &Order) {
        for sku in order.lines.keys() {
            let key = (order.store.clone(), sku.clone());
            if let Some(ids) = self.orders_by_line.get_mut(&key) {
                ids.retain(|id| id != &order.id);
                if ids.is_empty() {
                    self.orders_by_line.remove(&key);
                }
            }
        }
    }

    /// A ship-to-store order: HQ's rights at the sending store are consumed and the units put
    /// in transit to the order's store, where nothing is consumed (they are not there yet).
    pub(super) fn merge_ship_to_store(&mut self, op: &Op, effects: &mut Vec<Effect>) {
        let Payload::OrderShipToStore {
            order_id,
            store,
            from,
            transfer,
            customer,
            lines,
            pickup_code,
            placed_at_ms,
            ready_by_ms,
        } = &op.payload
        else {
            return;
        };
        for line in lines {
            self.counter_mut(from, &line.sku)
                .consume(&op.actor, line.qty);
        }
        let sent = Sent {
            from: Some(from.clone()),
            to: store.clone(),
            reference: order_id.as_str().to_string(),
            lines: lines.clone(),
            at: op.hlc,
            awaits_dispatch: true,
        };
        merge_sent(&mut self.transfers, MotionKind::Transfer, transfer, sent);
        self.reindex_dispatch(transfer);
        let mut order = Order::new(
            order_id.clone(),
            store.clone(),
            customer.clone(),
            op.actor.clone(),
            *placed_at_ms,
            op.hlc,
            pickup_code.clone(),
            lines,
        );
        order.ship = Some(ShipFrom {
            store: from.clone(),
            transfer: transfer.clone(),
            ready_by_ms: *ready_by_ms,
        });
        self.insert_order(order, effects);
    }

    /// Units the order's store set aside for a ship-to-store order (`U[store] += qty`; its
    /// transfer's receipt created them).
    pub(super) fn merge_arrived(
        &mut self,
        actor: &ActorId,
        order_id: &OrderId,
        store: &StoreId,
        lines: &[OrderLine],
    ) {
        for line in lines {
            self.counter_mut(store, &line.sku).consume(actor, line.qty);
        }
        if let Some(order) = self.orders.get_mut(order_id) {
            for line in lines {
                *order.arrived.entry(line.sku.clone()).or_default() += line.qty;
            }
        }
    }

    /// The sender scanned a ship-to-store transfer out (`ShipDispatch`: the units left its
    /// shelf) or kept its units (`ShipWithdraw`: `R[store][store] += qty` per line, once).
    pub(super) fn merge_ship_out(&mut self, op: &Op, effects: &mut Vec<Effect>) {
        let (Payload::ShipDispatch {
            transfer, store, ..
        }
        | Payload::ShipWithdraw {
            transfer, store, ..
        }) = &op.payload
        else {
            return;
        };
        let withdrawn = matches!(op.payload, Payload::ShipWithdraw { .. });
        if withdrawn {
            let lines: Vec<OrderLine> = self
                .transfers
                .get(transfer)
                .and_then(|m| m.sent.as_ref())
                .map(|s| s.lines.clone())
                .unwrap_or_default();
            for line in &lines {
                self.create_units(store, &line.sku, &op.actor, line.qty, effects);
            }
        }
        let dispatch = Dispatch {
            withdrawn,
            at: op.hlc,
        };
        merge_dispatch(&mut self.transfers, transfer, dispatch);
        self.reindex_dispatch(transfer);
    }

    /// Keep `awaiting_dispatch` true to the transfer: a function of the movement alone, so
    /// the index is the same whatever order its halves arrived in.
    pub(super) fn reindex_dispatch(&mut self, transfer: &MotionId) {
        let waiting = self
            .transfers
            .get(transfer)
            .is_some_and(|m| m.awaiting_dispatch());
        if waiting {
            self.awaiting_dispatch.insert(transfer.clone());
        } else {
            self.awaiting_dispatch.remove(transfer);
        }
    }
}
