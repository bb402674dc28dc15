//! Orders out of memory (`store::order_history`): finished orders every replica holding them
//! has acked leave the in-memory replica for `order_history`, digests stay those of a replay
//! of the whole log, late ops and returns against them are answered as before, readers find
//! them by id, code and customer, and a node rebuilt without its snapshot takes them back into
//! memory. Real nodes on real SQLite files.

mod history_support;
mod terminal_support;

use history_support::{
    assert_digest_of_whole_log, assert_rebuild_takes_history_back, hq_acks, lucia, madrid,
    madrid_stocked, reopen, restored_madrid, rows, runtime, sku, Kind, POLICY, T0,
};
use std::path::Path;
use storenode::domain::conflict::conflicts;
use storenode::domain::op::{Advance, CancelKind, OrderLine, ReceiveReason, Tender};
use storenode::domain::order::OrderStatus;
use storenode::domain::returns::{plan_return, ReturnAsk};
use storenode::domain::{ActorId, CustomerId, Op, OrderId, Payload, Replica, SaleId, Sku};
use storenode::store::{order_history, Node};

/// Finished orders beyond those the node keeps in memory whatever happens.
const OLD: usize = 20;
const ORDERS: usize = order_history::ORDERS_KEPT_IN_MEMORY + OLD;
/// Ops madrid makes per order: place, pick, ready, hand over.
const OPS_PER_ORDER: u64 = 4;

fn order_id(n: usize) -> OrderId {
    OrderId::parse(&format!("O-{n}")).unwrap()
}
fn other(n: usize) -> CustomerId {
    CustomerId::parse(&format!("C-9{n:03}")).unwrap()
}
fn code(n: usize) -> String {
    format!("K{n:05}")
}

/// Order `n` at madrid, placed, picked, readied and handed over: two units of one sku; every
/// other one Lucía's.
fn order_ops(m: &mut Replica, n: usize) -> Vec<Op> {
    let at = T0 + 200 + n as u64;
    let payloads = [
        Payload::OrderPlace {
            order_id: order_id(n),
            store: madrid(),
            customer: if n.is_multiple_of(2) {
                lucia()
            } else {
                other(n)
            },
            lines: vec![OrderLine {
                sku: sku(n),
                qty: 2,
            }],
            pickup_code: code(n),
            placed_at_ms: at,
        },
        Payload::OrderPick {
            order_id: order_id(n),
            store: madrid(),
            sku: sku(n),
            picked: 2,
        },
        Payload::OrderAdvance {
            order_id: order_id(n),
            store: madrid(),
            to: Advance::Ready,
        },
        Payload::OrderAdvance {
            order_id: order_id(n),
            store: madrid(),
            to: Advance::HandedOver,
        },
    ];
    payloads
        .into_iter()
        .map(|p| m.prepare(at, p).unwrap().0)
        .collect()
}

/// Madrid's replica with the catalog and stock, and its ops: three receipts (seq 1-3), then
/// `ORDERS` handed-over orders (order `n`'s ops are seq `4 + 4n ..= 7 + 4n`).
fn madrid_history() -> (Replica, Vec<Op>, Vec<Op>) {
    let (mut m, catalog, mut own) = madrid_stocked();
    for n in 0..ORDERS {
        own.extend(order_ops(&mut m, n));
    }
    (m, catalog, own)
}

/// A madrid node holding `madrid_history`, its own ops handed over at once (a restore).
fn collecting_store(db: &Path) -> Node {
    let (_, catalog, own) = madrid_history();
    assert_eq!(own.len(), 3 + ORDERS * OPS_PER_ORDER as usize);
    restored_madrid(db, catalog, own)
}

/// The seq of order `n`'s last own op (its handover).
fn handover_seq(n: usize) -> u64 {
    3 + OPS_PER_ORDER * (n as u64 + 1)
}

fn history_rows(node: &Node) -> i64 {
    rows(node, "order_history")
}

fn held(node: &Node, n: usize) -> bool {
    node.read(|r| r.state().orders.contains_key(&order_id(n)))
}

fn return_ask(id: &str, n: usize) -> ReturnAsk {
    let sale = SaleId::parse(order_id(n).as_str()).unwrap();
    history_support::return_ask(id, sale, (sku(n), 1), Tender::Card, false)
}

