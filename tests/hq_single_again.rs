//! A store that followed leased HQ processes (PostgreSQL, down stream numbered by lease
//! epochs) pointed back at a single HQ (no `[storage] url`, epoch 0): the single HQ's
//! down-batches are refused and counted (`single_hq`), never silently applied against the
//! wrong numbering nor silently lost, until the stopped store's cursor is reset with
//! `storenode store reset-hq-cursor`; then it receives what it missed.

mod pg_support;
mod sync_support;

use pg_support::hq::store;
use pg_support::PgCluster;
use std::time::Duration;
use storenode::domain::{ActorId, Ean13, Payload, Sku};
use storenode::store::Node;
use storenode::sync::persist::{get_u64, KEY_DOWN_IDX};
use storenode::sync::protocol::config::LeaseSettings;
use storenode::sync::protocol::store::DownCursor;
use storenode::sync::{spawn_hq_sync, HqSyncConfig, HqSyncHandle};
use sync_support::*;

fn put(sku: &str) -> Payload {
    Payload::CatalogPut {
        sku: Sku::parse(sku).unwrap(),
        ean: Ean13::parse("4006381333931").unwrap(),
        name: "Tea".into(),
        price_cents: 250,
        vat_bp: 1000,
    }
}

fn has(node: &Node, sku: &str) -> bool {
    let sku = Sku::parse(sku).unwrap();
    node.read(|r| r.state().catalog.contains(&sku))
}

async fn cursor(node: &Node) -> DownCursor {
    DownCursor::unpack(node.query(|c| get_u64(c, KEY_DOWN_IDX)).await.unwrap())
}

fn hq_sync(
    node: &Node,
    broker: u16,
    leases: Option<LeaseSettings>,
) -> (HqSyncHandle, tokio::sync::watch::Sender<bool>) {
    let mut cfg = HqSyncConfig::new(CHAIN, vec![store_a()], "127.0.0.1", broker);
    cfg.leases = leases;
    let (stop, rx) = tokio::sync::watch::channel(false);
    (spawn_hq_sync(node.clone(), cfg, rx), stop)
}

async fn close(node: Node) {
    tokio::task::spawn_blocking(move || node.close_blocking())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_followed_leased_hq_follows_a_single_hq_again_once_its_cursor_is_reset() {
    let cluster = PgCluster::start();
    let url = cluster.new_database().await;
    let broker = embedded_broker();
    let dir = tempfile::tempdir().unwrap();
    let hq_db = dir.path().join("hq.db");

    // HQ on PostgreSQL with leases: the store follows epoch >= 1.
    let patience = Some(Duration::from_secs(10));
    let (hq, _) = storenode::store::pg::open_node(&hq_db, ActorId::hq(), &url, patience)
        .await
        .unwrap();
    let leases = LeaseSettings {
        url: url.clone(),
        holder: "hq-1".to_string(),
    };
    let (leased, stop_leased) = hq_sync(&hq, broker, Some(leases));
    let (node, sync, stop_store) = store(dir.path(), store_a(), broker);
    hq.submit(vec![put("SKU-1")]).await.unwrap();
    let n = node.clone();
    wait_for(Duration::from_secs(20), "the leased HQ's op", || {
        has(&n, "SKU-1")
    })
    .await;
    let n = node.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cursor(&n).await.epoch == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the cursor counts in epochs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The same HQ file, alone on SQLite again (epoch 0).
    stop_leased.send_replace(true);
    leased.join().await;
    close(hq).await;
    let hq = Node::open(&hq_db, ActorId::hq()).unwrap();
    let (single, stop_single) = hq_sync(&hq, broker, None);
    hq.submit(vec![put("SKU-2")]).await.unwrap();
    let metrics = sync.metrics();
    wait_for(
        Duration::from_secs(20),
        "the single HQ's batch refused",
        || metrics.rejected("single_hq") > 0,
    )
    .await;
    assert!(!has(&node, "SKU-2"), "not applied in the wrong numbering");

    // Stop the store, reset its cursor, start it again: it gets what it missed.
    stop_store.send_replace(true);
    sync.join().await;
    close(node).await;
    let store_db = dir.path().join(format!("{}.db", store_a()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_storenode"))
        .args(["store", "reset-hq-cursor", "--db"])
        .arg(&store_db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("now epoch 0 index 0"), "{stdout}");
    let (node, sync, _stop) = store(dir.path(), store_a(), broker);
    let n = node.clone();
    wait_for(
        Duration::from_secs(20),
        "the single HQ's op after the reset",
        || has(&n, "SKU-2"),
    )
    .await;
    assert_eq!(cursor(&node).await.epoch, 0);
    assert_eq!(sync.metrics().rejected("single_hq"), 0);

    // HQ's database is not a store's: refused, nothing changed.
    stop_single.send_replace(true);
    single.join().await;
    close(hq).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_storenode"))
        .args(["store", "reset-hq-cursor", "--db"])
        .arg(&hq_db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a store's"));
}
