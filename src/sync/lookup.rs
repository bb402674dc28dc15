//! Customers fetched from HQ on demand (DESIGN.md §3: "a store holds only customers it needs
//! [...]; others are fetched from HQ on demand").
//!
//! A store that finds no customer locally for a phone, email or loyalty card publishes a
//! [`SignedLookup`] on `storenode/v1/{chain}/store/{store}/lookup` (QoS 1). HQ verifies it like
//! an up-batch (when store keys are configured), searches its replica for exact matches and
//! answers every lookup, also with no match, with a [`LookupReply`] on the store's `down`
//! topic. The store then issues its own `CustomerFollow` for each match, and HQ's existing
//! routing back-fills the customer's profile and cart into the store's down-log.
//!
//! Why the store authors the follow and HQ only answers ids: a `CustomerFollow` is a store's
//! decision ("this customer is looked up at my counter") and the domain lets only that store
//! author it. Letting HQ author it on a store's behalf would widen the domain's authorisation
//! rules (and HQ could then push any customer into any store's scope) for no gain: HQ must
//! answer anyway (a "no match" needs an answer so the store does not wait for nothing), and the
//! follow then travels the normal path (outbox, signed up-batch, routing, back-fill), so a
//! lost reply or a cut link loses nothing and needs no new recovery code.
//!
//! Names are never searched at HQ: a name matches too many people, and answering name searches
//! would let any store enumerate the whole chain's customers. Only exact identifiers a customer
//! hands over at the counter (phone, email, loyalty card) are looked up.
//!
//! A lookup HQ refuses (bad or missing signature when store keys are configured, another
//! store's topic, a malformed body) is counted and logged and gets no answer: the store's
//! search then ends at its deadline with `hq-timeout`.
//!
//! Payloads are `wire::Message::Lookup` / `Message::LookupReply` (same version byte and limits
//! as every sync message); the request body is signed with the store's key, domain-separated
//! from up-batches by [`SIGN_TAG`]. A replayed lookup only repeats an answer.

use super::topic::{TopicKind, Topics};
pub use super::wire::lookup::*;
use super::wire::{self, Message, WireError};
use super::SyncMetrics;
use crate::domain::customer::Customer;
use crate::domain::{CustomerId, Payload, Replica, StoreId};
use crate::http_security::RateLimiter;
use crate::signing::{HqKey, StoreKey, StoreKeys};
use crate::store::{now_ms, Node};
use rumqttc::{AsyncClient, QoS};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{broadcast, oneshot, watch};

pub use super::protocol::hq::LOOKUP_RATE_DEFAULT;
/// Fewest digits a phone or loyalty card lookup must have (shorter is a fishing expedition).
pub const LOOKUP_DIGITS_MIN: usize = 6;
/// A phone number this long or longer also matches with or without its country code.
const PHONE_NATIONAL_DIGITS: usize = 9;

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The terms a counter search may send to HQ: an email, or a digit string (tried as phone and
/// loyalty card). Anything else (names) stays local; see the module doc.
pub fn terms_for(query: &str) -> Vec<LookupTerm> {
    use crate::domain::customer::{exact_identifier, ExactId};
    match exact_identifier(query) {
        Some(ExactId::Email(e)) => vec![LookupTerm::Email(e)],
        Some(ExactId::Digits(d)) => vec![LookupTerm::Phone(d.clone()), LookupTerm::LoyaltyCard(d)],
        None => Vec::new(),
    }
}

fn phone_matches(stored: &str, wanted: &str) -> bool {
    let stored = digits(stored);
    if stored.is_empty() || wanted.is_empty() {
        return false;
    }
    if stored == wanted {
        return true;
    }
    // With or without the country code: "+34 600 111 222" and "600111222".
    let (short, long) = if stored.len() < wanted.len() {
        (stored.as_str(), wanted)
    } else {
        (wanted, stored.as_str())
    };
    short.len() >= PHONE_NATIONAL_DIGITS && long.ends_with(short)
}

fn term_matches(c: &Customer, term: &LookupTerm) -> bool {
    match term {
        LookupTerm::Phone(p) => {
            let p = digits(p);
            p.len() >= LOOKUP_DIGITS_MIN && c.phone().is_some_and(|s| phone_matches(s, &p))
        }
        LookupTerm::Email(e) => {
            let e = e.trim().to_lowercase();
            e.contains('@') && c.email().is_some_and(|s| s.trim().to_lowercase() == e)
        }
        LookupTerm::LoyaltyCard(n) => {
            let n = digits(n);
            n.len() >= LOOKUP_DIGITS_MIN && c.loyalty_card().is_some_and(|s| digits(s) == n)
        }
    }
}

/// HQ's exact-match search: at most `LOOKUP_RESULTS_MAX` customers, never erased ones.
pub fn search(replica: &Replica, terms: &[LookupTerm]) -> Vec<CustomerId> {
    replica
        .state()
        .customers
        .iter()
        .filter(|(_, c)| !c.is_erased() && terms.iter().any(|t| term_matches(c, t)))
        .take(LOOKUP_RESULTS_MAX)
        .map(|(id, _)| id.clone())
        .collect()
}

/// Why HQ did not answer a lookup (counted under the reason in the sync metrics).
#[derive(Debug, Error)]
pub enum LookupRefused {
    #[error(transparent)]
    Signature(#[from] crate::signing::Rejected),
    #[error("lookup for store {claimed} arrived on store {topic}'s topic")]
    WrongStore { topic: StoreId, claimed: StoreId },
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("store {0} is over its lookup budget")]
    RateLimited(StoreId),
}

impl LookupRefused {
    pub fn reason(&self) -> &'static str {
        match self {
            LookupRefused::Signature(r) => r.reason(),
            LookupRefused::WrongStore { .. } => "wrong_store",
            LookupRefused::Wire(e) => e.reason(),
            LookupRefused::RateLimited(_) => "rate_limited",
        }
    }
}

