//! Escrow (bounded) counter per (store, sku): sellable stock that never goes below zero, even
//! while HQ and the store sell concurrently without talking.
//!
//! `created[i]` = R[i][i], `transferred[(i, j)]` = R[i][j], `consumed[i]` = U[i]. Only replica
//! i grows its own entries, and only by ops it authored, so applying each op once in any order
//! gives the same counter. A replica consumes or transfers only what `rights(i)` allows on its
//! own state, which always knows all of i's own ops: the sum of rights can never go negative.

use super::ids::ActorId;
use serde::{Deserialize, Serialize};
use totals::Totals;

mod totals;

/// Rights matrix and consumption per replica for one (store, sku).
///
/// Each part is sorted by key: a counter has one to three actors, so sorted entries hold what a
/// map would in a fraction of the memory (a `BTreeMap` node is sized for eleven entries), and
/// iterate in the same key order. `created` and `consumed` nearly always have one entry (the
/// store's), held inline (`Totals`); `transferred` is empty until rights move, then usually one
/// entry in a vector (inline, its 56 bytes would be paid by every counter).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowCounter {
    created: Totals<ActorId>,
    transferred: Vec<((ActorId, ActorId), u64)>,
    consumed: Totals<ActorId>,
}

/// Add `qty` to the entry of `key` in a vector sorted by key, inserting it in order.
fn add_sorted<K: Ord + Clone>(entries: &mut Vec<(K, u64)>, key: &K, qty: u32) {
    match entries.binary_search_by(|(k, _)| k.cmp(key)) {
        Ok(i) => entries[i].1 += u64::from(qty),
        Err(i) => {
            if entries.capacity() == entries.len() {
                entries.reserve_exact(1);
            }
            entries.insert(i, (key.clone(), u64::from(qty)));
        }
    }
}

impl EscrowCounter {
    /// Units created at `actor` (receipts, count-ups, returns, released orders).
    pub fn create(&mut self, actor: &ActorId, qty: u32) {
        self.created.add(actor, u64::from(qty));
    }

    /// Rights moved from `from` to `to`.
    pub fn transfer(&mut self, from: &ActorId, to: &ActorId, qty: u32) {
        add_sorted(&mut self.transferred, &(from.clone(), to.clone()), qty);
    }

    /// Units consumed by `actor` (sales, reservations, count-downs).
    pub fn consume(&mut self, actor: &ActorId, qty: u32) {
        self.consumed.add(actor, u64::from(qty));
    }

    /// Units only `actor` may consume or transfer:
    /// `R[i][i] + sum_j R[j][i] - sum_j R[i][j] - U[i]`. Negative only if an invariant broke.
    pub fn rights(&self, actor: &ActorId) -> i64 {
        let own = self.created.get(actor) as i64;
        let mut incoming = 0i64;
        let mut outgoing = 0i64;
        for ((from, to), qty) in &self.transferred {
            if to == actor {
                incoming += *qty as i64;
            }
            if from == actor {
                outgoing += *qty as i64;
            }
        }
        let used = self.consumed.get(actor) as i64;
        own + incoming - outgoing - used
    }

    /// Total sellable units: the sum of every replica's rights.
    pub fn available(&self) -> i64 {
        let created: u64 = self.created.as_slice().iter().map(|(_, v)| v).sum();
        let consumed: u64 = self.consumed.as_slice().iter().map(|(_, v)| v).sum();
        created as i64 - consumed as i64
    }

    /// Units consumed by `actor` so far.
    pub fn consumed_by(&self, actor: &ActorId) -> u64 {
        self.consumed.get(actor)
    }

    /// Canonical contents for digests: every entry in key order.
    pub fn canonical(&self) -> CanonicalCounter<'_> {
        CanonicalCounter {
            created: self
                .created
                .as_slice()
                .iter()
                .map(|(k, v)| (k, *v))
                .collect(),
            transferred: self.transferred.iter().map(|(k, v)| (k, *v)).collect(),
            consumed: self
                .consumed
                .as_slice()
                .iter()
                .map(|(k, v)| (k, *v))
                .collect(),
        }
    }
}

/// An escrow counter's entries in key order, for hashing.
#[derive(Debug, Serialize)]
pub struct CanonicalCounter<'a> {
    created: Vec<(&'a ActorId, u64)>,
    transferred: Vec<(&'a (ActorId, ActorId), u64)>,
    consumed: Vec<(&'a ActorId, u64)>,
}

/// How much of a store's stock it lends HQ so HQ can take pickup orders while the store is
/// offline. From the store's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPolicy {
    /// Share of available units HQ should hold, in percent (0-100).
    pub hq_share_percent: u8,
    /// HQ holds at least one unit whenever available stock exceeds this many units.
    pub min_one_above: u32,
}

impl Default for AllocationPolicy {
    fn default() -> Self {
        AllocationPolicy {
            hq_share_percent: 30,
            min_one_above: 2,
        }
    }
}

impl AllocationPolicy {
    /// Units the store should transfer to HQ now so HQ holds its target share, bounded by the
    /// store's own rights. `None` when HQ already holds enough.
    pub fn top_up(&self, counter: &EscrowCounter, store: &ActorId, hq: &ActorId) -> Option<u32> {
        let available = counter.available().max(0) as u64;
        let mut target = available * u64::from(self.hq_share_percent.min(100)) / 100;
        if target == 0 && available > u64::from(self.min_one_above) {
            target = 1;
        }
        let held = counter.rights(hq).max(0) as u64;
        let store_rights = counter.rights(store).max(0) as u64;
        let want = target.saturating_sub(held).min(store_rights);
        u32::try_from(want).ok().filter(|n| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actors() -> (ActorId, ActorId) {
        (
            ActorId::parse("store:madrid-centro").unwrap(),
            ActorId::hq(),
        )
    }

    #[test]
    fn rights_follow_the_matrix() {
        let (store, hq) = actors();
        let mut c = EscrowCounter::default();
        c.create(&store, 10);
        c.transfer(&store, &hq, 3);
        c.consume(&hq, 2);
        c.consume(&store, 4);
        assert_eq!(c.rights(&store), 3);
        assert_eq!(c.rights(&hq), 1);
        assert_eq!(c.available(), 4);
    }

    #[test]
    fn policy_tops_up_hq_to_its_share_and_at_least_one_above_the_threshold() {
        let (store, hq) = actors();
        let policy = AllocationPolicy::default();
        let mut c = EscrowCounter::default();
        c.create(&store, 10);
        assert_eq!(policy.top_up(&c, &store, &hq), Some(3));
        c.transfer(&store, &hq, 3);
        assert_eq!(policy.top_up(&c, &store, &hq), None);

        let mut small = EscrowCounter::default();
        small.create(&store, 3);
        assert_eq!(policy.top_up(&small, &store, &hq), Some(1));
        let mut tiny = EscrowCounter::default();
        tiny.create(&store, 2);
        assert_eq!(policy.top_up(&tiny, &store, &hq), None);
    }
}
