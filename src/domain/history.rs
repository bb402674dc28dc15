//! History out of memory: a closed sale or a finished order leaves `State` for the adapter's
//! history tables and the digest stays the same.
//!
//! The digest covers sales and orders as commutative sums of per-record hashes (`RecordSum`),
//! so a record can move between `State::sales` / `State::orders` and a running sum per store
//! (`History`) without changing it. Calling protocol: the adapter writes the record where it
//! keeps history, commits, then calls `State::evict_sale` / `State::evict_order`; before it
//! prepares or applies an op it passes back every evicted record the op names (`sales_named`,
//! `orders_named`) to `State::rehydrate_sale` / `State::rehydrate_order`, so the op merges
//! exactly as if the record had never left. Evicting and rehydrating never change the digest.

use super::ids::{CustomerId, OrderId, SaleId, StoreId};
use super::op::Payload;
use super::order::{Order, OrderStatus};
use super::state::{SaleRecord, State};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// A sum of 256-bit record hashes, lane by lane modulo 2^64: commutative and invertible, so the
/// sum of a set of records does not depend on the order they were added in, nor on which of
/// them were taken out and put back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSum([u64; 4]);

impl RecordSum {
    /// The hash of one record: SHA-256 of its postcard encoding, as four lanes.
    pub fn of(record: &impl Serialize) -> RecordSum {
        // Serialising plain data into a Vec cannot fail.
        let bytes = postcard::to_allocvec(record).unwrap_or_default();
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        let mut lanes = [0u64; 4];
        for (lane, chunk) in lanes.iter_mut().zip(hash.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *lane = u64::from_le_bytes(b);
        }
        RecordSum(lanes)
    }

    pub fn add(&mut self, other: RecordSum) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.wrapping_add(b);
        }
    }

    pub fn sub(&mut self, other: RecordSum) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.wrapping_sub(b);
        }
    }
}

/// What the replica keeps of the records of one kind (sales, orders) it evicted: per store the
/// sum of their hashes (for the digest), and the customers they name (a store's scope keeps
/// them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Evicted {
    sums: BTreeMap<StoreId, RecordSum>,
    customers: BTreeSet<(StoreId, CustomerId)>,
}

impl Evicted {
    /// A record of `store` with hash `hash`, naming `customer`, left memory.
    fn add(&mut self, store: &StoreId, hash: RecordSum, customer: Option<&CustomerId>) {
        self.sums.entry(store.clone()).or_default().add(hash);
        if let Some(c) = customer {
            self.customers.insert((store.clone(), c.clone()));
        }
    }

    /// A record of `store` with hash `hash` came back (its customer stays named).
    fn sub(&mut self, store: &StoreId, hash: RecordSum) {
        self.sums.entry(store.clone()).or_default().sub(hash);
    }

    fn customers<'a>(&'a self, store: &'a StoreId) -> impl Iterator<Item = &'a CustomerId> + 'a {
        self.customers
            .iter()
            .filter(move |(s, _)| s == store)
            .map(|(_, c)| c)
    }

    /// The digest's sum over the records of the stores `keep` selects: those `in_memory`
    /// (with their store) and those evicted.
    fn sum<'r, R: Serialize + 'r>(
        &self,
        in_memory: impl Iterator<Item = (&'r StoreId, &'r R)>,
        keep: impl Fn(&StoreId) -> bool,
    ) -> RecordSum {
        let mut sum = RecordSum::default();
        for (_, record) in in_memory.filter(|(store, _)| keep(store)) {
            sum.add(RecordSum::of(record));
        }
        for (store, part) in &self.sums {
            if keep(store) {
                sum.add(*part);
            }
        }
        sum
    }
}

/// What the replica keeps of the sales and orders it evicted (`Evicted`, one each), and how
/// many evictions it made (the adapter numbers its history rows with it, see
/// `State::evictions`; one count for sales and orders). Postcard lays the fields out one after
/// the other, nested or not: the snapshot's bytes are those of the flat fields before.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    sales: Evicted,
    evictions: u64,
    orders: Evicted,
}

