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

/// Ship-to-store over the broker: with b offline, HQ sells the last of its rights at b and
/// then takes an order for b that a fulfils from HQ's rights at a. A count at a before the
/// units leave re-adds nothing; a dispatches them while offline; b, back online but not yet
/// told of the dispatch, receives them by the note, sets them aside, picks them and makes the
/// order ready; a comes back and everyone agrees. Neither store is oversold and every unit is
/// accounted for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ship_to_store_order_is_dispatched_and_received_with_either_store_offline() {
    use storenode::domain::count::plan_count;
    use storenode::domain::op::Advance;
    use storenode::domain::order::OrderStatus;
    use storenode::domain::ship_to_store::dispatch_of;
    use storenode::domain::{ActorId, OrderId};

    let chain = Chain::start(embedded_broker()).await;
    chain.seed().await;
    assert_eq!(units(&chain.hq), 20);

    chain.b_sync.set_link(false);
    let hq_at_b = chain
        .hq
        .read(|r| r.state().rights(&store_b(), &sku(), &ActorId::hq()));
    assert!(hq_at_b > 0);
    // HQ's own rights at the offline b go first, as a plain order.
    hq_order(&chain, "O-1", hq_at_b as u32).await;
    let plain = chain.hq.read(|r| {
        r.state().orders[&OrderId::parse("O-1").unwrap()]
            .ship
            .clone()
    });
    assert!(plain.is_none());
    // The next order for b ships from a, out of HQ's rights there.
    hq_order(&chain, "O-2", 2).await;
    let ship = chain
        .hq
        .read(|r| {
            r.state().orders[&OrderId::parse("O-2").unwrap()]
                .ship
                .clone()
        })
        .expect("shipped from another store");
    assert_eq!(ship.store, store_a());
    let a = chain.a.clone();
    wait_for(WITHIN, "a sees the order it ships for", || {
        a.read(|r| r.state().transfers.contains_key(&ship.transfer))
    })
    .await;
    assert_eq!(units(&chain.hq), 20, "HQ's view: nothing created or lost");

    // The 10 units are all still on a's shelf: a count finds nothing to add.
    let count = chain
        .a
        .read(|r| plan_count(r.state(), &store_a(), &sku(), 10));
    assert_eq!(count.len(), 1, "only the count's record: {count:?}");
    chain.a.submit(count).await.unwrap();
    assert_eq!(
        chain.a.read(|r| r.state().available(&store_a(), &sku())),
        8,
        "the order's 2 are not for sale at a"
    );

    // a goes offline and dispatches the units (the note prints there).
    chain.a_sync.set_link(false);
    let dispatch = chain
        .a
        .read(|r| dispatch_of(r.state(), &ship.transfer, &store_a()))
        .expect("a sends it");
    chain.a.submit(vec![dispatch]).await.unwrap();
    assert_eq!(
        chain.a.read(|r| r.state().on_hand(&store_a(), &sku())),
        8,
        "the units left a's shelf"
    );

    // b comes back; HQ has not heard of the dispatch, yet b receives what arrived.
    chain.b_sync.set_link(true);
    let b = chain.b.clone();
    wait_for(WITHIN, "the shipped order reaches b", || {
        b.read(|r| r.state().transfers.contains_key(&ship.transfer))
    })
    .await;
    assert_eq!(
        chain
            .b
            .read(|r| r.state().transfers[&ship.transfer].status()),
        "awaiting_dispatch"
    );
    let own_before = chain.b.read(|r| r.state().available(&store_b(), &sku()));
    receive(&chain, &ship.transfer, 2).await;
    assert_eq!(
        chain.b.read(|r| r.state().available(&store_b(), &sku())),
        own_before,
        "arrived units are the order's, not for sale at b"
    );
    let o2 = OrderId::parse("O-2").unwrap();
    chain
        .b
        .submit(vec![
            Payload::OrderPick {
                order_id: o2.clone(),
                store: store_b(),
                sku: sku(),
                picked: 2,
            },
            Payload::OrderAdvance {
                order_id: o2.clone(),
                store: store_b(),
                to: Advance::Ready,
            },
        ])
        .await
        .unwrap();
    let hq = chain.hq.clone();
    wait_for(WITHIN, "HQ sees the shipped order ready", || {
        hq.read(|r| r.state().orders[&o2].status == OrderStatus::Ready)
    })
    .await;

    // a comes back: its dispatch and b's receipt meet everywhere.
    chain.a_sync.set_link(true);
    for node in [&chain.a, &chain.b, &chain.hq] {
        let n = node.clone();
        wait_for(WITHIN, "the transfer is dispatched and received", || {
            n.read(|r| {
                r.state()
                    .transfers
                    .get(&ship.transfer)
                    .is_some_and(|m| m.status() == "received" && m.dispatch.is_some())
            })
        })
        .await;
    }
    chain.converged(&store_a(), &chain.a, WITHIN).await;
    chain.converged(&store_b(), &chain.b, WITHIN).await;
    assert_eq!(units(&chain.hq), 20);
    assert_never_oversold(&chain);
    let m = chain
        .hq
        .read(|r| r.state().transfers[&ship.transfer].balance());
    assert_eq!(
        (
            m[0].sent,
            m[0].dispatched,
            m[0].received,
            m[0].in_transit,
            m[0].lost
        ),
        (2, 2, 2, 0, 0)
    );
    assert_eq!(
        chain.hq.read(|r| r.state().reserved(&store_b(), &sku())),
        u64::from(hq_at_b as u32) + 2
    );
    assert_no_loss_no_double(&chain).await;
}