/// HQ's answer to a lookup that arrived on `topic_store`'s lookup topic. With `keys`, the
/// request must be signed by that store; without, the claimed store must still be the topic's.
/// The store's budget in `limiter` is charged only once the request checked out, so forged
/// lookups cannot use up a store's budget.
pub fn answer(
    replica: &Replica,
    keys: Option<&StoreKeys>,
    limiter: &RateLimiter,
    topic_store: &StoreId,
    signed: &SignedLookup,
) -> Result<LookupReply, LookupRefused> {
    match keys {
        Some(keys) => keys.verify(
            topic_store,
            &signed.store,
            &signed_bytes(&signed.body),
            signed.signature.as_deref(),
        )?,
        None if signed.store != *topic_store => {
            return Err(LookupRefused::WrongStore {
                topic: topic_store.clone(),
                claimed: signed.store.clone(),
            })
        }
        None => {}
    }
    let req = open_lookup(signed)?;
    if req.store != *topic_store {
        return Err(LookupRefused::WrongStore {
            topic: topic_store.clone(),
            claimed: req.store,
        });
    }
    if limiter.check(topic_store.as_str()).is_err() {
        return Err(LookupRefused::RateLimited(topic_store.clone()));
    }
    Ok(LookupReply {
        id: req.id,
        customers: search(replica, &req.terms),
    })
}

/// HQ's side: store keys, per-store budgets and topic names.
pub(super) struct HqLookups {
    keys: Option<Arc<StoreKeys>>,
    /// Signs every reply when set (stores holding HQ's key refuse unsigned ones).
    hq_key: Option<Arc<HqKey>>,
    limiter: RateLimiter,
    topics: Topics,
}

impl HqLookups {
    pub(super) fn new(cfg: &super::HqSyncConfig, topics: Topics) -> HqLookups {
        HqLookups {
            keys: cfg.store_keys.clone(),
            hq_key: cfg.hq_key.clone(),
            limiter: RateLimiter::new(cfg.lookup_rate),
            topics,
        }
    }

    /// HQ's hook: answer a lookup on the store's down topic (refusals are counted and logged).
    pub(super) fn answer_on_down(
        &self,
        node: &Node,
        client: Option<&AsyncClient>,
        metrics: &SyncMetrics,
        store: &StoreId,
        signed: &SignedLookup,
    ) {
        let (keys, limiter, topics) = (self.keys.as_deref(), &self.limiter, &self.topics);
        let reply = match node.read(|r| answer(r, keys, limiter, store, signed)) {
            Ok(reply) => reply,
            Err(e) => {
                metrics.reject(e.reason());
                tracing::warn!(store = %store, error = %e, "refused a customer lookup");
                return;
            }
        };
        let Some(client) = client else {
            return;
        };
        tracing::debug!(store = %store, id = reply.id, found = reply.customers.len(), "customer lookup answered");
        let reply = Message::LookupReply(reply);
        let encoded = match self.hq_key.as_deref() {
            Some(key) => wire::encode_signed_reply(key, store, &reply),
            None => wire::encode(&reply),
        };
        let sent = encoded.map(|bytes| {
            let len = bytes.len() as u64;
            client
                .try_publish(
                    topics.topic(store, TopicKind::Down),
                    QoS::AtLeastOnce,
                    false,
                    bytes,
                )
                .map(|()| len)
        });
        match sent {
            Ok(Ok(len)) => SyncMetrics::add(&metrics.bytes_sent, len),
            Ok(Err(e)) => tracing::warn!(store = %store, error = %e, "cannot send a lookup reply"),
            Err(e) => tracing::warn!(store = %store, error = %e, "cannot encode a lookup reply"),
        }
    }
}

/// Why a store's lookup got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AskError {
    /// The store is not connected to the broker (or its link is cut).
    #[error("not connected to HQ")]
    Offline,
    /// HQ did not answer in time.
    #[error("HQ did not answer in time")]
    Timeout,
}

