//! One simulated store of `bench chain`: a real store node (its own SQLite file and store sync
//! engine, the default) or a light store (`light_store`: the same protocol and wire, replica
//! in memory, with `--light`). The bench reads, submits and waits through this one type.

use super::light_store::LightStore;
use super::scratch::Scratch;
use crate::domain::{Op, Payload, Replica, StoreId};
use crate::store::Node;
use crate::sync::{spawn_store_sync, StoreSyncConfig, StoreSyncHandle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A simulated store and its sync engine (cheap to clone).
#[derive(Clone)]
pub enum SimStore {
    Node { node: Node, sync: StoreSyncHandle },
    Light(LightStore),
}

impl SimStore {
    /// Start store `id` syncing through the broker at `port` (a light one with `light`).
    pub fn start(
        scratch: &Scratch,
        chain: &str,
        id: &StoreId,
        port: u16,
        light: bool,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<(SimStore, Option<JoinHandle<()>>)> {
        let cfg = StoreSyncConfig::new(chain, id.clone(), "127.0.0.1", port);
        if light {
            let (store, task) = LightStore::spawn(cfg, shutdown)?;
            return Ok((SimStore::Light(store), Some(task)));
        }
        let node = Node::open(&scratch.file(&format!("{id}.db")), id.actor())?;
        let sync = spawn_store_sync(node.clone(), cfg, shutdown);
        Ok((SimStore::Node { node, sync }, None))
    }

    /// Issue local changes; the ops once committed (in memory for a light store).
    pub async fn submit(&self, payloads: Vec<Payload>) -> anyhow::Result<Vec<Op>> {
        match self {
            SimStore::Node { node, .. } => Ok(node.submit(payloads).await?.ops),
            SimStore::Light(light) => light.submit(payloads).await,
        }
    }

    pub fn read<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        match self {
            SimStore::Node { node, .. } => node.read(f),
            SimStore::Light(light) => light.read(f),
        }
    }

    /// The seq of the store's last own op.
    pub fn last_seq(&self) -> u64 {
        self.read(|r| r.next_seq() - 1)
    }

    /// Own ops HQ has not acknowledged.
    pub fn outbox(&self) -> u64 {
        match self {
            SimStore::Node { sync, .. } => sync.status().outbox,
            SimStore::Light(light) => light.outbox(),
        }
    }

    /// Own ops with seq above `after`, at most `limit`, as stored.
    pub async fn own_ops(&self, after: u64, limit: usize) -> anyhow::Result<Vec<Op>> {
        match self {
            SimStore::Node { node, .. } => {
                let me = node.actor().clone();
                Ok(node
                    .query(move |c| Node::ops_since(c, &me, after, limit))
                    .await?)
            }
            SimStore::Light(light) => Ok(light.own_ops(after, limit)),
        }
    }

    /// Wait for a store node's engine to stop (after shutdown).
    pub async fn join(&self) {
        if let SimStore::Node { sync, .. } = self {
            sync.join().await;
        }
    }
}
