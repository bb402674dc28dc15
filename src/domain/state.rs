//! The merged state of a replica and the merge of one op into it.
//!
//! `merge` is total: it never refuses, so every replica that holds the same set of ops holds
//! the same state, whatever order they arrived in. Refusals happen before an op exists, in
//! `validate`. Order ops that arrive before their placement wait in `pending_order_ops`.

use super::cart::Cart;
use super::catalog::{Catalog, Product};
use super::conflict::Resolution;
use super::customer::Customer;
use super::fiscal::FiscalChain;
use super::hlc::Hlc;
use super::ids::{ActorId, CustomerId, MotionId, OrderId, SaleId, Sku, StoreId};
use super::inventory::EscrowCounter;
use super::motion::Movement;
use super::op::{Op, OpId, SaleLine, Tender};
use super::order::Order;
use super::returns::ReturnBook;
use super::till::pricing::net_lines;
use super::till::{CashBook, Promotions, SalePricing};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

mod merge;
#[cfg(test)]
mod price_tests;
mod ship;

/// A till sale as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SaleRecord {
    pub id: SaleId,
    pub store: StoreId,
    pub lines: Vec<SaleLine>,
    pub tender: Tender,
    pub customer: Option<CustomerId>,
    pub at: Hlc,
    /// The discounts it was sold with (DESIGN.md §18), when any were recorded.
    pub pricing: Option<SalePricing>,
}

impl SaleRecord {
    /// What was paid: the lines after their discounts.
    pub fn total_cents(&self) -> i64 {
        self.net_lines().iter().sum()
    }

    /// What was paid for each line, in line order.
    pub fn net_lines(&self) -> Vec<i64> {
        net_lines(&self.lines, self.pricing.as_ref())
    }

    /// Everything taken off the list prices.
    pub fn discount_cents(&self) -> i64 {
        self.lines
            .iter()
            .map(|l| l.unit_cents * i64::from(l.qty))
            .sum::<i64>()
            - self.total_cents()
    }
}

