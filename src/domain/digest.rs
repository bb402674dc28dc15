//! State digests: SHA-256 over a canonical encoding of the merged state.
//!
//! Only merged values go in (no arrival order, no counters of messages, no clocks of the
//! replica itself), in key order, so two replicas that applied the same ops agree.

use super::ids::StoreId;
use super::state::State;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::fmt;

/// A state hash, shown as 16 hex digits (the first 8 bytes of SHA-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

struct Hasher(Sha256);

impl Hasher {
    fn feed(&mut self, label: &str, value: &impl Serialize) {
        self.0.update(label.as_bytes());
        // Serialising plain data into a Vec cannot fail; an empty section still separates labels.
        let bytes = postcard::to_allocvec(value).unwrap_or_default();
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(&bytes);
    }
    fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

/// Digest of everything the replica holds.
pub fn digest_all(state: &State) -> Digest {
    digest_where(state, |_| true, None)
}

/// Digest of what `store` shares with HQ.
pub fn digest_for_store(state: &State, store: &StoreId) -> Digest {
    digest_where(state, |s| s == store, Some(store))
}

fn digest_where(state: &State, keep: impl Fn(&StoreId) -> bool, scope: Option<&StoreId>) -> Digest {
    let mut h = Hasher(Sha256::new());
    let catalog: Vec<_> = state.catalog.iter().collect();
    h.feed("catalog", &catalog);
    let categories: Vec<_> = state.catalog.categories().collect();
    if !categories.is_empty() {
        // Fed only when set, so a chain without categories keeps its digests.
        h.feed("categories", &categories);
    }
    let stock: Vec<_> = state
        .stock
        .iter()
        .filter(|((s, _), _)| keep(s))
        .map(|(k, c)| (k, c.canonical()))
        .collect();
    h.feed("stock", &stock);
    // A sum over records, so evicted orders (`history`) count exactly as orders in memory do.
    h.feed("orders", &state.orders_sum(&keep));
    // A sum over records, so evicted sales (`history`) count exactly as sales in memory do.
    h.feed("sales", &state.sales_sum(&keep));
    let counts: Vec<_> = state
        .counts
        .iter()
        .filter(|(_, c)| keep(&c.store))
        .collect();
    h.feed("counts", &counts);
    let shortfall: Vec<_> = state
        .shortfall
        .iter()
        .filter(|((s, _), n)| keep(s) && **n > 0)
        .collect();
    h.feed("shortfall", &shortfall);
    let follows: Vec<_> = state.follows.iter().filter(|(s, _)| keep(s)).collect();
    h.feed("follows", &follows);
    let in_scope = scope.map(|s| state.customers_in_scope(s));
    let wanted = |c: &super::ids::CustomerId| in_scope.as_ref().is_none_or(|set| set.contains(c));
    let customers: Vec<_> = state
        .customers
        .iter()
        .filter(|(c, _)| wanted(c))
        .map(|(c, v)| (c, v.canonical()))
        .collect();
    h.feed("customers", &customers);
    let carts: Vec<_> = state
        .carts
        .iter()
        .filter(|(c, cart)| wanted(c) && !cart.is_empty())
        .map(|(c, cart)| (c, cart.lines()))
        .collect();
    h.feed("carts", &carts);
    let resolutions: Vec<_> = state
        .resolutions
        .iter()
        .filter(|(_, r)| keep(&r.store))
        .collect();
    h.feed("resolutions", &resolutions);
    h.finish()
}
