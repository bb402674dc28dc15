//! Merging orders into the state, ship-to-store ones included (DESIGN.md §19): an
//! `OrderShipToStore` consumes HQ's rights at the sending store and puts the units in transit
//! to the order's store, where nothing is consumed until `OrderArrived` sets the received
//! units aside for the order.

use super::{Effect, State};
use crate::domain::ids::{ActorId, OrderId, SaleId, StoreId};
use crate::domain::motion::{merge_sent, MotionKind, Sent};
use crate::domain::op::{Op, OrderLine, Payload};
use crate::domain::order::{Order, ShipFrom};

impl State {
    /// Index a new order by line and announce it.
    pub(super) fn insert_order(&mut self, order: Order, effects: &mut Vec<Effect>) {
        let order_id = order.id.clone();
        for sku in order.lines.keys() {
            let ids = self
                .orders_by_line
                .entry((order.store.clone(), sku.clone()))
                .or_default();
            if !ids.contains(&order_id) {
                ids.push(order_id.clone());
            }
        }
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
        };
        merge_sent(&mut self.transfers, MotionKind::Transfer, transfer, sent);
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
}
