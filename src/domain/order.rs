//! Pickup order: a lifecycle lattice `placed < picking < ready < {expired, cancelled} <
//! handed_over`, per-line picked quantities merged by max, and a staff conflict flag.
//!
//! `handed_over` beats everything because the goods physically left. A cancel that meets a
//! ready bag (or a handover) is resolved by the lattice and flagged for staff. The order's units
//! are returned to stock at most once, and only by its store (the replica that holds the goods
//! and is the only one that can hand them over), so a return can never race a handover.

use super::hlc::Hlc;
use super::ids::{ActorId, CustomerId, MotionId, OrderId, Sku, StoreId};
use super::op::{Advance, CancelKind, OrderLine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where an order is in its life. Declaration order is the lattice order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    Placed,
    Picking,
    Ready,
    Expired,
    Cancelled,
    HandedOver,
}

impl OrderStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::Picking => "picking",
            OrderStatus::Ready => "ready",
            OrderStatus::Expired => "expired",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::HandedOver => "handed_over",
        }
    }
    pub fn parse(s: &str) -> Option<OrderStatus> {
        Some(match s {
            "placed" => OrderStatus::Placed,
            "picking" => OrderStatus::Picking,
            "ready" => OrderStatus::Ready,
            "expired" => OrderStatus::Expired,
            "cancelled" => OrderStatus::Cancelled,
            "handed_over" => OrderStatus::HandedOver,
            _ => return None,
        })
    }
    /// Whether the order can still move (not collected, not cancelled, not expired).
    pub fn is_open(&self) -> bool {
        *self <= OrderStatus::Ready
    }
}

impl From<Advance> for OrderStatus {
    fn from(a: Advance) -> OrderStatus {
        match a {
            Advance::Picking => OrderStatus::Picking,
            Advance::Ready => OrderStatus::Ready,
            Advance::HandedOver => OrderStatus::HandedOver,
        }
    }
}

impl From<CancelKind> for OrderStatus {
    fn from(k: CancelKind) -> OrderStatus {
        match k {
            CancelKind::Cancelled => OrderStatus::Cancelled,
            CancelKind::Expired => OrderStatus::Expired,
        }
    }
}

/// One line of an order with its picked quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLineState {
    pub qty: u32,
    pub picked: u32,
}

/// Where a ship-to-store order's units come from (DESIGN.md §19).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipFrom {
    /// The store whose HQ rights the order consumed and that sends the units.
    pub store: StoreId,
    /// The transfer carrying them to the order's store.
    pub transfer: MotionId,
    /// The date the customer was told: pickup from then on.
    pub ready_by_ms: u64,
}

/// A pickup order as merged from every op about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub store: StoreId,
    pub customer: CustomerId,
    /// Replica whose rights the reservation consumed.
    pub placed_by: ActorId,
    pub placed_at_ms: u64,
    pub placed_hlc: Hlc,
    pub pickup_code: String,
    pub lines: BTreeMap<Sku, OrderLineState>,
    pub status: OrderStatus,
    /// The bag was prepared at some point (ready was reached).
    pub was_ready: bool,
    /// A cancel or expiry was recorded at some point.
    pub cancel_seen: bool,
    /// The units went back to the store's stock (at most once).
    pub released: bool,
    /// Set for a ship-to-store order: its units arrive by transfer.
    #[serde(default)]
    pub ship: Option<ShipFrom>,
    /// Units of a ship-to-store order that arrived and were set aside at its store, per sku.
    #[serde(default)]
    pub arrived: BTreeMap<Sku, u32>,
}