#[test]
fn a_store_moves_only_orders_hq_acked_to_history_and_finds_them_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let rt = runtime();
    let node = collecting_store(&db);
    let before = node.read(|r| r.digest());

    node.checkpoint_blocking().unwrap();
    assert_eq!(
        node.read(|r| r.state().orders.len()),
        ORDERS,
        "nothing acked"
    );

    // Orders 0..=9 acked whole; order 10 only placed and picked (its ready and handover not).
    hq_acks(&rt, &node, handover_seq(9) + 2);
    node.checkpoint_blocking().unwrap();
    assert_eq!(node.read(|r| r.state().orders.len()), ORDERS - 10);
    assert!(!held(&node, 0) && !held(&node, 9));
    assert!(
        held(&node, 10),
        "an order with own ops HQ has not acked stays"
    );
    assert_eq!(history_rows(&node), 10);
    assert_eq!(node.read(|r| r.digest()), before);
    assert_digest_of_whole_log(&node, &db);

    // Readers find them: by id, by pickup code, by customer.
    let evictions = node.read(|r| r.state().evictions());
    let o3 = node
        .query_blocking(move |c| order_history::load_order(c, &order_id(3), evictions))
        .unwrap()
        .expect("order 3 in history");
    assert_eq!(o3.status, OrderStatus::HandedOver);
    let by_code = node
        .query_blocking(move |c| order_history::orders_with_code(c, &madrid(), &code(3), evictions))
        .unwrap();
    assert_eq!(by_code, vec![o3]);
    let lucias = node
        .query_blocking(move |c| order_history::orders_of_customer(c, &lucia(), evictions))
        .unwrap();
    let ids: Vec<String> = lucias.iter().map(|o| o.id.to_string()).collect();
    assert_eq!(ids, ["O-0", "O-2", "O-4", "O-6", "O-8"]);

    // A late ready for an evicted order is refused as for one in memory.
    let late = Payload::OrderAdvance {
        order_id: order_id(4),
        store: madrid(),
        to: Advance::HandedOver,
    };
    let err = node.submit_blocking(T0 + 9_000, vec![late]).unwrap_err();
    assert!(
        err.to_string().contains("handed over"),
        "a second handover of an evicted order: {err}"
    );

    // A return against an evicted pickup order, planned from memory after the counter's recall.
    let sale = SaleId::parse(order_id(1).as_str()).unwrap();
    rt.block_on(node.recall(vec![sale.clone()])).unwrap();
    assert!(held(&node, 1), "recalled for the counter");
    assert_eq!(node.read(|r| r.state().returnable(&sale, &sku(1))), Some(2));
    let ret = node
        .read(|r| plan_return(r.state(), &madrid(), &POLICY, return_ask("R-1", 1)))
        .unwrap();
    node.submit_blocking(T0 + 10_000, vec![ret]).unwrap();

    // Reopened from the snapshot: history stays out of memory, the answers stay the same.
    let node = reopen(node, &db);
    assert!(!held(&node, 0));
    assert!(node.read(|r| r.state().orders.len()) <= ORDERS - 9);
    assert_digest_of_whole_log(&node, &db);
    rt.block_on(node.recall(vec![sale.clone()])).unwrap();
    assert_eq!(node.read(|r| r.state().returnable(&sale, &sku(1))), Some(1));
    node.close_blocking().unwrap();
}

#[test]
fn a_late_cancel_from_hq_meets_an_evicted_handed_over_order_and_raises_its_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let rt = runtime();
    let node = collecting_store(&db);
    // HQ cancels order 2 not knowing it was handed over (it saw only the placement).
    let mut hq = Replica::new(ActorId::hq());
    let (m, catalog, own) = madrid_history();
    for op in catalog
        .iter()
        .chain(&own[..3 + 1 + 2 * OPS_PER_ORDER as usize])
    {
        hq.apply(op).unwrap();
    }
    let cancel = Payload::OrderCancel {
        order_id: order_id(2),
        store: madrid(),
        kind: CancelKind::Cancelled,
    };
    let cancel = hq.prepare(T0 + 9_000, cancel).unwrap().0;

    hq_acks(&rt, &node, handover_seq(ORDERS - 1));
    node.checkpoint_blocking().unwrap();
    assert!(!held(&node, 2));
    assert_eq!(history_rows(&node), OLD as i64);

    node.ingest_blocking(vec![cancel.clone()]).unwrap();
    let mut plain = m.clone();
    plain.apply(&cancel).unwrap();
    assert!(held(&node, 2), "the cancel brought the order back");
    let inbox = |s: &storenode::domain::State| -> Vec<String> {
        conflicts(s, Some(&madrid()))
            .into_iter()
            .map(|c| c.id)
            .collect()
    };
    assert_eq!(node.read(|r| inbox(r.state())), inbox(plain.state()));
    assert_eq!(node.read(|r| inbox(r.state())), ["order:O-2"]);
    assert_eq!(node.read(|r| r.digest()), plain.digest());
    assert_digest_of_whole_log(&node, &db);
    // With its conflict open it stays in memory through the next pass.
    node.checkpoint_blocking().unwrap();
    assert!(held(&node, 2));
    node.close_blocking().unwrap();
}