impl History {
    /// Customers of `store` named by sales evicted here.
    pub fn sale_customers<'a>(
        &'a self,
        store: &'a StoreId,
    ) -> impl Iterator<Item = &'a CustomerId> + 'a {
        self.sales.customers(store)
    }

    /// Customers of `store` named by orders evicted here.
    pub fn order_customers<'a>(
        &'a self,
        store: &'a StoreId,
    ) -> impl Iterator<Item = &'a CustomerId> + 'a {
        self.orders.customers(store)
    }
}

/// The orders `payload` reads or changes, given what `state` knows: each must be in
/// `State::orders` (rehydrated) before the op is prepared or applied, if it was evicted. Order
/// ops name theirs; a return or a rights op names a handed-over order by its id; a transfer op
/// names the ship-to-store order its transfer carries; a resolution names the order whose
/// conflict it resolves.
pub fn orders_named(state: &State, payload: &Payload) -> Vec<OrderId> {
    let id = match payload {
        Payload::Return { sale, .. }
        | Payload::ReturnRightsRequested { sale, .. }
        | Payload::ReturnRightsGranted { sale, .. } => OrderId::parse(sale.as_str()).ok(),
        Payload::TransferDispatch { transfer, .. } | Payload::TransferReceive { transfer, .. } => {
            state
                .transfers
                .get(transfer)
                .and_then(|m| m.sent.as_ref())
                .and_then(|s| OrderId::parse(&s.reference).ok())
        }
        Payload::ConflictResolve { conflict, .. } => conflict
            .strip_prefix("order:")
            .or_else(|| conflict.strip_prefix("erased-order:"))
            .and_then(|o| OrderId::parse(o).ok()),
        other => other.order().cloned(),
    };
    id.into_iter().collect()
}

/// The sales `payload` reads or changes: each must be in `State::sales` (rehydrated) before the
/// op is prepared or applied, if it was evicted.
pub fn sales_named(payload: &Payload) -> Vec<&SaleId> {
    match payload {
        Payload::Sale { sale_id, .. } | Payload::SalePriced { sale_id, .. } => vec![sale_id],
        Payload::Return { sale, .. }
        | Payload::ReturnRightsRequested { sale, .. }
        | Payload::ReturnRightsGranted { sale, .. } => vec![sale],
        _ => Vec::new(),
    }
}

impl State {
    /// Evictions made so far on this replica's lineage (from its first op, through snapshots).
    /// The adapter stamps the history row of the next eviction with `evictions() + 1`; a row
    /// stamped above this replica's count records an eviction this replica never made (it
    /// was rebuilt from an older snapshot) and must not be rehydrated.
    pub fn evictions(&self) -> u64 {
        self.history.evictions
    }

    /// Whether `sale` may leave memory now: it is held here, raises no conflict that is still
    /// unresolved (the manager's inbox lists conflicts from the sales in memory), has no
    /// double return and no rights request waiting for a grant (the holder plans grants from
    /// memory). Being
    /// causally stable is the adapter's to decide: it knows who acked what.
    pub fn sale_evictable(&self, sale: &SaleId) -> bool {
        let Some(record) = self.sales.get(sale) else {
            return false;
        };
        let double = self.returns.double_returns.keys().any(|(s, _)| s == sale);
        !double
            && !self.rights_asked(sale)
            && super::conflict::sale_conflicts_resolved(self, record)
    }

    /// Take `sale` out of memory, keeping its hash in the digest: the record to keep, or `None`
    /// if it is not held here or not evictable (`sale_evictable`). Call only after the record
    /// is stored where `rehydrate_sale` will find it.
    pub fn evict_sale(&mut self, sale: &SaleId) -> Option<SaleRecord> {
        if !self.sale_evictable(sale) {
            return None;
        }
        let record = self.sales.remove(sale)?;
        let hash = RecordSum::of(&record);
        let customer = record.customer.as_ref();
        self.history.sales.add(&record.store, hash, customer);
        self.history.evictions += 1;
        Some(record)
    }