impl Order {
    /// A freshly placed order; lines naming the same sku are summed.
    // Eight plain fields of one placement op; a builder would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: OrderId,
        store: StoreId,
        customer: CustomerId,
        placed_by: ActorId,
        placed_at_ms: u64,
        placed_hlc: Hlc,
        pickup_code: String,
        lines: &[OrderLine],
    ) -> Order {
        let mut merged: BTreeMap<Sku, OrderLineState> = BTreeMap::new();
        for line in lines {
            merged
                .entry(line.sku.clone())
                .or_insert(OrderLineState { qty: 0, picked: 0 })
                .qty += line.qty;
        }
        Order {
            id,
            store,
            customer,
            placed_by,
            placed_at_ms,
            placed_hlc,
            pickup_code,
            lines: merged,
            status: OrderStatus::Placed,
            was_ready: false,
            cancel_seen: false,
            released: false,
            ship: None,
            arrived: BTreeMap::new(),
        }
    }

    /// Units of `sku` at the order's store for it: all of them for an order served from the
    /// store's shelf, those that arrived for a ship-to-store order.
    pub fn units_here(&self, sku: &Sku) -> u32 {
        let qty = self.lines.get(sku).map_or(0, |l| l.qty);
        match self.ship {
            Some(_) => self.arrived.get(sku).copied().unwrap_or(0).min(qty),
            None => qty,
        }
    }

    /// Units of a ship-to-store order still to arrive, per sku (empty for other orders).
    pub fn awaiting(&self) -> Vec<(Sku, u32)> {
        if self.ship.is_none() {
            return Vec::new();
        }
        self.lines
            .iter()
            .map(|(sku, l)| (sku.clone(), l.qty.saturating_sub(self.units_here(sku))))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Lattice join of the status.
    pub fn raise(&mut self, to: OrderStatus) {
        if to >= OrderStatus::Ready && to != OrderStatus::Expired && to != OrderStatus::Cancelled {
            self.was_ready |= to == OrderStatus::Ready;
        }
        if matches!(to, OrderStatus::Cancelled | OrderStatus::Expired) {
            self.cancel_seen = true;
        }
        if to > self.status {
            self.status = to;
        }
    }

    /// Picked quantity of a line merges by max, bounded by the ordered quantity.
    pub fn pick(&mut self, sku: &Sku, picked: u32) {
        if let Some(line) = self.lines.get_mut(sku) {
            line.picked = line.picked.max(picked.min(line.qty));
        }
    }

    /// Every line fully picked.
    pub fn fully_picked(&self) -> bool {
        self.lines.values().all(|l| l.picked >= l.qty)
    }

    /// Units reserved by this order and not yet handed over or returned.
    pub fn reserved_units(&self, sku: &Sku) -> u32 {
        if self.status == OrderStatus::HandedOver || self.released {
            return 0;
        }
        self.units_here(sku)
    }

    /// Staff must look: a cancel met a prepared bag, or a cancel met a handover.
    pub fn conflict(&self) -> bool {
        self.cancel_seen && (self.was_ready || self.status == OrderStatus::HandedOver)
    }

    /// Placed this long ago and still not collected.
    /// A ship-to-store order counts from the date the customer was told.
    pub fn is_overdue(&self, now_ms: u64, expire_after_ms: u64) -> bool {
        let from = self
            .ship
            .as_ref()
            .map_or(self.placed_at_ms, |s| s.ready_by_ms.max(self.placed_at_ms));
        self.status.is_open() && now_ms.saturating_sub(from) > expire_after_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        Order::new(
            OrderId::parse("O-1").unwrap(),
            StoreId::parse("madrid-centro").unwrap(),
            CustomerId::parse("C-0001").unwrap(),
            ActorId::hq(),
            0,
            Hlc::ZERO,
            "ABC234".into(),
            &[OrderLine {
                sku: Sku::parse("SKU-1").unwrap(),
                qty: 2,
            }],
        )
    }

    #[test]
    fn handed_over_beats_a_concurrent_cancel_and_is_flagged() {
        let mut a = order();
        a.raise(OrderStatus::HandedOver);
        a.raise(OrderStatus::Cancelled);
        assert_eq!(a.status, OrderStatus::HandedOver);
        assert!(a.conflict());
    }

    #[test]
    fn cancel_meeting_a_ready_bag_resolves_to_cancelled_with_conflict() {
        let mut a = order();
        a.raise(OrderStatus::Cancelled);
        a.raise(OrderStatus::Ready);
        assert_eq!(a.status, OrderStatus::Cancelled);
        assert!(a.conflict());
    }

    #[test]
    fn picked_merges_by_max_and_is_bounded_by_the_line() {
        let mut a = order();
        let sku = Sku::parse("SKU-1").unwrap();
        a.pick(&sku, 1);
        a.pick(&sku, 5);
        a.pick(&sku, 0);
        assert_eq!(a.lines[&sku].picked, 2);
        assert!(a.fully_picked());
    }
}
