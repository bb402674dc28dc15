//! History out of memory (`store::history`): sales every replica holding them has acked leave
//! the in-memory replica for `sale_history`, digests stay those of a replay of the whole log,
//! returns against them are answered as before, and a node rebuilt without its snapshot takes
//! them back into memory. Real nodes on real SQLite files.

mod history_support;

use history_support::{
    assert_digest_of_whole_log, assert_rebuild_takes_history_back, catalog, hq_acks, lucia, madrid,
    madrid_stocked, receive, reopen, restored_madrid, return_ask, rows, runtime, sku, Kind, POLICY,
    T0,
};
use std::path::Path;
use storenode::domain::op::{SaleLine, Tender};
use storenode::domain::returns::{plan_return, ReturnAsk};
use storenode::domain::{ActorId, Payload, Replica, SaleId, StoreId};
use storenode::store::{history, Node};

/// Sales beyond those the node keeps in memory whatever happens.
const OLD: usize = 20;
const SALES: usize = history::SALES_KEPT_IN_MEMORY + OLD;

fn sevilla() -> StoreId {
    StoreId::parse("sevilla-nervion").unwrap()
}
fn sale_id(n: usize) -> SaleId {
    SaleId::parse(&format!("S-{n}")).unwrap()
}

/// Sale `n` at madrid: two units of one sku; every other one to Lucía.
fn sale(n: usize) -> Payload {
    Payload::Sale {
        store: madrid(),
        sale_id: sale_id(n),
        lines: vec![SaleLine {
            sku: sku(n),
            qty: 2,
            unit_cents: 250,
            vat_bp: 2100,
        }],
        tender: Tender::Cash,
        customer: n.is_multiple_of(2).then(lucia),
    }
}

/// A madrid node with stock and `SALES` sales; seq of each sale is `4 + n`. Its own ops are
/// made by a replica of the same actor and handed over at once (a restore, as it were).
fn selling_store(db: &Path) -> Node {
    let (mut m, catalog, mut own) = madrid_stocked();
    for n in 0..SALES {
        own.push(m.prepare(T0 + 200 + n as u64, sale(n)).unwrap().0);
    }
    restored_madrid(db, catalog, own)
}

fn history_rows(node: &Node) -> i64 {
    rows(node, "sale_history")
}

fn ask(id: &str, n: usize, qty: u32, manager: bool) -> ReturnAsk {
    return_ask(id, sale_id(n), (sku(n), qty), Tender::Cash, manager)
}

#[test]
fn a_store_moves_only_sales_hq_acked_to_history_and_answers_returns_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let rt = runtime();
    let node = selling_store(&db);
    let before = node.read(|r| r.digest());

    node.checkpoint_blocking().unwrap();
    assert_eq!(node.read(|r| r.state().sales.len()), SALES, "nothing acked");

    hq_acks(&rt, &node, 4 + 9); // sales 0..=9
    node.checkpoint_blocking().unwrap();
    assert_eq!(node.read(|r| r.state().sales.len()), SALES - 10);
    assert!(node.read(|r| !r.state().sales.contains_key(&sale_id(0))));
    assert!(node.read(|r| r.state().sales.contains_key(&sale_id(10))));
    assert_eq!(history_rows(&node), 10);
    assert_eq!(node.read(|r| r.digest()), before);
    assert_digest_of_whole_log(&node, &db);
    let evictions = node.read(|r| r.state().evictions());
    let lucias = node
        .query_blocking(move |c| history::sales_of_customer(c, &lucia(), evictions))
        .unwrap();
    let ids: Vec<String> = lucias.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(ids, ["S-0", "S-2", "S-4", "S-6", "S-8"]);

    // A return against an evicted sale, planned from memory after the counter's recall.
    rt.block_on(node.recall(vec![sale_id(0)])).unwrap();
    assert_eq!(
        node.read(|r| r.state().returnable(&sale_id(0), &sku(0))),
        Some(2)
    );
    let ret = node
        .read(|r| plan_return(r.state(), &madrid(), &POLICY, ask("R-1", 0, 2, false)))
        .unwrap();
    node.submit_blocking(T0 + 10_000, vec![ret]).unwrap();

    // Reopened from the snapshot: history stays out of memory (sale 0, recalled, is pinned in
    // memory for a couple of passes), the answers stay the same.
    let node = reopen(node, &db);
    assert!(node.read(|r| !r.state().sales.contains_key(&sale_id(1))));
    assert!(node.read(|r| r.state().sales.len()) <= SALES - 9);
    assert_digest_of_whole_log(&node, &db);
    rt.block_on(node.recall(vec![sale_id(0)])).unwrap();
    assert_eq!(
        node.read(|r| r.state().returnable(&sale_id(0), &sku(0))),
        Some(0)
    );
    let again = node.read(|r| plan_return(r.state(), &madrid(), &POLICY, ask("R-2", 0, 1, false)));
    assert!(
        again.is_err(),
        "a second verified return of returned units: {again:?}"
    );
    node.close_blocking().unwrap();
}

