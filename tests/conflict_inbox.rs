//! The conflict inbox over a real broker (embedded rumqttd): an item raised at a store while
//! its link is down shows at HQ, with the same id and facts, once the link heals; resolved at
//! HQ, it shows resolved at the store, naming who and why.

mod sync_support;

use std::time::Duration;
use storenode::domain::conflict::{conflicts, find, ConflictKind};
use storenode::domain::count::plan_count;
use storenode::domain::{Ean13, Payload};
use sync_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_raised_offline_reach_hq_after_healing_and_hq_resolutions_reach_the_store() {
    let chain = Chain::start(embedded_broker()).await;
    chain.seed().await;
    chain.a_sync.set_link(false);
    let hq_sync = chain.hq_sync.clone();
    wait_for(Duration::from_secs(5), "HQ sees store a offline", || {
        hq_sync
            .stores()
            .iter()
            .any(|l| l.store == store_a() && !l.online)
    })
    .await;

    // While the store is cut off: HQ raises the price, the store sells at the old one, and a
    // count at the store finds the shelf empty (more missing than its own rights cover).
    let put = chain
        .hq
        .submit(vec![Payload::CatalogPut {
            sku: sku(),
            ean: Ean13::parse("4006381333931").unwrap(),
            name: "Green tea".into(),
            price_cents: 300,
            vat_bp: 1000,
        }])
        .await
        .unwrap();
    // The store's clock has not heard of the put: its sale must come a millisecond later.
    let put_ms = put.ops[0].hlc.wall_ms();
    wait_for(Duration::from_secs(1), "the clock passes HQ's put", || {
        storenode::store::now_ms() > put_ms
    })
    .await;
    chain.a.submit(vec![sale(&store_a(), 1)]).await.unwrap();
    let count = chain
        .a
        .read(|r| plan_count(r.state(), &store_a(), &sku(), 0));
    chain.a.submit(count).await.unwrap();
    let at_store = chain.a.read(|r| conflicts(r.state(), Some(&store_a())));
    let kinds: Vec<ConflictKind> = at_store.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [ConflictKind::Shrinkage],
        "store alone sees only its count"
    );
    assert!(chain
        .hq
        .read(|r| conflicts(r.state(), Some(&store_a())))
        .is_empty());

    chain.a_sync.set_link(true);
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(10))
        .await;
    let hq = chain.hq.clone();
    let a = chain.a.clone();
    wait_for(
        Duration::from_secs(5),
        "both sides list the same two items",
        || {
            let h = hq.read(|r| conflicts(r.state(), Some(&store_a())));
            let s = a.read(|r| conflicts(r.state(), Some(&store_a())));
            h.len() == 2 && h == s
        },
    )
    .await;
    let items = chain.hq.read(|r| conflicts(r.state(), Some(&store_a())));
    let shrinkage = items
        .iter()
        .find(|c| c.kind == ConflictKind::Shrinkage)
        .unwrap()
        .id
        .clone();
    assert!(items.iter().any(|c| c.kind == ConflictKind::StalePrice));
    assert!(chain
        .hq
        .read(|r| conflicts(r.state(), Some(&store_b())))
        .is_empty());

    chain
        .hq
        .submit(vec![Payload::ConflictResolve {
            store: store_a(),
            conflict: shrinkage.clone(),
            action: "accept_loss".into(),
            note: "broken jars binned".into(),
            by: "ana@hq".into(),
        }])
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(5),
        "the store sees HQ's resolution",
        || {
            a.read(|r| find(r.state(), &shrinkage))
                .and_then(|c| c.resolution)
                .is_some_and(|r| r.by == "ana@hq" && r.action == "accept_loss")
        },
    )
    .await;
    let at_store = chain.a.read(|r| find(r.state(), &shrinkage)).unwrap();
    assert_eq!(at_store.resolution.unwrap().note, "broken jars binned");
}
