//! What the history tests (`sale_history`, `order_history`) share: madrid's store, a
//! three-product catalog from HQ, madrid stocked and restored from its own ops, HQ's ack of
//! madrid's own ops as the sync engine records it, the return policy, and the checks both
//! kinds of history pass: a node's digests are those of a replay of its whole log, and a node
//! rebuilt without its snapshot takes its history back into memory.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use storenode::domain::op::{ReceiveReason, Tender};
use storenode::domain::returns::{ReturnAsk, ReturnPolicy};
use storenode::domain::{
    ActorId, CustomerId, Ean13, Op, Payload, Replica, ReturnId, SaleId, Sku, StoreId,
};
use storenode::store::{replay_whole, Node};

pub const T0: u64 = 1_700_000_000_000;

pub fn madrid() -> StoreId {
    StoreId::parse("madrid-centro").unwrap()
}
pub fn sku(i: usize) -> Sku {
    Sku::parse(&format!("SKU-{}", i % 3)).unwrap()
}
pub fn lucia() -> CustomerId {
    CustomerId::parse("C-0001").unwrap()
}

/// HQ's catalog of the three skus `sku` cycles through.
pub fn catalog() -> Vec<Op> {
    let mut hq = Replica::new(ActorId::hq());
    (0..3)
        .map(|i| {
            let put = Payload::CatalogPut {
                sku: sku(i),
                ean: Ean13::parse("8412345678905").unwrap(),
                name: format!("Producto {i}"),
                price_cents: 250,
                vat_bp: 2100,
            };
            hq.prepare(T0 + i as u64, put).unwrap().0
        })
        .collect()
}

/// `store` receives 10,000 units of `sku(i)`.
pub fn receive(store: StoreId, i: usize) -> Payload {
    Payload::StockReceive {
        store,
        sku: sku(i),
        qty: 10_000,
        reason: ReceiveReason::Delivery,
    }
}

/// Madrid's replica with HQ's catalog applied and a receipt of each sku prepared (its own ops
/// seq 1-3), with the catalog and those own ops.
pub fn madrid_stocked() -> (Replica, Vec<Op>, Vec<Op>) {
    let mut m = Replica::new(madrid().actor());
    let catalog = catalog();
    for op in &catalog {
        m.apply(op).unwrap();
    }
    let own = (0..3)
        .map(|i| m.prepare(T0 + 100, receive(madrid(), i)).unwrap().0)
        .collect();
    (m, catalog, own)
}

/// A madrid node at `db` given the catalog, then its own ops `own` all at once (a restore, as
/// it were): every one of them applied.
pub fn restored_madrid(db: &Path, catalog: Vec<Op>, own: Vec<Op>) -> Node {
    let node = Node::open(db, madrid().actor()).unwrap();
    node.ingest_blocking(catalog).unwrap();
    let count = own.len();
    let ingested = node.ingest_blocking(own).unwrap();
    assert_eq!(ingested.applied, count);
    node
}

/// Close `node` and open its file `db` again, as the same actor.
pub fn reopen(node: Node, db: &Path) -> Node {
    let actor = node.actor().clone();
    node.close_blocking().unwrap();
    drop(node);
    Node::open(db, actor).unwrap()
}

/// Returns madrid accepts: 30 days, unverified up to 1,000 EUR.
pub const POLICY: ReturnPolicy = ReturnPolicy {
    window_ms: 30 * 86_400_000,
    unverified_max_cents: 100_000,
};

/// Return `id` at madrid, at `T0 + 10_000`, of `qty` units of `sku` (restocked) from madrid's
/// `sale`, refunded in `tender`; `manager`: the session has the manager role.
pub fn return_ask(
    id: &str,
    sale: SaleId,
    (sku, qty): (Sku, u32),
    tender: Tender,
    manager: bool,
) -> ReturnAsk {
    ReturnAsk {
        return_id: ReturnId::parse(id).unwrap(),
        sale,
        sale_store: Some(madrid()),
        lines: vec![(sku, qty, true)],
        tender,
        manager,
        now_ms: T0 + 10_000,
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// HQ acknowledges madrid's own ops through `seq` (what the sync engine records).
pub fn hq_acks(rt: &tokio::runtime::Runtime, node: &Node, seq: u64) {
    rt.block_on(node.write(move |tx| {
        storenode::sync::persist::set_u64(tx, storenode::sync::persist::KEY_HQ_ACKED_SEQ, seq)
    }))
    .unwrap();
}

/// Rows in `table` (`sale_history` or `order_history`).
pub fn rows(node: &Node, table: &'static str) -> i64 {
    node.query_blocking(move |c| {
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
    })
    .unwrap()
}

/// The node's digest equals that of a replica built from every op of its log, all in memory.
pub fn assert_digest_of_whole_log(node: &Node, db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let whole = replay_whole(&conn, node.actor().clone()).unwrap();
    assert_eq!(node.read(|r| r.digest()), whole.digest());
    assert_eq!(
        node.read(|r| r.digest_for_store(&madrid())),
        whole.digest_for_store(&madrid())
    );
}

/// One kind of history for `assert_rebuild_takes_history_back`: its table, how many records
/// of it `node` holds in memory, how many the node holds in all, and how many of those are
/// old enough to leave memory.
pub struct Kind {
    pub table: &'static str,
    pub in_memory: fn(&Node) -> usize,
    pub all: usize,
    pub old: usize,
}

/// `node` (at `db`, all of its own ops acked by HQ through `last_seq`) keeps only the newest
/// records of `kind` in memory after a restart; rebuilt without its snapshot it holds every
/// one in memory again, has deleted the rows of the evictions it no longer made, and its
/// digest is the one from before.
pub fn assert_rebuild_takes_history_back(node: Node, db: &Path, last_seq: u64, kind: &Kind) {
    let rt = runtime();
    let before = node.read(|r| r.digest());
    hq_acks(&rt, &node, last_seq);
    let node = reopen(node, db);
    assert_eq!((kind.in_memory)(&node), kind.all - kind.old);
    node.close_blocking().unwrap();
    drop(node);

    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute("DELETE FROM snapshot", []).unwrap();
    drop(conn);
    let node = Node::open(db, madrid().actor()).unwrap();
    assert_eq!((kind.in_memory)(&node), kind.all);
    assert_eq!(
        rows(&node, kind.table),
        0,
        "rows of evictions memory no longer made"
    );
    assert_eq!(node.read(|r| r.digest()), before);
    node.close_blocking().unwrap();
}