    /// Put an evicted record back, as `evict_sale` returned it. Nothing changes if the sale is
    /// in memory already (`false`). The adapter must pass only records this replica evicted
    /// (see `evictions`): any other would unbalance the digest.
    pub fn rehydrate_sale(&mut self, record: SaleRecord) -> bool {
        if self.sales.contains_key(&record.id) {
            return false;
        }
        self.history
            .sales
            .sub(&record.store, RecordSum::of(&record));
        self.sales.insert(record.id.clone(), record);
        true
    }

    /// Whether `order` may leave memory now: it is held here and finished for good (handed
    /// over, or cancelled or expired with its units released), a ship-to-store order's
    /// transfer is settled (received, or withdrawn by the sender), its conflicts are resolved
    /// (the inbox lists those of the orders in memory), and as a sale it has no double return
    /// and no rights request waiting. Being causally stable is the adapter's to decide.
    pub fn order_evictable(&self, order: &OrderId) -> bool {
        let Some(o) = self.orders.get(order) else {
            return false;
        };
        let finished = match o.status {
            OrderStatus::HandedOver => true,
            OrderStatus::Cancelled | OrderStatus::Expired => o.released,
            _ => false,
        };
        let settled = o.ship.as_ref().is_none_or(|ship| {
            self.transfers.get(&ship.transfer).is_some_and(|m| {
                m.received.is_some() || m.dispatch.as_ref().is_some_and(|d| d.withdrawn)
            })
        });
        let as_sale = SaleId::parse(order.as_str()).ok();
        let returns_open = as_sale.as_ref().is_some_and(|sale| {
            self.rights_asked(sale) || self.returns.double_returns.keys().any(|(s, _)| s == sale)
        });
        finished && settled && !returns_open && super::conflict::order_conflicts_resolved(self, o)
    }

    /// Take `order` out of memory, keeping its hash in the digest: the record to keep, or
    /// `None` if it is not held here or not evictable (`order_evictable`). Call only after the
    /// record is stored where `rehydrate_order` will find it.
    pub fn evict_order(&mut self, order: &OrderId) -> Option<Order> {
        if !self.order_evictable(order) {
            return None;
        }
        let record = self.orders.remove(order)?;
        self.unindex_order(&record);
        let hash = RecordSum::of(&record);
        let customer = Some(&record.customer);
        self.history.orders.add(&record.store, hash, customer);
        self.history.evictions += 1;
        Some(record)
    }

    /// Put an evicted order back, as `evict_order` returned it. Nothing changes if the order
    /// is in memory already (`false`). The adapter must pass only records this replica evicted
    /// (see `evictions`): any other would unbalance the digest.
    pub fn rehydrate_order(&mut self, record: Order) -> bool {
        if self.orders.contains_key(&record.id) {
            return false;
        }
        self.history
            .orders
            .sub(&record.store, RecordSum::of(&record));
        self.index_order(&record);
        self.orders.insert(record.id.clone(), record);
        true
    }

    /// The digest's sum over the orders of the stores `keep` selects, evicted or not.
    pub(crate) fn orders_sum(&self, keep: impl Fn(&StoreId) -> bool) -> RecordSum {
        let in_memory = self.orders.values().map(|o| (&o.store, o));
        self.history.orders.sum(in_memory, keep)
    }

    /// The digest's sum over the sales of the stores `keep` selects, evicted or not.
    pub(crate) fn sales_sum(&self, keep: impl Fn(&StoreId) -> bool) -> RecordSum {
        let in_memory = self.sales.values().map(|s| (&s.store, s));
        self.history.sales.sum(in_memory, keep)
    }
}