/// A ship-to-store order cancelled at HQ while the sending store a is offline and has not
/// dispatched: when a is back, the cancel reaches it (HQ routes it to the sender), a keeps the
/// units (a withdrawal), they are for sale at a again, and b can never receive them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ship_to_store_order_cancelled_before_dispatch_leaves_the_units_at_the_sender() {
    use storenode::domain::op::CancelKind;
    use storenode::domain::{ActorId, OrderId};

    let chain = Chain::start(embedded_broker()).await;
    chain.seed().await;
    // b offline, so it does not top up HQ's rights there between the two orders.
    chain.b_sync.set_link(false);
    let hq_at_b = chain
        .hq
        .read(|r| r.state().rights(&store_b(), &sku(), &ActorId::hq()));
    hq_order(&chain, "O-1", hq_at_b as u32).await;
    hq_order(&chain, "O-2", 3).await;
    chain.b_sync.set_link(true);
    let o2 = OrderId::parse("O-2").unwrap();
    let transfer = chain
        .hq
        .read(|r| r.state().orders[&o2].ship.clone())
        .expect("shipped from a")
        .transfer;
    let a = chain.a.clone();
    wait_for(WITHIN, "a sees the order it ships for", || {
        a.read(|r| r.state().transfers.contains_key(&transfer))
    })
    .await;
    let a_before = chain.a.read(|r| r.state().available(&store_a(), &sku()));

    chain.a_sync.set_link(false);
    chain
        .hq
        .submit(vec![Payload::OrderCancel {
            order_id: o2.clone(),
            store: store_b(),
            kind: CancelKind::Cancelled,
        }])
        .await
        .unwrap();
    chain.a_sync.set_link(true);
    let hq = chain.hq.clone();
    wait_for(WITHIN, "HQ sees a keep the units", || {
        hq.read(|r| {
            r.state()
                .transfers
                .get(&transfer)
                .is_some_and(|t| t.status() == "withdrawn")
        })
    })
    .await;
    assert_eq!(
        chain.a.read(|r| r.state().available(&store_a(), &sku())),
        a_before + 3,
        "back on sale at a"
    );
    let b = chain.b.clone();
    wait_for(WITHIN, "b learns the transfer was withdrawn", || {
        b.read(|r| {
            r.state()
                .transfers
                .get(&transfer)
                .is_some_and(|t| t.status() == "withdrawn")
        })
    })
    .await;
    let refused = chain
        .b
        .submit(vec![Payload::TransferReceive {
            transfer: transfer.clone(),
            store: store_b(),
            from: store_a(),
            lines: vec![ReceiptLine {
                sku: sku(),
                received: 3,
                damaged: 0,
            }],
            over_delivery: false,
        }])
        .await;
    assert!(refused.is_err(), "nothing travels, nothing is received");
    chain.converged(&store_a(), &chain.a, WITHIN).await;
    chain.converged(&store_b(), &chain.b, WITHIN).await;
    assert_eq!(units(&chain.hq), 20);
    assert_never_oversold(&chain);
    assert_no_loss_no_double(&chain).await;
}

