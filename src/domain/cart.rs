//! Customer cart: an observed-remove map sku -> quantity, last writer (by HLC) wins among
//! the surviving writes.
//!
//! Each `CartSet` op is a dot; `CartRemove` removes exactly the dots its author had observed.
//! A concurrent add on the web and remove at the counter therefore keeps the add (add wins over
//! an unobserved remove). Removed dots are remembered, so a remove that arrives before the add
//! it observed still removes it: the result does not depend on delivery order.

use super::hlc::Hlc;
use super::ids::{ActorId, Sku};
use super::op::OpId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One surviving write of a line's quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Write {
    hlc: Hlc,
    qty: u32,
}

/// A customer's cart as merged from every op about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    writes: BTreeMap<Sku, BTreeMap<OpId, Write>>,
    removed: BTreeSet<OpId>,
    updated: Hlc,
}

impl Cart {
    /// Apply a `CartSet` op identified by `dot`.
    pub fn set(&mut self, dot: OpId, hlc: Hlc, sku: &Sku, qty: u32) {
        self.touch(hlc);
        if self.removed.contains(&dot) {
            return;
        }
        self.writes
            .entry(sku.clone())
            .or_default()
            .insert(dot, Write { hlc, qty });
    }

    /// Apply a `CartRemove` op: drop the observed dots of `sku`, now and if they arrive later.
    pub fn remove(&mut self, hlc: Hlc, sku: &Sku, observed: &[OpId]) {
        self.touch(hlc);
        for dot in observed {
            self.removed.insert(dot.clone());
        }
        if let Some(dots) = self.writes.get_mut(sku) {
            dots.retain(|dot, _| !self.removed.contains(dot));
            if dots.is_empty() {
                self.writes.remove(sku);
            }
        }
    }

    fn touch(&mut self, hlc: Hlc) {
        self.updated = self.updated.max(hlc);
    }

    /// The dots a remove issued now should name for `sku`.
    pub fn observed(&self, sku: &Sku) -> Vec<OpId> {
        self.writes
            .get(sku)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Current quantity of each line: the write with the highest (hlc, actor, seq) wins.
    pub fn lines(&self) -> BTreeMap<Sku, u32> {
        self.writes
            .iter()
            .filter_map(|(sku, dots)| {
                dots.iter()
                    .max_by(|a, b| (a.1.hlc, a.0).cmp(&(b.1.hlc, b.0)))
                    .map(|(_, w)| (sku.clone(), w.qty))
            })
            .collect()
    }

    /// Time of the last change, for the abandoned-cart list.
    pub fn updated(&self) -> Hlc {
        self.updated
    }

    /// No lines left.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Forget everything (customer erasure).
    pub fn clear(&mut self) {
        self.writes.clear();
    }

    /// Lines that were written by `actor`, for diagnostics.
    pub fn authors(&self) -> BTreeSet<ActorId> {
        self.writes
            .values()
            .flat_map(|d| d.keys().map(|id| id.actor.clone()))
            .collect()
    }
}

/// Whether a cart counts as abandoned at `now_ms`: not empty and unchanged for `idle_ms`.
pub fn is_abandoned(cart: &Cart, now_ms: u64, idle_ms: u64) -> bool {
    !cart.is_empty() && now_ms.saturating_sub(cart.updated().wall_ms()) >= idle_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(actor: &str, seq: u64) -> OpId {
        OpId {
            actor: ActorId::parse(actor).unwrap(),
            seq,
        }
    }

    #[test]
    fn concurrent_add_on_the_web_survives_a_remove_at_the_counter() {
        let sku = Sku::parse("SKU-1").unwrap();
        let mut cart = Cart::default();
        cart.set(dot("hq", 1), Hlc::new(1, 0), &sku, 1);
        let seen_by_store = cart.observed(&sku);
        // The web adds again while the counter, which saw only the first add, removes.
        cart.set(dot("hq", 2), Hlc::new(3, 0), &sku, 2);
        cart.remove(Hlc::new(2, 0), &sku, &seen_by_store);
        assert_eq!(cart.lines().get(&sku), Some(&2));
    }

    #[test]
    fn a_remove_that_arrives_before_its_add_still_removes_it() {
        let sku = Sku::parse("SKU-1").unwrap();
        let mut cart = Cart::default();
        cart.remove(Hlc::new(2, 0), &sku, &[dot("hq", 1)]);
        cart.set(dot("hq", 1), Hlc::new(1, 0), &sku, 1);
        assert!(cart.is_empty());
    }

    #[test]
    fn idle_carts_are_abandoned() {
        let sku = Sku::parse("SKU-1").unwrap();
        let mut cart = Cart::default();
        cart.set(dot("hq", 1), Hlc::new(1_000, 0), &sku, 1);
        assert!(!is_abandoned(&cart, 2_000, 5_000));
        assert!(is_abandoned(&cart, 6_000, 5_000));
    }
}
