//! What the two sides of the protocol are configured with, start from, and report: plain data
//! shared by the protocol, the daemons, the app's config glue and the simulation.

use crate::domain::inventory::AllocationPolicy;
use crate::domain::{ActorId, CustomerId, StoreId};
use crate::signing::{HqKey, HqPublicKey, KeyError, StoreKey, StoreKeys};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How a store reaches HQ.
#[derive(Debug, Clone)]
pub struct StoreSyncConfig {
    pub chain: String,
    pub store: StoreId,
    pub broker_host: String,
    pub broker_port: u16,
    pub client_id: String,
    pub keepalive_s: u64,
    pub batch_ops_max: usize,
    pub allocation: AllocationPolicy,
    /// Reported in the retained status.
    pub version: String,
    /// Resend unacked ops after this long without ack progress.
    pub retransmit_ms: u64,
    /// Most own ops published and not yet acked.
    pub inflight_ops_max: u64,
    /// The store's ed25519 key: when set, every up-batch is signed (`SignedUp`).
    pub signing_key: Option<Arc<StoreKey>>,
    /// HQ's public key: when set, only down-batches HQ signed for this store are applied;
    /// unsigned and badly signed ones are refused and counted (`wire::down_batch`).
    pub hq_public_key: Option<Arc<HqPublicKey>>,
    /// Stamps an author's ops at each hop (`crate::sync::probe`, benchmarks); `None` in use.
    pub probe: Option<Arc<crate::sync::probe::Probe>>,
}

impl StoreSyncConfig {
    /// Defaults for everything but the names and the broker.
    pub fn new(chain: &str, store: StoreId, broker_host: &str, broker_port: u16) -> Self {
        StoreSyncConfig {
            chain: chain.to_string(),
            client_id: format!("storenode-{chain}-{store}"),
            store,
            broker_host: broker_host.to_string(),
            broker_port,
            keepalive_s: 15,
            batch_ops_max: 500,
            allocation: AllocationPolicy::default(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            retransmit_ms: 3_000,
            inflight_ops_max: 5_000,
            signing_key: None,
            hq_public_key: None,
            probe: None,
        }
    }

    /// Sign up-batches with the key kept beside the store's database at `db`, created on
    /// first start (register its public key at HQ: `storenode key --db ...`).
    pub fn with_key_beside(mut self, db: &std::path::Path) -> Result<Self, KeyError> {
        let key = StoreKey::load_or_create(db, self.store.clone())?;
        self.signing_key = Some(Arc::new(key));
        Ok(self)
    }
}

/// The store's view of its uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    pub online: bool,
    /// When the current state (online or offline) began, ms.
    pub since_ms: u64,
    /// Own ops not yet acknowledged by HQ.
    pub outbox: u64,
    /// Last ack or batch from HQ, ms.
    pub last_sync_ms: Option<u64>,
}

/// The persisted cursors a store resumes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCursors {
    pub hq_acked: u64,
    pub down_idx: u64,
}

/// Lookups HQ answers per store by default: a burst of 30, then 120 a minute (a busy counter
/// asks a few a minute; a store probing phone numbers is cut off and counted).
pub const LOOKUP_RATE_DEFAULT: crate::http_security::RateLimit = crate::http_security::RateLimit {
    per_minute: 120,
    burst: 30,
};
/// How HQ reaches the broker and which stores it serves.
#[derive(Debug, Clone)]
pub struct HqSyncConfig {
    pub chain: String,
    pub broker_host: String,
    pub broker_port: u16,
    pub client_id: String,
    pub keepalive_s: u64,
    /// Known stores; up-batches from any other store are refused.
    pub stores: Vec<StoreId>,
    pub batch_ops_max: usize,
    pub retransmit_ms: u64,
    /// Most down-log entries sent to one store and not yet acked. A store catching up acks
    /// after each ingest commits, and ingests what arrived meanwhile in one: at 5,000 a
    /// 100k-op catch-up took ~50 ingests with HQ waiting on their acks; at 20,000 it takes
    /// 15-21 and less time (`bench catch-up`). A resend after silence resends the window.
    pub inflight_ops_max: u64,
    /// The stores' public keys. When set, every up-batch must be signed by the store of its
    /// topic (`SignedUp`); unsigned, wrongly signed and cross-store batches are refused,
    /// counted and logged. `None` accepts unsigned batches (demo, tests).
    pub store_keys: Option<Arc<StoreKeys>>,
    /// Customer lookups answered per store (`crate::sync::lookup`); more are refused.
    pub lookup_rate: crate::http_security::RateLimit,
    /// HQ's key: when set, every down-batch is signed for its store (`SignedDown`).
    pub hq_key: Option<Arc<HqKey>>,
    /// Several syncing processes share the stores by leases in PostgreSQL (`sync::lease`);
    /// `None`: this process serves every store (epoch 0, the wire of a single HQ).
    pub leases: Option<LeaseSettings>,
    /// Stamps an author's ops at each hop (`crate::sync::probe`, benchmarks); `None` in use.
    pub probe: Option<Arc<crate::sync::probe::Probe>>,
}

/// Where the leases live and whose they are.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The shared log's PostgreSQL URL (`[storage] url`); never logged.
    pub url: String,
    /// This process's name in `hq_lease.holder`: its MQTT client id, unique per process.
    pub holder: String,
}

impl HqSyncConfig {
    pub fn new(chain: &str, stores: Vec<StoreId>, broker_host: &str, broker_port: u16) -> Self {
        HqSyncConfig {
            chain: chain.to_string(),
            broker_host: broker_host.to_string(),
            broker_port,
            client_id: format!("storenode-{chain}-hq"),
            keepalive_s: 15,
            stores,
            batch_ops_max: 500,
            retransmit_ms: 3_000,
            inflight_ops_max: 20_000,
            store_keys: None,
            lookup_rate: LOOKUP_RATE_DEFAULT,
            hq_key: None,
            leases: None,
            probe: None,
        }
    }

    /// Sign down-batches with the key kept beside HQ's database at `db`, created on first
    /// start (every store config names its public half: `storenode key --hq --db ...`).
    pub fn with_key_beside(mut self, db: &std::path::Path) -> Result<Self, KeyError> {
        self.hq_key = Some(Arc::new(HqKey::load_or_create(db)?));
        Ok(self)
    }
}

/// HQ's view of one store's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLink {
    pub store: StoreId,
    /// From the store's retained status (its Last Will turns it false) and its acks.
    pub online: bool,
    pub last_seen_ms: Option<u64>,
    /// The store's own ops not yet acked by HQ, as the store last reported.
    pub outbox: u64,
    /// What the store last reported as durably applied (contiguous seq per actor).
    pub acked_vv: BTreeMap<ActorId, u64>,
    /// Down-log entries not yet acked by the store.
    pub down_pending: u64,
    /// Last down-log index the store reported applied (0 until it acks after HQ starts).
    pub down_acked: u64,
    /// Software version the store reported.
    pub version: Option<String>,
    /// This process holds the store's lease and serves it (always, without leases): only
    /// then is this view the store's link (`app::hq_cluster` publishes only these).
    pub served: bool,
}

/// HQ's persisted routing state (`persist::load_hq`).
#[derive(Debug, Clone, Default)]
pub struct HqLoaded {
    pub routed: BTreeMap<ActorId, u64>,
    /// Stores that already have a down-log (see `sync_stores`).
    pub stores: BTreeSet<StoreId>,
    pub scope: BTreeSet<(StoreId, CustomerId)>,
    pub downlog_last: BTreeMap<StoreId, u64>,
}
