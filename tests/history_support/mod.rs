//! What the history tests (`sale_history`, `order_history`) share: madrid's store, a
//! three-product catalog from HQ, HQ's ack of madrid's own ops as the sync engine records it,
//! and the check that a node's digests are those of a replay of its whole log.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use storenode::domain::{ActorId, CustomerId, Ean13, Op, Payload, Replica, Sku, StoreId};
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
