//! History leaves memory under load (`store::writer`'s eviction passes): a store whose writer
//! is kept busy, one group after another, and whose ops HQ keeps acknowledging, holds no more
//! sales than it keeps on purpose plus one pass's worth, without ever a checkpoint, a close or
//! an idle writer to make room. Proven by the state's sizes, not by time. Real nodes on real
//! SQLite files.

mod history_support;

use history_support::{assert_digest_of_whole_log, catalog, hq_acks, madrid, rows, runtime, T0};
use storenode::domain::op::{ReceiveReason, SaleLine, Tender};
use storenode::domain::{Payload, Replica, SaleId, Sku};
use storenode::store::{history, snapshot, Node};

/// Sales per ingest request: each request is a group of its own.
const CHUNK: usize = 512;
/// Sales made in all: several passes' worth beyond those kept in memory.
const SALES: usize = history::SALES_KEPT_IN_MEMORY + 4 * snapshot::EVICT_PASS_OPS as usize;
const _: () = assert!(SALES.is_multiple_of(CHUNK));

fn sku(i: usize) -> Sku {
    Sku::parse(&format!("SKU-{}", i % 3)).unwrap()
}

fn sale(n: usize) -> Payload {
    Payload::Sale {
        store: madrid(),
        sale_id: SaleId::parse(&format!("S-{n}")).unwrap(),
        lines: vec![SaleLine {
            sku: sku(n),
            qty: 1,
            unit_cents: 250,
            vat_bp: 2100,
        }],
        tender: Tender::Cash,
        customer: None,
    }
}

#[test]
fn sales_hq_acked_leave_memory_while_the_writer_stays_busy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let rt = runtime();
    let node = Node::open(&db, madrid().actor()).unwrap();
    // Madrid's own ops, made by a replica of the same actor and handed over (a restore).
    let mut m = Replica::new(madrid().actor());
    let catalog = catalog();
    for op in &catalog {
        m.apply(op).unwrap();
    }
    node.ingest_blocking(catalog).unwrap();
    let receive: Vec<_> = (0..3)
        .map(|i| {
            let payload = Payload::StockReceive {
                store: madrid(),
                sku: sku(i),
                qty: 100_000,
                reason: ReceiveReason::Delivery,
            };
            m.prepare(T0 + 100, payload).unwrap().0
        })
        .collect();
    node.ingest_blocking(receive).unwrap();

    // Each chunk is a group; HQ's ack of it is the next. The bound: what is kept on purpose,
    // what one pass's cadence lets in before the pass, and the chunk that crossed it.
    let bound = history::SALES_KEPT_IN_MEMORY + snapshot::EVICT_PASS_OPS as usize + CHUNK;
    let mut most = 0;
    for start in (0..SALES).step_by(CHUNK) {
        let ops: Vec<_> = (start..start + CHUNK)
            .map(|n| m.prepare(T0 + 200 + n as u64, sale(n)).unwrap().0)
            .collect();
        let ingested = node.ingest_blocking(ops).unwrap();
        assert_eq!(ingested.applied, CHUNK);
        hq_acks(&rt, &node, m.next_seq() - 1);
        let held = node.read(|r| r.state().sales.len());
        most = most.max(held);
        assert!(
            held <= bound,
            "{held} sales in memory after {} made, at most {bound} expected",
            start + CHUNK
        );
    }
    let moved = rows(&node, "sale_history") as usize;
    assert!(
        moved >= SALES - bound,
        "{moved} sales in sale_history, at least {} expected",
        SALES - bound
    );
    assert_eq!(node.read(|r| r.state().sales.len()) + moved, SALES);
    assert!(
        most > history::SALES_KEPT_IN_MEMORY,
        "the load never filled memory"
    );
    assert_digest_of_whole_log(&node, &db);
    node.close_blocking().unwrap();
    drop(node);

    // Reopened from the snapshot the close wrote: the same live set, the same digests.
    let node = Node::open(&db, madrid().actor()).unwrap();
    assert!(node.read(|r| r.state().sales.len()) <= history::SALES_KEPT_IN_MEMORY);
    assert_digest_of_whole_log(&node, &db);
    node.close_blocking().unwrap();
}
