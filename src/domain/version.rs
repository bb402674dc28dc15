//! Version vectors: which operations a replica holds, per actor.
//!
//! Each actor's operations are numbered 1, 2, 3, ... The vector keeps the highest contiguous
//! seq per actor (a `crdts::VClock`) plus the seqs seen above a gap, so ops that arrive out of
//! order or twice are recognised without scanning the log.

use super::ids::ActorId;
use crdts::{CmRDT, Dot, VClock};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What a replica has applied: contiguous prefix per actor and out-of-order extras.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionVector {
    contiguous: VClock<ActorId>,
    above_gap: BTreeMap<ActorId, BTreeSet<u64>>,
}

impl VersionVector {
    pub fn new() -> VersionVector {
        VersionVector::default()
    }

    /// Highest seq of `actor` such that every seq up to it is held.
    pub fn contiguous(&self, actor: &ActorId) -> u64 {
        self.contiguous.get(actor)
    }

    /// Whether the op (actor, seq) has been applied.
    pub fn contains(&self, actor: &ActorId, seq: u64) -> bool {
        seq <= self.contiguous(actor)
            || self
                .above_gap
                .get(actor)
                .is_some_and(|extra| extra.contains(&seq))
    }

    /// Record (actor, seq). Returns false if it was already recorded.
    pub fn insert(&mut self, actor: &ActorId, seq: u64) -> bool {
        if seq == 0 || self.contains(actor, seq) {
            return false;
        }
        let mut next = self.contiguous(actor) + 1;
        if seq != next {
            self.above_gap.entry(actor.clone()).or_default().insert(seq);
            return true;
        }
        self.contiguous.apply(Dot::new(actor.clone(), seq));
        // Close the gap with any extras that are now contiguous.
        if let Some(extra) = self.above_gap.get_mut(actor) {
            next += 1;
            while extra.remove(&next) {
                self.contiguous.apply(Dot::new(actor.clone(), next));
                next += 1;
            }
            if extra.is_empty() {
                self.above_gap.remove(actor);
            }
        }
        true
    }

    /// Actors with their contiguous seq, in actor order.
    pub fn entries(&self) -> BTreeMap<ActorId, u64> {
        self.contiguous
            .iter()
            .map(|dot| (dot.actor.clone(), dot.counter))
            .collect()
    }

    /// Total number of ops recorded.
    pub fn total(&self) -> u64 {
        self.contiguous.iter().map(|d| d.counter).sum::<u64>()
            + self.above_gap.values().map(|s| s.len() as u64).sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn out_of_order_seqs_fill_the_gap() {
        let a = ActorId::hq();
        let mut vv = VersionVector::new();
        assert!(vv.insert(&a, 2));
        assert_eq!(vv.contiguous(&a), 0);
        assert!(vv.insert(&a, 1));
        assert_eq!(vv.contiguous(&a), 2);
        assert!(!vv.insert(&a, 2));
        assert_eq!(vv.total(), 2);
    }

    proptest! {
        #[test]
        fn any_permutation_of_seqs_ends_contiguous(mut seqs in Just((1u64..=40).collect::<Vec<_>>()).prop_shuffle()) {
            let a = ActorId::hq();
            let mut vv = VersionVector::new();
            seqs.extend(seqs.clone());
            for s in seqs { vv.insert(&a, s); }
            prop_assert_eq!(vv.contiguous(&a), 40);
            prop_assert_eq!(vv.total(), 40);
        }
    }
}
