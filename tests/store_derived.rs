//! Derived rows written behind the log (`store::derived`): the materialised tables catch up
//! with the replica when the writer goes idle, checkpoints or closes; an erasure carries them in
//! its own commit; and after a SIGKILL the node rewrites them from the log's tail at open.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use storenode::domain::op::{ProfilePatch, ReceiveReason, SaleLine, Tender};
use storenode::domain::{ActorId, CustomerId, Ean13, Payload, Replica, SaleId, Sku, StoreId};
use storenode::store::{derived, Node};

const BIN: &str = env!("CARGO_BIN_EXE_storenode");

type StockRows = BTreeMap<(String, String), (i64, i64, i64, i64)>;

/// The `stock` table as SQL readers see it.
fn stock_rows(node: &Node) -> StockRows {
    node.query_blocking(|c| {
        let mut stmt = c.prepare(
            "SELECT store, sku, available, store_rights, hq_rights, reserved FROM stock",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get(0)?, r.get(1)?),
                (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
            ))
        })?;
        rows.collect()
    })
    .unwrap()
}

/// The stock rows the replica says the table must hold.
fn stock_in_memory(node: &Node) -> StockRows {
    node.read(|r| {
        let s = r.state();
        s.stock
            .keys()
            .map(|(store, sku)| {
                let row = (
                    s.available(store, sku),
                    s.rights(store, sku, &store.actor()),
                    s.rights(store, sku, &ActorId::hq()),
                    s.reserved(store, sku) as i64,
                );
                ((store.to_string(), sku.to_string()), row)
            })
            .collect()
    })
}

/// Sale ids in the `sales` table and in the replica.
fn sales(node: &Node) -> (Vec<String>, Vec<String>) {
    let table = node
        .query_blocking(|c| {
            let mut stmt = c.prepare("SELECT id FROM sales ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })
        .unwrap();
    let memory = node.read(|r| r.state().sales.keys().map(|s| s.to_string()).collect());
    (table, memory)
}

fn catalog(skus: usize) -> Vec<storenode::domain::Op> {
    let mut hq = Replica::new(ActorId::hq());
    let eans = ["8412345678905", "4006381333931", "5901234123457"];
    (0..skus)
        .map(|i| {
            let payload = Payload::CatalogPut {
                sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
                ean: Ean13::parse(eans[i % eans.len()]).unwrap(),
                name: format!("Producto {i}"),
                price_cents: 250,
                vat_bp: 2100,
            };
            hq.prepare(1_700_000_000_000 + i as u64, payload).unwrap().0
        })
        .collect()
}

fn store() -> StoreId {
    StoreId::parse("madrid-centro").unwrap()
}

/// A store node with three SKUs received and `sales` till sales made, one submit each.
fn store_with_sales(db: &Path, sales: usize) -> Node {
    let node = Node::open(db, store().actor()).unwrap();
    node.ingest_blocking(catalog(3)).unwrap();
    for i in 0..3 {
        let receive = Payload::StockReceive {
            store: store(),
            sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
            qty: 100,
            reason: ReceiveReason::Delivery,
        };
        node.submit_blocking(1_700_000_100_000, vec![receive])
            .unwrap();
    }
    for n in 0..sales {
        let sale = Payload::Sale {
            store: store(),
            sale_id: SaleId::parse(&format!("S-{n}")).unwrap(),
            lines: vec![SaleLine {
                sku: Sku::parse(&format!("SKU-{}", n % 3)).unwrap(),
                qty: 1,
                unit_cents: 250,
                vat_bp: 2100,
            }],
            tender: Tender::Cash,
            customer: None,
        };
        node.submit_blocking(1_700_000_200_000 + n as u64, vec![sale])
            .unwrap();
    }
    node
}

#[test]
fn derived_rows_match_the_replica_once_the_node_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let node = store_with_sales(&dir.path().join("store.db"), 40);
    node.checkpoint_blocking().unwrap();
    assert_eq!(stock_rows(&node), stock_in_memory(&node));
    let (table, memory) = sales(&node);
    assert_eq!(table.len(), 40);
    assert_eq!(table, memory);
    let (mark, ops) = node
        .query_blocking(|c| Ok((derived::mark(c)?, Node::op_count(c)?)))
        .unwrap();
    assert_eq!(mark, Some(ops as i64), "every op's rows are written");
}

#[test]
fn a_node_reopened_with_its_derived_rows_behind_the_log_rewrites_them_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let node = store_with_sales(&db, 25);
    let expected = stock_in_memory(&node);
    node.close_blocking().unwrap();
    drop(node);
    // What a crash leaves when the rows of the last ops were not written yet: the mark behind
    // the log and the rows of the ops after it missing.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let behind: i64 = conn
        .query_row(
            "SELECT rowid FROM ops WHERE kind = 'sale' ORDER BY rowid LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute_batch(&format!(
        "DELETE FROM stock; DELETE FROM sales;
         UPDATE meta SET value = '{}' WHERE key = 'derived_through';",
        behind - 1
    ))
    .unwrap();
    drop(conn);

    let node = Node::open(&db, store().actor()).unwrap();
    assert_eq!(stock_rows(&node), expected);
    let (table, memory) = sales(&node);
    assert_eq!(table.len(), 25);
    assert_eq!(table, memory);
}

#[test]
fn an_erasure_takes_the_customers_row_off_the_disk_in_its_own_commit() {
    let dir = tempfile::tempdir().unwrap();
    let node = store_with_sales(&dir.path().join("store.db"), 0);
    let customer = CustomerId::parse("C-ana").unwrap();
    let update = Payload::CustomerUpdate {
        customer: customer.clone(),
        patch: ProfilePatch {
            name: Some("Ana Secreta".into()),
            email: Some("ana@example.com".into()),
            phone: None,
            loyalty_card: None,
        },
    };
    node.submit_blocking(1_700_000_300_000, vec![update])
        .unwrap();
    node.submit_blocking(1_700_000_300_001, vec![Payload::CustomerErase { customer }])
        .unwrap();
    // No checkpoint, no idle wait: the erasure's own commit carried the rows.
    let row: (Option<String>, Option<String>, bool) = node
        .query_blocking(|c| {
            c.query_row(
                "SELECT name, email, erased FROM customers WHERE id = 'C-ana'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .unwrap();
    assert_eq!(row, (None, None, true));
}

#[test]
fn after_a_sigkill_the_reopened_node_holds_derived_rows_equal_to_its_replica() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("soak.db");
    let mut child = Command::new(BIN)
        .args(["soak", "--actor", "store:madrid-centro", "--db"])
        .arg(&db)
        .args(["--ops", "1000000", "--writers", "8"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acked = BufReader::new(stdout).lines().take(1_500).count();
    assert_eq!(acked, 1_500);
    child.kill().unwrap();
    child.wait().unwrap();

    let node = Node::open_existing(&db).unwrap();
    let stock = stock_rows(&node);
    assert!(!stock.is_empty());
    assert_eq!(stock, stock_in_memory(&node));
    let (table, memory) = sales(&node);
    assert_eq!(table, memory);
    let (mark, ops) = node
        .query_blocking(|c| Ok((derived::mark(c)?, Node::op_count(c)?)))
        .unwrap();
    assert_eq!(mark, Some(ops as i64));
}