/// A physical count as recorded for the manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub catalog: Catalog,
    pub stock: BTreeMap<(StoreId, Sku), EscrowCounter>,
    pub orders: BTreeMap<OrderId, Order>,
    pub carts: BTreeMap<CustomerId, Cart>,
    pub customers: BTreeMap<CustomerId, Customer>,
    pub sales: BTreeMap<SaleId, SaleRecord>,
    pub counts: BTreeMap<OpId, CountRecord>,
    /// Units a count found missing that no rights covered yet, per (store, sku):
    /// `shrinkage_counted - shrinkage_covered`, never below zero. Derived from two grow-only
    /// sums, so it is the same whatever order counts and covers arrive in.
    pub shortfall: BTreeMap<(StoreId, Sku), u64>,
    /// Shrinkage recorded by counts (`CountRecorded`), summed per (store, sku); only grows.
    pub shrinkage_counted: BTreeMap<(StoreId, Sku), u64>,
    /// Units consumed to cover shrinkage (`ShrinkageCovered`), summed per (store, sku); only
    /// grows. A cover merged before its count is held here, not lost.
    pub shrinkage_covered: BTreeMap<(StoreId, Sku), u64>,
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
    /// Ship-to-store transfers whose units are still on the sender's shelf
    /// (`Movement::awaiting_dispatch`), so `outgoing` reads only those.
    awaiting_dispatch: BTreeSet<MotionId>,
    /// Resolutions of conflict inbox items by id (last writer by `(hlc, actor)` wins).
    pub resolutions: BTreeMap<String, Resolution>,
    /// When each erased customer was first erased (earliest erase op).
    pub erased_at: BTreeMap<CustomerId, Hlc>,
    /// Promotions HQ authored (DESIGN.md §18), last writer wins per promotion.
    pub promotions: Promotions,
    /// Every store's cash sessions.
    pub cash: CashBook,
    /// Pricing recorded for sales not applied yet (a `SalePriced` precedes its `Sale`).
    sale_pricing: BTreeMap<SaleId, SalePricing>,
    /// Prices HQ set per sku that a later put superseded, sorted by `(hlc, actor)`; the price
    /// in force now is the catalog's register. With it, the price in force at any moment
    /// (`price_at`). Most skus are priced once and have no entry: holding every first price
    /// here as well cost ~110 B per sku (11 MiB at 100k skus).
    pub(crate) price_log: BTreeMap<Sku, Vec<(Hlc, ActorId, i64)>>,
    pending_order_ops: BTreeMap<OrderId, Vec<Op>>,
    /// Orders that have (or had) a line of each (store, sku), so `reserved` reads only those
    /// instead of scanning every order: a stock row is rewritten on most ops.
    /// A `Vec` (few orders per line, deduplicated on insert) costs far less memory than a set.
    pub(crate) orders_by_line: BTreeMap<(StoreId, Sku), Vec<OrderId>>,
    /// What is kept of the sales and orders evicted from `sales` and `orders` (see `history`).
    pub(crate) history: super::history::History,
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

    /// What should be on the shelf: available plus reserved and not yet collected, plus units
    /// set aside for ship-to-store orders another store awaits and not dispatched yet (HQ's
    /// rights here paid for them, but they have not left: a count must not re-add them).
    pub fn on_hand(&self, store: &StoreId, sku: &Sku) -> i64 {
        self.available(store, sku)
            + self.reserved(store, sku) as i64
            + self.outgoing(store, sku) as i64
    }

    /// Ship-to-store transfers whose units are still on their sender's shelf.
    pub fn awaiting_dispatch(&self) -> impl Iterator<Item = &Movement> {
        self.awaiting_dispatch
            .iter()
            .filter_map(|id| self.transfers.get(id))
    }

    /// Units of `sku` on `store`'s shelf awaiting dispatch for ship-to-store orders.
    pub fn outgoing(&self, store: &StoreId, sku: &Sku) -> u64 {
        self.awaiting_dispatch()
            .filter_map(|m| m.sent.as_ref())
            .filter(|s| s.from.as_ref() == Some(store))
            .flat_map(|s| &s.lines)
            .filter(|l| &l.sku == sku)
            .map(|l| u64::from(l.qty))
            .sum()
    }

    /// HQ's price for `sku` in force just before `at` and when it was set: the last price put
    /// with an HLC below `at`.
    pub fn price_at(&self, sku: &Sku, at: Hlc) -> Option<(Hlc, i64)> {
        let (current, marker) = self.catalog.get_with_marker(sku)?;
        if marker.0 < at {
            // The register holds the greatest `(hlc, actor)` of every put.
            return Some((marker.0, current.price_cents));
        }
        let log = self.price_log.get(sku)?;
        let before = log.partition_point(|(h, _, _)| *h < at);
        before.checked_sub(1).map(|i| (log[i].0, log[i].2))
    }

    /// Record a new price put for `sku` before the catalog merges it: whichever of it and the
    /// price in force loses (the smaller `(hlc, actor)`, as the register decides) joins the
    /// superseded prices. A sku's first price records nothing here.
    fn supersede_price(&mut self, sku: &Sku, put: (Hlc, ActorId, i64)) {
        let Some((current, marker)) = self.catalog.get_with_marker(sku) else {
            return;
        };
        let loser = if (put.0, &put.1) > (marker.0, &marker.1) {
            (marker.0, marker.1.clone(), current.price_cents)
        } else {
            put
        };
        let log = self.price_log.entry(sku.clone()).or_default();
        let at = log.partition_point(|e| (e.0, &e.1) < (loser.0, &loser.1));
        log.insert(at, loser);
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
        scope.extend(self.history.sale_customers(store).cloned());
        scope.extend(self.history.order_customers(store).cloned());
        scope
    }
}