/// Every unit of the chain as `node` sees it: available and reserved at both stores, set
/// aside for dispatch at either, and in transit to b.
fn units(node: &storenode::store::Node) -> i64 {
    node.read(|r| {
        let s = r.state();
        [store_a(), store_b()]
            .iter()
            .map(|st| {
                s.available(st, &sku())
                    + s.reserved(st, &sku()) as i64
                    + s.outgoing(st, &sku()) as i64
            })
            .sum::<i64>()
            + in_transit(s, &store_b(), &sku()) as i64
    })
}

/// HQ takes order `n` for b as its API does: from its rights at b, else shipped from a.
async fn hq_order(chain: &Chain, n: &str, qty: u32) {
    use storenode::domain::ship_to_store::{plan_order, OrderRequest};
    use storenode::domain::{CustomerId, OrderId};
    let req = OrderRequest {
        order_id: OrderId::parse(n).unwrap(),
        store: store_b(),
        customer: CustomerId::parse("C-0009").unwrap(),
        lines: vec![OrderLine { sku: sku(), qty }],
        pickup_code: "ABC234".into(),
        transfer: id(&format!("T-{n}")),
    };
    let sources = vec![store_a(), store_b()];
    let build: storenode::store::BuildPayloads = Box::new(move |r, now| {
        plan_order(r.state(), r.actor(), &sources, req, now, 1_000).map(|p| vec![p])
    });
    chain.hq.submit_built(build, |_, _| Ok(())).await.unwrap();
}

/// b receives `qty` good units of `transfer` as its terminal does (setting aside what the
/// order awaits in the same commit).
async fn receive(chain: &Chain, transfer: &MotionId, qty: u32) {
    use storenode::domain::ship_to_store::plan_arrivals;
    let transfer = transfer.clone();
    let build: storenode::store::BuildPayloads = Box::new(move |r, _| {
        let lines = vec![ReceiptLine {
            sku: sku(),
            received: qty,
            damaged: 0,
        }];
        let arrived = plan_arrivals(r.state(), &transfer, &store_b(), &lines);
        let receipt = Payload::TransferReceive {
            transfer,
            store: store_b(),
            from: store_a(),
            lines,
            over_delivery: false,
        };
        Ok(std::iter::once(receipt).chain(arrived).collect())
    });
    chain.b.submit_built(build, |_, _| Ok(())).await.unwrap();
}

/// Never oversold: HQ's view of both stores, and each store's view of its own stock (a store
/// holds only its own counter in full), every replica's own rights non-negative.
fn assert_never_oversold(chain: &Chain) {
    use storenode::domain::ActorId;
    for (node, s, actor) in [
        (&chain.hq, store_a(), ActorId::hq()),
        (&chain.hq, store_b(), ActorId::hq()),
        (&chain.a, store_a(), store_a().actor()),
        (&chain.b, store_b(), store_b().actor()),
    ] {
        assert!(node.read(|r| r.state().available(&s, &sku())) >= 0);
        assert!(node.read(|r| r.state().rights(&s, &sku(), &actor)) >= 0);
    }
}