#[test]
fn a_node_rebuilt_without_its_snapshot_takes_its_history_back_into_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let node = selling_store(&db);
    let sales = Kind {
        table: "sale_history",
        in_memory: |node| node.read(|r| r.state().sales.len()),
        all: SALES,
        old: OLD,
    };
    assert_rebuild_takes_history_back(node, &db, 3 + SALES as u64, &sales); // the last sale
}

#[test]
fn hq_moves_every_store_sale_to_history_and_a_late_return_elsewhere_still_meets_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hq.db");
    let mut m = Replica::new(madrid().actor());
    let mut s = Replica::new(sevilla().actor());
    let mut log = catalog();
    for op in &log {
        m.apply(op).unwrap();
        s.apply(op).unwrap();
    }
    for i in 0..3 {
        log.push(m.prepare(T0 + 100, receive(madrid(), i)).unwrap().0);
        log.push(s.prepare(T0 + 100, receive(sevilla(), i)).unwrap().0);
    }
    for n in 0..SALES {
        log.push(m.prepare(T0 + 200 + n as u64, sale(n)).unwrap().0);
    }
    // Madrid returns sale 3 whole; sevilla, not knowing it, takes an unverified return too.
    let verified = plan_return(m.state(), &madrid(), &POLICY, ask("R-1", 3, 2, false)).unwrap();
    let at_madrid = m.prepare(T0 + 10_000, verified).unwrap().0;
    let unverified = plan_return(s.state(), &sevilla(), &POLICY, ask("R-2", 3, 1, true)).unwrap();
    let at_sevilla = s.prepare(T0 + 10_001, unverified).unwrap().0;

    let node = Node::open(&db, ActorId::hq()).unwrap();
    node.ingest_blocking(log.clone()).unwrap();
    node.ingest_blocking(vec![at_madrid.clone()]).unwrap();
    node.checkpoint_blocking().unwrap();
    // Every sale is held by its store: all but the newest kept in memory leave.
    assert_eq!(node.read(|r| r.state().sales.len()), SALES - OLD);
    assert!(node.read(|r| !r.state().sales.contains_key(&sale_id(3))));
    assert_eq!(history_rows(&node), OLD as i64);

    let node = reopen(node, &db);
    node.ingest_blocking(vec![at_sevilla.clone()]).unwrap();
    let mut plain = Replica::new(ActorId::hq());
    for op in log.iter().chain([&at_madrid, &at_sevilla]) {
        plain.apply(op).unwrap();
    }
    assert_eq!(plain.state().returns.double_returns.len(), 1);
    assert_eq!(
        node.read(|r| r.state().returns.double_returns.clone()),
        plain.state().returns.double_returns
    );
    assert_eq!(node.read(|r| r.digest()), plain.digest());
    assert_digest_of_whole_log(&node, &db);
    node.close_blocking().unwrap();
}
