//! The merged state of a replica and the merge of one op into it.
//!
//! `merge` is total: it never refuses, so every replica that holds the same set of ops holds
//! the same state, whatever order they arrived in. Refusals happen before an op exists, in
//! `validate`. Order ops that arrive before their placement wait in `pending_order_ops`.

use super::cart::Cart;
use super::catalog::{Catalog, Product};
use super::conflict::Resolution;
use super::customer::{Consent, Customer};
use super::fiscal::FiscalChain;
use super::hlc::Hlc;
use super::ids::{ActorId, CustomerId, MotionId, OrderId, SaleId, Sku, StoreId};
use super::inventory::EscrowCounter;
use super::motion::{merge_received, merge_sent, MotionKind, Movement, Received, Sent};
use super::op::{ConsumeReason, Op, OpId, Payload, SaleLine, Tender};
use super::order::{Order, OrderStatus, ShipFrom};
use super::returns::ReturnBook;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A till sale as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SaleRecord {
    pub id: SaleId,
    pub store: StoreId,
    pub lines: Vec<SaleLine>,
    pub tender: Tender,
    pub customer: Option<CustomerId>,
    pub at: Hlc,
}

impl SaleRecord {
    pub fn total_cents(&self) -> i64 {
        self.lines
            .iter()
            .map(|l| l.unit_cents * i64::from(l.qty))
            .sum()
    }
}

/// A physical count as recorded for the manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountRecord {
    pub store: StoreId,
    pub sku: Sku,
    pub counted: u32,
    pub expected: u32,
    pub shrinkage: u32,
    pub at: Hlc,
}

/// Something an adapter should do because an op was applied (sans-IO effects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// An order became ready: HQ notifies the shop.
    OrderReady { order: OrderId, store: StoreId },
    /// An order was placed: the store shows it in its queue.
    OrderPlaced { order: OrderId, store: StoreId },
    /// HQ cancelled an order of this store: the store should return its units.
    ReleaseNeeded { order: OrderId, store: StoreId },
    /// A store asked HQ to hand back rights.
    ReturnRequested { store: StoreId, sku: Sku, qty: u32 },
    /// The store's rights grew while a shortfall is open: cover it.
    CoverShortfall { store: StoreId, sku: Sku },
}

/// Everything a replica knows.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub catalog: Catalog,
    pub stock: BTreeMap<(StoreId, Sku), EscrowCounter>,
    pub orders: BTreeMap<OrderId, Order>,
    pub carts: BTreeMap<CustomerId, Cart>,
    pub customers: BTreeMap<CustomerId, Customer>,
    pub sales: BTreeMap<SaleId, SaleRecord>,
    pub counts: BTreeMap<OpId, CountRecord>,
    /// Units a count found missing that no rights covered yet, per (store, sku).
    pub shortfall: BTreeMap<(StoreId, Sku), u64>,
    /// Customers a store brought into its scope.
    pub follows: BTreeSet<(StoreId, CustomerId)>,
    /// Returns, return rights and double returns (see `returns`).
    pub returns: ReturnBook,
    /// Each store's VERI*FACTU chain head, checked as records arrive.
    pub fiscal: BTreeMap<StoreId, FiscalChain>,
    /// Deliveries HQ announced, by id (DESIGN.md section 19).
    pub shipments: BTreeMap<MotionId, Movement>,
    /// Transfers between stores, by id.
    pub transfers: BTreeMap<MotionId, Movement>,
    /// Resolutions of conflict inbox items by id (last writer by `(hlc, actor)` wins).
    pub resolutions: BTreeMap<String, Resolution>,
    /// When each erased customer was first erased (earliest erase op).
    pub erased_at: BTreeMap<CustomerId, Hlc>,
    /// Every price HQ set per sku, sorted by `(hlc, actor)`: the price in force at a moment.
    price_log: BTreeMap<Sku, Vec<(Hlc, ActorId, i64)>>,
    pending_order_ops: BTreeMap<OrderId, Vec<Op>>,
    /// Orders that have (or had) a line of each (store, sku), so `reserved` reads only those
    /// instead of scanning every order: a stock row is rewritten on most ops.
    /// A `Vec` (few orders per line, deduplicated on insert) costs far less memory than a set.
    orders_by_line: BTreeMap<(StoreId, Sku), Vec<OrderId>>,
}

