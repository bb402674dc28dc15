//! Glue between the sync engines and the HTTP sides: the HQ API's `SyncView` and
//! `LinkControl`, the store endpoints' `StoreSyncView`, and the sync configs built from the
//! TOML configs.

use super::StoreSyncView;
use crate::config::{HqConfig, StoreConfig};
use crate::domain::StoreId;
use crate::hq::{LinkControl, LinkStatus, SyncView};
use crate::signing::{HqPublicKey, KeyError};
use crate::sync::{HqSyncConfig, HqSyncHandle, StoreSyncConfig, StoreSyncHandle};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Prefix of every sync metric name.
const METRICS_PREFIX: &str = "storenode_sync";

/// HQ sync settings from the HQ config, with the stores' public keys when `store_keys` is
/// set (then every up-batch must be signed by its store). HQ's own key is loaded from beside
/// its database, created on first start; every down-batch is signed with it.
pub fn hq_sync_config(c: &HqConfig) -> Result<HqSyncConfig, KeyError> {
    let mut s = HqSyncConfig::new(&c.chain, c.stores.clone(), &c.mqtt.host, c.mqtt.port);
    s.client_id = c.client_id();
    s.keepalive_s = u64::from(c.mqtt.keepalive_s);
    s.store_keys = c.store_keys()?.map(Arc::new);
    let s = s.with_key_beside(&c.db)?;
    if let Some(key) = &s.hq_key {
        tracing::info!(
            public_key = %key.public_hex(),
            "down-batches are signed; every store config needs hq_public_key = \"{}\"",
            key.public_hex()
        );
    }
    match &s.store_keys {
        Some(_) => tracing::info!(stores = c.stores.len(), "store batches must be signed"),
        None => {
            tracing::warn!("no store_keys in the HQ config: unsigned store batches are accepted")
        }
    }
    Ok(s)
}

/// Store sync settings from the store config. The store's signing key is loaded from beside
/// its database, created on first start; every up-batch is signed with it. Down-batches are
/// checked against `hq_public_key`.
pub fn store_sync_config(c: &StoreConfig) -> Result<StoreSyncConfig, KeyError> {
    let mut s = StoreSyncConfig::new(&c.chain, c.store.clone(), &c.mqtt.host, c.mqtt.port);
    s.client_id = c.client_id();
    s.keepalive_s = u64::from(c.mqtt.keepalive_s);
    s.allocation = c.allocation.policy();
    s.hq_public_key = c
        .hq_public_key
        .as_deref()
        .map(HqPublicKey::parse)
        .transpose()?
        .map(Arc::new);
    let s = s.with_key_beside(&c.db_path())?;
    if let Some(key) = &s.signing_key {
        tracing::info!(
            store = %c.store,
            public_key = %key.public_hex(),
            "store batches are signed; register at HQ under [store_keys]: {} = \"{}\"",
            c.store,
            key.public_hex()
        );
    }
    Ok(s)
}

/// HQ's sync as the API sees it.
pub struct HqSyncView(pub HqSyncHandle);

impl SyncView for HqSyncView {
    fn link(&self, store: &StoreId) -> LinkStatus {
        self.0
            .stores()
            .into_iter()
            .find(|l| &l.store == store)
            .map(|l| LinkStatus {
                online: l.online,
                last_seen_ms: l.last_seen_ms,
                outbox: l.outbox,
                lag_ops: l.down_pending,
            })
            .unwrap_or_default()
    }
    fn render_metrics(&self) -> String {
        self.0.metrics().render_prometheus(METRICS_PREFIX)
    }
    fn down_acked(&self, store: &StoreId) -> Option<u64> {
        self.0
            .stores()
            .into_iter()
            .find(|l| &l.store == store)
            .map(|l| l.down_acked)
    }
}

/// A store's sync as its endpoints see it.
pub struct StoreLinkView(pub StoreSyncHandle);

impl StoreSyncView for StoreLinkView {
    fn online(&self) -> bool {
        self.0.status().online
    }
    fn outbox(&self) -> u64 {
        self.0.status().outbox
    }
    fn last_sync_ms(&self) -> Option<u64> {
        self.0.status().last_sync_ms
    }
    fn render_metrics(&self) -> String {
        self.0.metrics().render_prometheus(METRICS_PREFIX)
    }
}

/// The demo's link switch: cuts or restores a store's own uplink.
pub struct DemoLinks(pub BTreeMap<StoreId, StoreSyncHandle>);

impl LinkControl for DemoLinks {
    fn set_link(&self, store: &StoreId, online: bool) -> bool {
        match self.0.get(store) {
            Some(handle) => {
                handle.set_link(online);
                tracing::info!(%store, online, "demo link switched");
                true
            }
            None => false,
        }
    }
}

/// The terminal's view of the uplink: the store sync engine's status, and its customer
/// lookups at HQ (`sync::lookup`).
impl crate::terminal::link::LinkStatusSource for StoreSyncHandle {
    fn link(&self) -> crate::terminal::link::LinkStatus {
        let s = self.status();
        crate::terminal::link::LinkStatus {
            online: s.online,
            since_ms: Some(s.since_ms).filter(|ms| *ms > 0),
            outbox: s.outbox,
            last_sync_ms: s.last_sync_ms,
        }
    }

    fn fetch_customers<'a>(
        &'a self,
        node: &'a crate::store::Node,
        query: &'a str,
        within: std::time::Duration,
    ) -> crate::terminal::link::FetchFuture<'a> {
        use crate::sync::lookup::{fetch_from_hq, terms_for, Fetched};
        use crate::terminal::link::Fetched as Shown;
        let lookups = self.lookups();
        Box::pin(async move {
            match fetch_from_hq(node, &lookups, terms_for(query), within).await {
                Fetched::LocalOnly => Shown::LocalOnly,
                Fetched::Hq(ids) => Shown::Hq(ids),
                Fetched::HqTimeout(ids) => Shown::HqTimeout(ids),
            }
        })
    }
}