#[test]
fn a_node_rebuilt_without_its_snapshot_takes_its_orders_back_into_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let node = collecting_store(&db);
    let orders = Kind {
        table: "order_history",
        in_memory: |node| node.read(|r| r.state().orders.len()),
        all: ORDERS,
        old: OLD,
    };
    assert_rebuild_takes_history_back(node, &db, handover_seq(ORDERS - 1), &orders);
}

#[test]
fn hq_moves_every_finished_order_to_history_and_keeps_open_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hq.db");
    let (mut m, catalog, own) = madrid_history();
    let open = Payload::OrderPlace {
        order_id: order_id(ORDERS),
        store: madrid(),
        customer: lucia(),
        lines: vec![OrderLine {
            sku: sku(0),
            qty: 1,
        }],
        pickup_code: code(ORDERS),
        placed_at_ms: T0,
    };
    let open = m.prepare(T0, open).unwrap().0;
    let node = Node::open(&db, ActorId::hq()).unwrap();
    node.ingest_blocking(catalog).unwrap();
    node.ingest_blocking(own).unwrap();
    node.ingest_blocking(vec![open]).unwrap();
    node.checkpoint_blocking().unwrap();
    assert_eq!(node.read(|r| r.state().orders.len()), ORDERS + 1 - OLD);
    assert!(held(&node, ORDERS), "an open order stays");
    assert_eq!(history_rows(&node), OLD as i64);
    assert_eq!(node.read(|r| r.digest()), m.digest());
    assert_digest_of_whole_log(&node, &db);
    node.close_blocking().unwrap();
}

/// The counter's readers through the store's real router: an order that left memory is found
/// by id, by its pickup code, as a collected order to return, and on the customer card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pickup_counter_and_the_customer_card_find_an_order_that_left_memory() {
    use axum::http::{Method, StatusCode};
    let f = terminal_support::Fixture::new().await;
    let here = terminal_support::store();
    let lucia = CustomerId::parse(terminal_support::CUSTOMER).unwrap();
    let one = Sku::parse("SKU-1").unwrap();
    let receive = Payload::StockReceive {
        store: here.clone(),
        sku: one.clone(),
        qty: 5_000,
        reason: ReceiveReason::Delivery,
    };
    f.node.submit(vec![receive]).await.unwrap();
    let id = |n: usize| OrderId::parse(&format!("O-H{n}")).unwrap();
    for chunk in (0..ORDERS).collect::<Vec<_>>().chunks(200) {
        let mut payloads = Vec::new();
        for &n in chunk {
            payloads.push(Payload::OrderPlace {
                order_id: id(n),
                store: here.clone(),
                customer: lucia.clone(),
                lines: vec![OrderLine {
                    sku: one.clone(),
                    qty: 1,
                }],
                pickup_code: code(n),
                placed_at_ms: storenode::store::now_ms(),
            });
            payloads.push(Payload::OrderPick {
                order_id: id(n),
                store: here.clone(),
                sku: one.clone(),
                picked: 1,
            });
            for to in [Advance::Ready, Advance::HandedOver] {
                payloads.push(Payload::OrderAdvance {
                    order_id: id(n),
                    store: here.clone(),
                    to,
                });
            }
        }
        f.node.submit(payloads).await.unwrap();
    }
    let me = here.actor();
    let last = f.node.read(|r| r.version().contiguous(&me));
    f.node
        .write(move |tx| {
            storenode::sync::persist::set_u64(tx, storenode::sync::persist::KEY_HQ_ACKED_SEQ, last)
        })
        .await
        .unwrap();
    f.node.checkpoint().await.unwrap();
    let gone = f.node.read(|r| !r.state().orders.contains_key(&id(0)));
    assert!(gone, "the oldest handed-over order left memory");

    let cookie = f.login("1001", "1234").await;
    let (status, _, body) = f
        .call(Method::GET, "/api/v1/pickups/O-H0", None, Some(&cookie))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "handed_over");
    let uri = format!("/api/v1/pickups?code={}", code(0).to_lowercase());
    let (status, _, body) = f.call(Method::GET, &uri, None, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["O-H0"], "the scanned code opens the evicted order");
    let (status, _, body) = f
        .call(Method::GET, "/api/v1/sales/O-H1", None, Some(&cookie))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a collected order to return: {body}"
    );
    let uri = format!("/api/v1/customers/{}", terminal_support::CUSTOMER);
    let (status, _, body) = f.call(Method::GET, &uri, None, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let orders = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "order")
        .count();
    // Every handed-over order, evicted or not, and the fixture's open one, once each.
    assert_eq!(orders, ORDERS + 1, "{}", body["history"]);
}
