//! HQ and two stores in this process, each a `Node` on its own SQLite file, synced through a
//! private mosquitto: the setup of the network scenarios. Store A runs the workload; store B
//! follows the same customers, so A's cart edits travel A -> HQ -> B.

use super::mosquitto::Mosquitto;
use super::scratch::Scratch;
use super::workload::{ean, sku, store};
use crate::domain::{ActorId, CustomerId, Payload, StoreId};
use crate::store::Node;
use crate::sync::probe::Probe;
use crate::sync::{
    spawn_hq_sync, spawn_store_sync, HqSyncConfig, HqSyncHandle, StoreSyncConfig, StoreSyncHandle,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Chain name in MQTT topics.
const CHAIN: &str = "bench";
/// Customers both stores follow.
pub const CUSTOMERS: usize = 20;
/// Products in the shared catalog.
pub const SKUS: usize = 200;
/// How often conditions are polled while waiting.
const POLL_MS: u64 = 2;

pub fn second_store() -> StoreId {
    StoreId::parse("second-store").unwrap_or_else(|_| unreachable!("constant store id is valid"))
}

pub fn customer(i: usize) -> CustomerId {
    CustomerId::parse(&format!("C-net-{}", i % CUSTOMERS))
        .unwrap_or_else(|_| unreachable!("generated customer id is valid"))
}

/// A running chain. Call `close` to stop the sync engines before dropping.
pub struct Chain {
    pub hq: Node,
    pub a: Node,
    pub b: Node,
    pub b_sync: StoreSyncHandle,
    hq_sync: HqSyncHandle,
    a_sync: StoreSyncHandle,
    shutdown: watch::Sender<bool>,
    pub broker: Mosquitto,
    _scratch: Scratch,
}

impl Chain {
    /// With a probe, every sync engine stamps its author's ops (`sync::probe`).
    pub async fn start(probe: Option<Arc<Probe>>) -> anyhow::Result<Chain> {
        let broker = Mosquitto::start()?;
        let scratch = Scratch::new("chain")?;
        let hq = Node::open(&scratch.file("hq.db"), ActorId::hq())?;
        let a = Node::open(&scratch.file("a.db"), store().actor())?;
        let b = Node::open(&scratch.file("b.db"), second_store().actor())?;
        let (shutdown, rx) = watch::channel(false);
        let port = broker.port;
        let mut hq_cfg = HqSyncConfig::new(CHAIN, vec![store(), second_store()], "127.0.0.1", port);
        hq_cfg.probe = probe.clone();
        let hq_sync = spawn_hq_sync(hq.clone(), hq_cfg, rx.clone());
        let mut a_cfg = StoreSyncConfig::new(CHAIN, store(), "127.0.0.1", port);
        a_cfg.probe = probe.clone();
        let a_sync = spawn_store_sync(a.clone(), a_cfg, rx.clone());
        let mut b_cfg = StoreSyncConfig::new(CHAIN, second_store(), "127.0.0.1", port);
        b_cfg.probe = probe;
        let b_sync = spawn_store_sync(b.clone(), b_cfg, rx);
        Ok(Chain {
            hq,
            a,
            b,
            b_sync,
            hq_sync,
            a_sync,
            shutdown,
            broker,
            _scratch: scratch,
        })
    }

    /// Catalog at HQ, reaching both stores; both stores follow every bench customer.
    pub async fn seed(&self) -> anyhow::Result<()> {
        let catalog: Vec<Payload> = (0..SKUS)
            .map(|i| Payload::CatalogPut {
                sku: sku(i),
                ean: ean(i),
                name: format!("Producto {i}"),
                price_cents: 100 + i as i64,
                vat_bp: 2100,
            })
            .collect();
        for payload in catalog {
            self.hq.submit(vec![payload]).await?;
        }
        for (node, s) in [(&self.a, store()), (&self.b, second_store())] {
            for i in 0..CUSTOMERS {
                let follow = Payload::CustomerFollow {
                    customer: customer(i),
                    store: s.clone(),
                };
                node.submit(vec![follow]).await?;
            }
        }
        let last = sku(SKUS - 1);
        let (a, b, hq) = (self.a.clone(), self.b.clone(), self.hq.clone());
        wait_for(
            Duration::from_secs(30),
            "catalog and follows spread",
            move || {
                let follows = hq.read(|r| r.state().follows.len()) >= 2 * CUSTOMERS;
                follows
                    && a.read(|r| r.state().catalog.contains(&last))
                    && b.read(|r| r.state().catalog.contains(&last))
            },
        )
        .await
    }

    /// Whether store B and HQ agree on B's shared state and B holds every op HQ issued.
    /// The digests are taken only once B holds HQ's ops: each walks a whole state under its
    /// replica's read lock, which the writer waits on, so polling them every 2 ms through a
    /// catch-up cost a fifth of a core and stalled the very ingests being timed.
    pub fn b_caught_up(&self) -> bool {
        let s = second_store();
        let hq_last = self.hq.read(|r| r.next_seq() - 1);
        if self.b.read(|r| r.version().contiguous(&ActorId::hq())) < hq_last {
            return false;
        }
        let hq = self.hq.read(|r| (r.digest_for_store(&s), r.next_seq() - 1));
        let b = self.b.read(|r| {
            (
                r.digest_for_store(&s),
                r.version().contiguous(&ActorId::hq()),
            )
        });
        hq == b
    }

    pub async fn close(self) {
        self.shutdown.send_replace(true);
        self.hq_sync.join().await;
        self.a_sync.join().await;
        self.b_sync.join().await;
    }
}

/// Poll `done` until it holds or `within` passes (then an error naming `what`).
pub async fn wait_for(
    within: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while !done() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    Ok(())
}