impl State {
    /// Rebuild the large maps with densely packed nodes. A `BTreeMap` filled in key order (as a
    /// replay of the log mostly does) leaves its nodes about half full; rebuilding from the
    /// sorted entries fills them. Contents and iteration order are unchanged.
    pub fn compact(&mut self) {
        fn repack<K: Ord, V>(map: &mut BTreeMap<K, V>) {
            *map = std::mem::take(map).into_iter().collect();
        }
        self.catalog.compact();
        repack(&mut self.stock);
        repack(&mut self.orders);
        repack(&mut self.carts);
        repack(&mut self.customers);
        repack(&mut self.sales);
        repack(&mut self.counts);
        repack(&mut self.orders_by_line);
    }

    pub fn counter(&self, store: &StoreId, sku: &Sku) -> Option<&EscrowCounter> {
        self.stock.get(&(store.clone(), sku.clone()))
    }

    fn counter_mut(&mut self, store: &StoreId, sku: &Sku) -> &mut EscrowCounter {
        self.stock.entry((store.clone(), sku.clone())).or_default()
    }

    /// Units `actor` may consume at (store, sku).
    pub fn rights(&self, store: &StoreId, sku: &Sku, actor: &ActorId) -> i64 {
        self.counter(store, sku).map_or(0, |c| c.rights(actor))
    }

    /// Total sellable units at (store, sku): the sum of every replica's rights.
    pub fn available(&self, store: &StoreId, sku: &Sku) -> i64 {
        self.counter(store, sku).map_or(0, |c| c.available())
    }

