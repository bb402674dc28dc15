//! Running totals by key, sorted by key, for the parts of an escrow counter. Nearly every part
//! holds a single entry (a store's own receipts, its own sales), so one entry lives inline, in
//! the 32 bytes a `(ActorId, u64)` takes, with no allocation; a second entry moves them to a
//! vector. On disk (snapshots) it is the sequence of entries, checked sorted when decoded.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Totals by key, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) enum Totals<K> {
    #[default]
    Empty,
    One((K, u64)),
    Many(Vec<(K, u64)>),
}

impl<K: Ord + Clone> Totals<K> {
    /// Add `qty` to the total of `key`, inserting it in order.
    pub(super) fn add(&mut self, key: &K, qty: u64) {
        match self {
            Totals::Empty => *self = Totals::One((key.clone(), qty)),
            Totals::One((k, v)) if k == key => *v += qty,
            Totals::One(_) => {
                let Totals::One(first) = std::mem::take(self) else {
                    return;
                };
                let added = (key.clone(), qty);
                let entries = if first.0 < added.0 {
                    vec![first, added]
                } else {
                    vec![added, first]
                };
                *self = Totals::Many(entries);
            }
            Totals::Many(entries) => match entries.binary_search_by(|(k, _)| k.cmp(key)) {
                Ok(i) => entries[i].1 += qty,
                Err(i) => {
                    if entries.capacity() == entries.len() {
                        entries.reserve_exact(1);
                    }
                    entries.insert(i, (key.clone(), qty));
                }
            },
        }
    }

    /// The total of `key` (0 if it has none).
    pub(super) fn get(&self, key: &K) -> u64 {
        let entries = self.as_slice();
        entries
            .binary_search_by(|(k, _)| k.cmp(key))
            .map_or(0, |i| entries[i].1)
    }
}

impl<K> Totals<K> {
    /// Every entry in key order.
    pub(super) fn as_slice(&self) -> &[(K, u64)] {
        match self {
            Totals::Empty => &[],
            Totals::One(entry) => std::slice::from_ref(entry),
            Totals::Many(entries) => entries,
        }
    }
}

impl<K: Serialize> Serialize for Totals<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl<'de, K: Deserialize<'de> + Ord> Deserialize<'de> for Totals<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut entries = Vec::<(K, u64)>::deserialize(d)?;
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(D::Error::custom(
                "counter entries not in strictly increasing key order",
            ));
        }
        Ok(match entries.len() {
            0 => Totals::Empty,
            1 => entries.pop().map_or(Totals::Empty, Totals::One),
            _ => {
                entries.shrink_to_fit();
                Totals::Many(entries)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        #[test]
        fn totals_hold_what_a_map_holds_in_any_order_of_adds(
            adds in proptest::collection::vec((0u8..5, 1u64..100), 0..20)
        ) {
            let mut totals = Totals::default();
            let mut map = BTreeMap::new();
            for (k, q) in &adds {
                totals.add(k, *q);
                *map.entry(*k).or_insert(0) += q;
            }
            let expected: Vec<(u8, u64)> = map.into_iter().collect();
            prop_assert_eq!(totals.as_slice(), expected.as_slice());
            for k in 0u8..6 {
                let want = expected.iter().find(|(e, _)| *e == k).map_or(0, |e| e.1);
                prop_assert_eq!(totals.get(&k), want);
            }
            let bytes = postcard::to_allocvec(&totals).unwrap();
            prop_assert_eq!(&bytes, &postcard::to_allocvec(&expected).unwrap());
            prop_assert_eq!(postcard::from_bytes::<Totals<u8>>(&bytes).unwrap(), totals);
        }
    }

    #[test]
    fn entries_out_of_order_or_repeated_do_not_decode() {
        let bytes = postcard::to_allocvec(&vec![(2u8, 1u64), (1, 1)]).unwrap();
        assert!(postcard::from_bytes::<Totals<u8>>(&bytes).is_err());
        let bytes = postcard::to_allocvec(&vec![(1u8, 1u64), (1, 1)]).unwrap();
        assert!(postcard::from_bytes::<Totals<u8>>(&bytes).is_err());
    }

    #[test]
    fn one_actor_entry_lives_inline_in_32_bytes() {
        use crate::domain::ActorId;
        assert_eq!(std::mem::size_of::<Totals<ActorId>>(), 32);
    }
}
