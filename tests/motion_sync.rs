//! Inventory in motion over the real (embedded) broker with HQ and two stores: a delivery HQ
//! announces is received at store a, a transfer from a to b travels while b is offline, and
//! units are conserved end to end (received + in transit + lost = dispatched).

mod sync_support;

use std::time::Duration;
use storenode::domain::motion::in_transit;
use storenode::domain::op::{OrderLine, ReceiptLine};
use storenode::domain::{MotionId, Payload};
use sync_support::*;

const WITHIN: Duration = Duration::from_secs(10);

fn id(s: &str) -> MotionId {
    MotionId::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_and_a_transfer_to_an_offline_store_conserve_units_over_the_broker() {
    let chain = Chain::start(embedded_broker()).await;
    chain.seed().await;
    let total = |node: &storenode::store::Node| {
        node.read(|r| {
            r.state().available(&store_a(), &sku()) + r.state().available(&store_b(), &sku())
        })
    };
    assert_eq!(total(&chain.hq), 20);

    // HQ announces a delivery to a; it reaches a, which receives it with one damaged unit.
    chain
        .hq
        .submit(vec![Payload::ShipmentNotice {
            shipment: id("S-1"),
            store: store_a(),
            reference: "ASN-1".into(),
            lines: vec![OrderLine { sku: sku(), qty: 5 }],
        }])
        .await
        .unwrap();
    let a = chain.a.clone();
    wait_for(WITHIN, "the notice reaches store a", || {
        a.read(|r| r.state().shipments.contains_key(&id("S-1")))
    })
    .await;
    chain
        .a
        .submit(vec![Payload::ShipmentReceive {
            shipment: id("S-1"),
            store: store_a(),
            lines: vec![ReceiptLine {
                sku: sku(),
                received: 5,
                damaged: 1,
            }],
            over_delivery: false,
        }])
        .await
        .unwrap();
    let hq = chain.hq.clone();
    wait_for(WITHIN, "HQ sees the shipment received", || {
        hq.read(|r| {
            r.state()
                .shipments
                .get(&id("S-1"))
                .is_some_and(|m| m.status() == "received" && m.balance()[0].damaged == 1)
        })
    })
    .await;

    // b goes offline; a sends it 4 units: they leave a's rights and show in transit at HQ.
    chain.b_sync.set_link(false);
    chain
        .a
        .submit(vec![Payload::TransferDispatch {
            transfer: id("T-1"),
            store: store_a(),
            to: store_b(),
            lines: vec![OrderLine { sku: sku(), qty: 4 }],
        }])
        .await
        .unwrap();
    assert_eq!(
        chain.a.read(|r| r.state().available(&store_a(), &sku())),
        10
    );
    wait_for(WITHIN, "HQ shows 4 units in transit to b", || {
        hq.read(|r| in_transit(r.state(), &store_b(), &sku())) == 4
    })
    .await;
    assert_eq!(total(&chain.hq), 20 + 4 - 4);

    // b comes back, gets the transfer, receives 3 of the 4 (one short).
    chain.b_sync.set_link(true);
    let b = chain.b.clone();
    wait_for(WITHIN, "the transfer reaches store b", || {
        b.read(|r| r.state().transfers.contains_key(&id("T-1")))
    })
    .await;
    chain
        .b
        .submit(vec![Payload::TransferReceive {
            transfer: id("T-1"),
            store: store_b(),
            from: store_a(),
            lines: vec![ReceiptLine {
                sku: sku(),
                received: 3,
                damaged: 0,
            }],
            over_delivery: false,
        }])
        .await
        .unwrap();
    let twice = chain
        .b
        .submit(vec![Payload::TransferReceive {
            transfer: id("T-1"),
            store: store_b(),
            from: store_a(),
            lines: vec![],
            over_delivery: false,
        }])
        .await;
    assert!(twice.is_err(), "receiving twice is refused");
    for node in [&chain.a, &chain.hq] {
        let n = node.clone();
        wait_for(WITHIN, "the receipt reaches the sender and HQ", || {
            n.read(|r| {
                r.state()
                    .transfers
                    .get(&id("T-1"))
                    .is_some_and(|m| m.status() == "received")
            })
        })
        .await;
    }
    chain.converged(&store_a(), &chain.a, WITHIN).await;
    chain.converged(&store_b(), &chain.b, WITHIN).await;
    let short = chain
        .hq
        .read(|r| r.state().transfers[&id("T-1")].discrepancies());
    assert_eq!(short.len(), 1);
    assert_eq!((short[0].sent, short[0].received, short[0].lost), (4, 3, 1));
    assert_eq!(
        chain.hq.read(|r| in_transit(r.state(), &store_b(), &sku())),
        0
    );
    // 20 seeded + 4 good from the delivery, minus the 1 unit lost in transit.
    assert_eq!(total(&chain.hq), 23);
    // Each store sees its own stock as HQ does (a store holds only its own counter in full).
    for (node, store, expect) in [(&chain.a, store_a(), 10), (&chain.b, store_b(), 13)] {
        assert_eq!(node.read(|r| r.state().available(&store, &sku())), expect);
        assert_eq!(
            chain.hq.read(|r| r.state().available(&store, &sku())),
            expect
        );
    }
    assert_no_loss_no_double(&chain).await;
}