/// A store's lookups in flight. Owned by the store's sync engine (which hands it the MQTT
/// client and HQ's replies); the terminal asks through [`fetch_from_hq`].
pub struct StoreLookups {
    store: StoreId,
    topic: Option<String>,
    key: Option<Arc<StoreKey>>,
    wanted: watch::Receiver<bool>,
    client: Mutex<Option<AsyncClient>>,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Vec<CustomerId>>>>,
    next_id: AtomicU64,
}

/// Removes a request from the waiting list however `ask` ends.
struct Waiting<'a>(&'a StoreLookups, u64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting().remove(&self.1);
    }
}

impl StoreLookups {
    pub(super) fn new(
        chain: &str,
        store: StoreId,
        key: Option<Arc<StoreKey>>,
        wanted: watch::Receiver<bool>,
    ) -> StoreLookups {
        StoreLookups {
            topic: Topics::new(chain)
                .ok()
                .map(|t| t.topic(&store, TopicKind::Lookup)),
            store,
            key,
            wanted,
            client: Mutex::new(None),
            waiting: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(now_ms()),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Vec<CustomerId>>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The engine's hook: connected (`Some`) or disconnected (`None`).
    pub(super) fn set_client(&self, client: Option<AsyncClient>) {
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = client;
    }

    /// The engine's hook: HQ answered.
    pub(super) fn on_reply(&self, reply: LookupReply) {
        if let Some(tx) = self.waiting().remove(&reply.id) {
            let _ = tx.send(reply.customers);
        }
    }

    /// Connected to the broker and the link is not cut.
    pub fn online(&self) -> bool {
        *self.wanted.borrow()
            && self
                .client
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
    }

    /// Ask HQ which customers match `terms`; waits at most `within`.
    pub async fn ask(
        &self,
        terms: Vec<LookupTerm>,
        within: Duration,
    ) -> Result<Vec<CustomerId>, AskError> {
        let client = match (&self.topic, self.online()) {
            (Some(_), true) => self
                .client
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .ok_or(AskError::Offline)?,
            _ => return Err(AskError::Offline),
        };
        let topic = self.topic.clone().ok_or(AskError::Offline)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let req = LookupRequest {
            store: self.store.clone(),
            id,
            at_ms: now_ms(),
            terms,
        };
        let bytes = encode_lookup(&req, self.key.as_deref()).map_err(|e| {
            tracing::warn!(error = %e, "cannot encode a customer lookup");
            AskError::Offline
        })?;
        let (tx, rx) = oneshot::channel();
        self.waiting().insert(id, tx);
        let _guard = Waiting(self, id);
        client
            .try_publish(topic, QoS::AtLeastOnce, false, bytes)
            .map_err(|_| AskError::Offline)?;
        match tokio::time::timeout(within, rx).await {
            Ok(Ok(ids)) => Ok(ids),
            _ => Err(AskError::Timeout),
        }
    }
}

/// How a search reached HQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// HQ could not be asked (offline, or no sync engine).
    LocalOnly,
    /// HQ answered; these customers are now held locally.
    Hq(Vec<CustomerId>),
    /// HQ did not answer, or its customers did not arrive, in time; those that did arrive.
    HqTimeout(Vec<CustomerId>),
}

fn held(node: &Node, ids: &[CustomerId]) -> Vec<CustomerId> {
    node.read(|r| {
        let s = r.state();
        ids.iter()
            .filter(|id| s.customers.get(id).is_some_and(|c| !c.is_erased()))
            .cloned()
            .collect()
    })
}

/// Fetch the customers matching `terms` from HQ into this store: ask, follow every match (HQ
/// then back-fills profile and cart through the down-log), and wait until they are applied
/// here, woken by the node's commits. Everything within `within`.
pub async fn fetch_from_hq(
    node: &Node,
    lookups: &StoreLookups,
    terms: Vec<LookupTerm>,
    within: Duration,
) -> Fetched {
    let deadline = tokio::time::Instant::now() + within;
    let mut events = node.subscribe();
    let ids = match lookups.ask(terms, within).await {
        Ok(ids) => ids,
        Err(AskError::Offline) => return Fetched::LocalOnly,
        Err(AskError::Timeout) => return Fetched::HqTimeout(Vec::new()),
    };
    let store = lookups.store.clone();
    let follow: Vec<Payload> = node.read(|r| {
        ids.iter()
            .filter(|id| !r.state().follows.contains(&(store.clone(), (*id).clone())))
            .map(|id| Payload::CustomerFollow {
                customer: id.clone(),
                store: store.clone(),
            })
            .collect()
    });
    if !follow.is_empty() {
        if let Err(e) = node.submit(follow).await {
            tracing::warn!(error = %e, "cannot follow customers found at HQ");
            return Fetched::HqTimeout(held(node, &ids));
        }
    }
    loop {
        let have = held(node, &ids);
        if have.len() == ids.len() {
            return Fetched::Hq(have);
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Fetched::HqTimeout(have),
            },
            _ = tokio::time::sleep_until(deadline) => return Fetched::HqTimeout(held(node, &ids)),
        }
    }
}

#[cfg(test)]
mod tests;
