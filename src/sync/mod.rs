//! Sync over MQTT: stores and HQ exchange ops until they hold the same state.
//!
//! Layers, bottom up: `wire` (bytes <-> typed messages), `topic` (names), `route` (pure
//! routing decisions), `protocol` (both sides of the protocol as plain state machines, no I/O),
//! and the adapters: `link` (one rumqttc connection per node), `persist` (side tables),
//! `store_sync` and `hq_sync` (thin loops carrying out the protocol's actions). The op log in
//! SQLite is the source of truth and MQTT only transport: an op is delivered when the peer's
//! ack covers it, and every (re)connect runs anti-entropy.

pub mod broker;
pub mod hq_sync;
pub mod inspect;
pub mod lease;
pub mod link;
pub mod lookup;
pub mod metrics;
pub mod persist;
pub mod probe;
pub mod protocol;
pub mod returns;
pub mod rights;
pub mod route;
pub mod store_sync;
pub mod topic;
pub mod wire;

pub use broker::start_embedded_broker;
pub use hq_sync::{spawn_hq_sync, HqSyncConfig, HqSyncHandle, StoreLink};
pub use metrics::SyncMetrics;
pub use store_sync::{spawn_store_sync, LinkStatus, StoreSyncConfig, StoreSyncHandle};
