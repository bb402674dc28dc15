//! Two real `storenode hq` processes syncing on one PostgreSQL log and one real mosquitto,
//! and two store nodes, spread over the processes by leases, holding HQ's one product: the
//! start tests/hq_failover.rs and tests/hq_rights.rs share.

use super::hq::leases_until;
use super::hq::{leases, spread, store, Hq};
use super::http::http;
use crate::sync_support::{sku, store_a, store_b, wait_for, Mosquitto};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use storenode::domain::StoreId;
use storenode::store::Node;
use storenode::sync::StoreSyncHandle;
use tokio::sync::watch;

/// A store node, its sync engine and the sender that stops it.
pub type StoreNode = (Node, StoreSyncHandle, watch::Sender<bool>);

/// The running pair. Fields drop in order: the stores, then the HQ processes, the files,
/// the broker.
pub struct Pair {
    /// `nodes[i]` is `stores[i]`'s.
    pub nodes: Vec<StoreNode>,
    pub stores: [StoreId; 2],
    pub hqs: [Hq; 2],
    pub dir: tempfile::TempDir,
    pub broker: Mosquitto,
}

impl Pair {
    /// Start both processes ("hq-one", "hq-two") on the log at `url` and stores a and b,
    /// wait until each process holds one store's lease, put the product in the catalog
    /// through hq-one and wait until both stores have it.
    pub async fn start(url: &str) -> Pair {
        let broker = Mosquitto::start();
        let dir = tempfile::tempdir().unwrap();
        let hqs = [
            Hq::start(dir.path(), "hq-one", broker.port, url),
            Hq::start(dir.path(), "hq-two", broker.port, url),
        ];
        let stores = [store_a(), store_b()];
        let nodes: Vec<_> = stores
            .iter()
            .map(|s| store(dir.path(), s.clone(), broker.port))
            .collect();
        leases_until(url, Duration::from_secs(20), "the stores spread", spread).await;

        let put = json!({"name": "Green tea", "ean": "4006381333931", "price_cents": 250, "vat_bp": 1000});
        let path = format!("/api/v1/catalog/{}", sku().as_str());
        let (status, body) = http(hqs[0].port, "PUT", &path, None, Some(&put)).unwrap();
        assert_eq!(status, 200, "{body}");
        for (node, _, _) in &nodes {
            let n = node.clone();
            wait_for(Duration::from_secs(10), "catalog reaches the store", || {
                n.read(|r| r.state().catalog.contains(&sku()))
            })
            .await;
        }
        Pair {
            nodes,
            stores,
            hqs,
            dir,
            broker,
        }
    }
}

/// Which of `hqs` holds store a's lease now (the victim) and which does not (the survivor),
/// with the leases read.
pub async fn holder_of_a(
    url: &str,
    hqs: &[Hq; 2],
) -> (usize, usize, BTreeMap<String, (String, i64)>) {
    let held = leases(url).await;
    let victim = usize::from(held[store_a().as_str()].0 != hqs[0].name);
    (victim, 1 - victim, held)
}

/// Start `hq` again and wait until the stores are spread over both processes again.
pub async fn restart_until_spread(url: &str, hq: &mut Hq) -> BTreeMap<String, (String, i64)> {
    hq.restart();
    leases_until(
        url,
        Duration::from_secs(20),
        "the stores spread back",
        spread,
    )
    .await
}