    /// Units reserved by open orders at the store and not yet handed over.
    pub fn reserved(&self, store: &StoreId, sku: &Sku) -> u64 {
        let Some(ids) = self.orders_by_line.get(&(store.clone(), sku.clone())) else {
            return 0;
        };
        ids.iter()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| &o.store == store)
            .map(|o| u64::from(o.reserved_units(sku)))
            .sum()
    }

    /// What should be on the shelf: available plus reserved and not yet collected.
    pub fn on_hand(&self, store: &StoreId, sku: &Sku) -> i64 {
        self.available(store, sku) + self.reserved(store, sku) as i64
    }

    /// HQ's price for `sku` in force just before `at` and when it was set: the last price put
    /// with an HLC below `at`.
    pub fn price_at(&self, sku: &Sku, at: Hlc) -> Option<(Hlc, i64)> {
        let log = self.price_log.get(sku)?;
        let before = log.partition_point(|(h, _, _)| *h < at);
        before.checked_sub(1).map(|i| (log[i].0, log[i].2))
    }

    pub fn product(&self, sku: &Sku) -> Option<&Product> {
        self.catalog.get(sku)
    }

    pub fn customer_erased(&self, customer: &CustomerId) -> bool {
        self.customers.get(customer).is_some_and(|c| c.is_erased())
    }

    /// Open orders at `store` not collected within `expire_after_ms` of placement: the store
    /// should expire them (which returns their units).
    pub fn overdue_orders(
        &self,
        store: &StoreId,
        now_ms: u64,
        expire_after_ms: u64,
    ) -> Vec<OrderId> {
        self.orders
            .values()
            .filter(|o| &o.store == store && o.is_overdue(now_ms, expire_after_ms))
            .map(|o| o.id.clone())
            .collect()
    }

    /// Carts with lines that nobody touched for `idle_ms`, oldest first, for follow-up.
    pub fn abandoned_carts(&self, now_ms: u64, idle_ms: u64) -> Vec<(CustomerId, Hlc)> {
        let mut carts: Vec<(CustomerId, Hlc)> = self
            .carts
            .iter()
            .filter(|(_, cart)| super::cart::is_abandoned(cart, now_ms, idle_ms))
            .map(|(c, cart)| (c.clone(), cart.updated()))
            .collect();
        carts.sort_by_key(|(_, at)| *at);
        carts
    }

    /// Customers whose data a store holds: orders or sales there, or looked up there.
    pub fn customers_in_scope(&self, store: &StoreId) -> BTreeSet<CustomerId> {
        let mut scope: BTreeSet<CustomerId> = self
            .follows
            .iter()
            .filter(|(s, _)| s == store)
            .map(|(_, c)| c.clone())
            .collect();
        scope.extend(
            self.orders
                .values()
                .filter(|o| &o.store == store)
                .map(|o| o.customer.clone()),
        );
        scope.extend(
            self.sales
                .values()
                .filter(|s| &s.store == store)
                .filter_map(|s| s.customer.clone()),
        );
        scope
    }

    /// Merge one new (never seen) op. Total: never refuses.
    pub(crate) fn merge(&mut self, op: &Op, effects: &mut Vec<Effect>) {
        if let Some(order_id) = op.payload.order() {
            let is_place = matches!(
                op.payload,
                Payload::OrderPlace { .. } | Payload::OrderShipToStore { .. }
            );
            if !is_place && !self.orders.contains_key(order_id) {
                self.pending_order_ops
                    .entry(order_id.clone())
                    .or_default()
                    .push(op.clone());
                return;
            }
        }
        self.merge_payload(op, effects);
        if let Payload::OrderPlace { order_id, .. } | Payload::OrderShipToStore { order_id, .. } =
            &op.payload
        {
            for waiting in self.pending_order_ops.remove(order_id).unwrap_or_default() {
                self.merge_payload(&waiting, effects);
            }
        }
    }

    fn merge_payload(&mut self, op: &Op, effects: &mut Vec<Effect>) {
        let actor = &op.actor;
        let marker = (op.hlc, actor.clone());
        match &op.payload {
            Payload::CatalogPut {
                sku,
                ean,
                name,
                price_cents,
                vat_bp,
            } => {
                let log = self.price_log.entry(sku.clone()).or_default();
                let entry = (op.hlc, actor.clone(), *price_cents);
                let at = log.partition_point(|e| (e.0, &e.1) < (entry.0, &entry.1));
                log.insert(at, entry);
                self.catalog.put(
                    Product {
                        sku: sku.clone(),
                        ean: ean.clone(),
                        name: name.clone(),
                        price_cents: *price_cents,
                        vat_bp: *vat_bp,
                    },
                    marker,
                )
            }
            Payload::StockReceive {
                store, sku, qty, ..
            } => {
                self.counter_mut(store, sku).create(actor, *qty);
                self.rights_grew(store, sku, actor, effects);
            }
            Payload::StockTransfer {
                store,
                sku,
                to,
                qty,
            } => {
                self.counter_mut(store, sku).transfer(actor, to, *qty);
                self.rights_grew(store, sku, to, effects);
            }
            Payload::StockConsume {
                store,
                sku,
                qty,
                reason,
            } => {
                self.counter_mut(store, sku).consume(actor, *qty);
                if *reason == ConsumeReason::Damaged {
                    self.returns.write_off(store, sku, *qty);
                }
                if *reason == ConsumeReason::ShrinkageCovered {
                    if let Some(open) = self.shortfall.get_mut(&(store.clone(), sku.clone())) {
                        *open = open.saturating_sub(u64::from(*qty));
                    }
                }
            }
            Payload::CountRecorded {
                store,
                sku,
                counted,
                expected,
                shrinkage,
            } => {
                self.counts.insert(
                    op.id(),
                    CountRecord {
                        store: store.clone(),
                        sku: sku.clone(),
                        counted: *counted,
                        expected: *expected,
                        shrinkage: *shrinkage,
                        at: op.hlc,
                    },
                );
                *self
                    .shortfall
                    .entry((store.clone(), sku.clone()))
                    .or_default() += u64::from(*shrinkage);
            }
            Payload::RightsReturnRequested { store, sku, qty } => {
                effects.push(Effect::ReturnRequested {
                    store: store.clone(),
                    sku: sku.clone(),
                    qty: *qty,
                })
            }
            Payload::Sale {
                store,
                sale_id,
                lines,
                tender,
                customer,
            } => {
                for line in lines {
                    self.counter_mut(store, &line.sku).consume(actor, line.qty);
                }
                self.sales.insert(
                    sale_id.clone(),
                    SaleRecord {
                        id: sale_id.clone(),
                        store: store.clone(),
                        lines: lines.clone(),
                        tender: *tender,
                        customer: customer.clone(),
                        at: op.hlc,
                    },
                );
                self.recheck_double_returns(sale_id);
            }
            Payload::OrderPlace {
                order_id,
                store,
                customer,
                lines,
                pickup_code,
                placed_at_ms,
            } => {
                for line in lines {
                    self.counter_mut(store, &line.sku).consume(actor, line.qty);
                }
                let order = Order::new(
                    order_id.clone(),
                    store.clone(),
                    customer.clone(),
                    actor.clone(),
                    *placed_at_ms,
                    op.hlc,
                    pickup_code.clone(),
                    lines,
                );
                self.insert_order(order, effects);
            }
            Payload::OrderShipToStore { .. } => self.merge_ship_to_store(op, effects),
            Payload::OrderArrived {
                order_id,
                store,
                lines,
            } => {
                for line in lines {
                    self.counter_mut(store, &line.sku).consume(actor, line.qty);
                }
                if let Some(order) = self.orders.get_mut(order_id) {
                    for line in lines {
                        *order.arrived.entry(line.sku.clone()).or_default() += line.qty;
                    }
                }
            }
            Payload::OrderAdvance { order_id, to, .. } => {
                if let Some(order) = self.orders.get_mut(order_id) {
                    let before = order.status;
                    order.raise((*to).into());
                    if order.status == OrderStatus::Ready && before != OrderStatus::Ready {
                        effects.push(Effect::OrderReady {
                            order: order_id.clone(),
                            store: order.store.clone(),
                        });
                    }
                }
            }
            Payload::OrderPick {
                order_id,
                sku,
                picked,
                ..
            } => {
                if let Some(order) = self.orders.get_mut(order_id) {
                    order.pick(sku, *picked);
                }
            }
            Payload::OrderCancel { order_id, kind, .. } => {
                let Some(order) = self.orders.get_mut(order_id) else {
                    return;
                };
                order.raise((*kind).into());
                let by_store = order.store.actor() == *actor;
                let needs_release =
                    !by_store && !order.released && order.status != OrderStatus::HandedOver;
                let store = order.store.clone();
                if by_store {
                    self.release(order_id, actor, effects);
                } else if needs_release {
                    effects.push(Effect::ReleaseNeeded {
                        order: order_id.clone(),
                        store,
                    });
                }
            }
            Payload::OrderRelease { order_id, .. } => self.release(order_id, actor, effects),
            Payload::CartSet { customer, sku, qty } => {
                if !self.customer_erased(customer) {
                    self.carts
                        .entry(customer.clone())
                        .or_default()
                        .set(op.id(), op.hlc, sku, *qty);
                }
            }
            Payload::CartRemove {
                customer,
                sku,
                observed,
            } => {
                if !self.customer_erased(customer) {
                    self.carts
                        .entry(customer.clone())
                        .or_default()
                        .remove(op.hlc, sku, observed);
                }
            }
            Payload::CustomerUpdate { customer, patch } => self
                .customers
                .entry(customer.clone())
                .or_default()
                .update(patch, &marker),
            Payload::ConsentSet {
                customer,
                channel,
                granted,
                source,
            } => self
                .customers
                .entry(customer.clone())
                .or_default()
                .set_consent(
                    *channel,
                    Consent {
                        granted: *granted,
                        at_ms: op.hlc.wall_ms(),
                        source: source.clone(),
                    },
                    &marker,
                ),
            Payload::CustomerErase { customer } => {
                let first = self.erased_at.entry(customer.clone()).or_insert(op.hlc);
                *first = (*first).min(op.hlc);
                self.customers.entry(customer.clone()).or_default().erase();
                self.carts.remove(customer);
            }
            Payload::CustomerFollow { customer, store } => {
                self.follows.insert((store.clone(), customer.clone()));
            }
            Payload::Return { .. } => self.merge_return(op, effects),
            Payload::ReturnRightsRequested {
                sale, by, epoch, ..
            } => self.merge_rights_request(sale, by, *epoch),
            Payload::ReturnRightsGranted { .. } => self.merge_rights_grant(&op.payload),
            Payload::Invoice { store, record } => self
                .fiscal
                .entry(store.clone())
                .or_default()
                .merge((**record).clone()),
            Payload::ShipmentNotice {
                shipment,
                store,
                reference,
                lines,
            } => {
                let sent = Sent {
                    from: None,
                    to: store.clone(),
                    reference: reference.clone(),
                    lines: lines.clone(),
                    at: op.hlc,
                };
                merge_sent(&mut self.shipments, MotionKind::Shipment, shipment, sent);
            }
            Payload::TransferDispatch {
                transfer,
                store,
                to,
                lines,
            } => {
                for line in lines {
                    self.counter_mut(store, &line.sku).consume(actor, line.qty);
                }
                let sent = Sent {
                    from: Some(store.clone()),
                    to: to.clone(),
                    reference: String::new(),
                    lines: lines.clone(),
                    at: op.hlc,
                };
                merge_sent(&mut self.transfers, MotionKind::Transfer, transfer, sent);
            }
            Payload::ShipmentReceive {
                shipment: id,
                store,
                lines,
                over_delivery,
            }
            | Payload::TransferReceive {
                transfer: id,
                store,
                lines,
                over_delivery,
                ..
            } => {
                for line in lines {
                    let good = line.received.saturating_sub(line.damaged);
                    if good > 0 {
                        self.counter_mut(store, &line.sku).create(actor, good);
                        self.rights_grew(store, &line.sku, actor, effects);
                    }
                }
                let received = Received {
                    store: store.clone(),
                    lines: lines.clone(),
                    over_delivery: *over_delivery,
                    at: op.hlc,
                };
                let (map, kind) = match &op.payload {
                    Payload::ShipmentReceive { .. } => (&mut self.shipments, MotionKind::Shipment),
                    _ => (&mut self.transfers, MotionKind::Transfer),
                };
                merge_received(map, kind, id, received);
            }
            Payload::ConflictResolve {
                conflict,
                action,
                note,
                by,
                ..
            } => {
                let newer = self
                    .resolutions
                    .get(conflict)
                    .is_none_or(|r| (r.at, &r.actor) < (op.hlc, actor));
                if newer {
                    self.resolutions.insert(
                        conflict.clone(),
                        Resolution {
                            action: action.clone(),
                            note: note.clone(),
                            by: by.clone(),
                            actor: actor.clone(),
                            at: op.hlc,
                        },
                    );
                }
            }
        }
    }

    /// Index a new order by line and announce it.
    fn insert_order(&mut self, order: Order, effects: &mut Vec<Effect>) {
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
    fn merge_ship_to_store(&mut self, op: &Op, effects: &mut Vec<Effect>) {
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

    /// Return an order's units to its store, once. `actor` is the store (checked by authority).
    /// A ship-to-store order returns only the units that arrived; the rest become the store's
    /// when its transfer is received.
    fn release(&mut self, order_id: &OrderId, actor: &ActorId, effects: &mut Vec<Effect>) {
        let Some(order) = self.orders.get_mut(order_id) else {
            return;
        };
        if order.released {
            return;
        }
        order.released = true;
        let store = order.store.clone();
        let lines: Vec<(Sku, u32)> = order
            .lines
            .keys()
            .map(|sku| (sku.clone(), order.units_here(sku)))
            .filter(|(_, n)| *n > 0)
            .collect();
        for (sku, qty) in lines {
            self.counter_mut(&store, &sku).create(actor, qty);
            self.rights_grew(&store, &sku, actor, effects);
        }
    }

    /// Units created at `actor` for (store, sku): `R[actor][actor] += qty`.
    pub(crate) fn create_units(
        &mut self,
        store: &StoreId,
        sku: &Sku,
        actor: &ActorId,
        qty: u32,
        effects: &mut Vec<Effect>,
    ) {
        self.counter_mut(store, sku).create(actor, qty);
        self.rights_grew(store, sku, actor, effects);
    }

    fn rights_grew(&self, store: &StoreId, sku: &Sku, to: &ActorId, effects: &mut Vec<Effect>) {
        let open = self
            .shortfall
            .get(&(store.clone(), sku.clone()))
            .copied()
            .unwrap_or(0);
        if open > 0 && store.actor() == *to {
            effects.push(Effect::CoverShortfall {
                store: store.clone(),
                sku: sku.clone(),
            });
        }
    }
}
