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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_received_short_offline_is_one_item_everywhere_and_its_resolution_travels() {
    use storenode::domain::op::{OrderLine, ReceiptLine};
    use storenode::domain::MotionId;
    let chain = Chain::start(embedded_broker()).await;
    chain.seed().await;
    chain
        .a
        .submit(vec![Payload::TransferDispatch {
            transfer: MotionId::parse("T-1").unwrap(),
            store: store_a(),
            to: store_b(),
            lines: vec![OrderLine { sku: sku(), qty: 3 }],
        }])
        .await
        .unwrap();
    let b = chain.b.clone();
    wait_for(
        Duration::from_secs(10),
        "the receiver hears of the transfer",
        || {
            b.read(|r| {
                r.state()
                    .transfers
                    .contains_key(&MotionId::parse("T-1").unwrap())
            })
        },
    )
    .await;
    // The receiving store is cut off when the van arrives one unit short.
    chain.b_sync.set_link(false);
    chain
        .b
        .submit(vec![Payload::TransferReceive {
            transfer: MotionId::parse("T-1").unwrap(),
            store: store_b(),
            from: store_a(),
            lines: vec![ReceiptLine {
                sku: sku(),
                received: 2,
                damaged: 0,
            }],
            over_delivery: false,
        }])
        .await
        .unwrap();
    let at_b = chain.b.read(|r| conflicts(r.state(), Some(&store_b())));
    assert_eq!(at_b.len(), 1);
    assert_eq!(at_b[0].kind, ConflictKind::TransferDiscrepancy);
    let id = at_b[0].id.clone();
    assert!(chain.hq.read(|r| find(r.state(), &id)).is_none());

    chain.b_sync.set_link(true);
    chain
        .converged(&store_b(), &chain.b, Duration::from_secs(10))
        .await;
    let (hq, a) = (chain.hq.clone(), chain.a.clone());
    wait_for(
        Duration::from_secs(5),
        "HQ and the sender list the same item",
        || {
            let h = hq.read(|r| find(r.state(), &id));
            let s = a.read(|r| find(r.state(), &id));
            h.is_some() && h == s && h == b.read(|r| find(r.state(), &id))
        },
    )
    .await;

    // Resolved at the receiving store: shown resolved at HQ, digests equal again.
    chain
        .b
        .submit(vec![Payload::ConflictResolve {
            store: store_b(),
            conflict: id.clone(),
            action: "confirm_loss".into(),
            note: "one box missing from the van".into(),
            by: "9002".into(),
        }])
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(5),
        "HQ sees the store's resolution",
        || {
            hq.read(|r| find(r.state(), &id))
                .and_then(|c| c.resolution)
                .is_some_and(|r| r.by == "9002" && r.action == "confirm_loss")
        },
    )
    .await;
    chain
        .converged(&store_b(), &chain.b, Duration::from_secs(10))
        .await;
}
