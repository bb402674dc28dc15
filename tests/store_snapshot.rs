//! Starting from a snapshot (`store::snapshot`): a node reopened from its snapshot plus the
//! log's tail holds exactly the replica a replay of the whole log builds, whether it closed
//! cleanly, started from an older snapshot, found one it cannot read, or was killed; and an
//! erasure takes the snapshot holding the customer off the disk with it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use storenode::domain::op::{ProfilePatch, ReceiveReason, SaleLine, Tender};
use storenode::domain::{ActorId, CustomerId, Ean13, Payload, Replica, SaleId, Sku, StoreId};
use storenode::store::{replay_whole, snapshot, Node};

const BIN: &str = env!("CARGO_BIN_EXE_storenode");

fn store() -> StoreId {
    StoreId::parse("madrid-centro").unwrap()
}

fn catalog(skus: usize) -> Vec<storenode::domain::Op> {
    let mut hq = Replica::new(ActorId::hq());
    (0..skus)
        .map(|i| {
            let payload = Payload::CatalogPut {
                sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
                ean: Ean13::parse("8412345678905").unwrap(),
                name: format!("Producto {i}"),
                price_cents: 250,
                vat_bp: 2100,
            };
            hq.prepare(1_700_000_000_000 + i as u64, payload).unwrap().0
        })
        .collect()
}

/// A store node with three SKUs received.
fn stocked_store(db: &Path) -> Node {
    let node = Node::open(db, store().actor()).unwrap();
    node.ingest_blocking(catalog(3)).unwrap();
    for i in 0..3 {
        let receive = Payload::StockReceive {
            store: store(),
            sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
            qty: 1_000,
            reason: ReceiveReason::Delivery,
        };
        node.submit_blocking(1_700_000_100_000, vec![receive])
            .unwrap();
    }
    node
}

/// Till sales `from..to`, one submit each.
fn sell(node: &Node, from: usize, to: usize) {
    for n in from..to {
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
}

/// The stored snapshot's `through` and body, if any.
fn stored(db: &Path) -> Option<(i64, Vec<u8>)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT through, body FROM snapshot", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .ok()
}

fn last_rowid(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT max(rowid) FROM ops", [], |r| r.get(0))
        .unwrap()
}

/// The node's replica against one replayed from every op of its file: same state (every
/// field, private ones included, through `Debug`) and same version vector.
fn assert_equals_whole_replay(node: &Node) {
    let actor = node.actor().clone();
    let whole = node
        .query_blocking(move |c| Ok(replay_whole(c, actor)))
        .unwrap()
        .unwrap();
    let (state, version) = node.read(|r| (format!("{:?}", r.state()), r.version().clone()));
    assert_eq!(version, *whole.version());
    assert!(
        state == format!("{:?}", whole.state()),
        "the state started from the snapshot differs from the whole log's"
    );
}

#[test]
fn a_clean_close_leaves_a_snapshot_through_the_last_op_so_the_next_start_replays_no_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let node = stocked_store(&db);
    sell(&node, 0, 30);
    node.close_blocking().unwrap();
    drop(node);
    let (through, _) = stored(&db).expect("a snapshot after a clean close");
    assert_eq!(through, last_rowid(&db));

    let node = Node::open(&db, store().actor()).unwrap();
    assert_eq!(node.read(|r| r.state().sales.len()), 30);
    assert_equals_whole_replay(&node);
}

#[test]
fn a_node_started_from_an_older_snapshot_and_the_logs_tail_equals_the_whole_logs_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let node = stocked_store(&db);
    sell(&node, 0, 20);
    node.checkpoint_blocking().unwrap();
    let (older_through, older_body) = stored(&db).expect("a snapshot after a checkpoint");
    sell(&node, 20, 45);
    node.close_blocking().unwrap();
    drop(node);
    // What a crash between two snapshots leaves: the older one, and ops logged after it.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE snapshot SET through = ?1, body = ?2",
        rusqlite::params![older_through, older_body],
    )
    .unwrap();
    drop(conn);
    assert!(older_through < last_rowid(&db), "a tail to replay");

    let node = Node::open(&db, store().actor()).unwrap();
    assert_eq!(node.read(|r| r.state().sales.len()), 45);
    assert_equals_whole_replay(&node);
    // It goes on issuing where the log ends.
    sell(&node, 45, 46);
    assert_equals_whole_replay(&node);
}

#[test]
fn a_snapshot_of_another_format_or_of_unreadable_bytes_is_ignored_and_the_log_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let node = stocked_store(&db);
    sell(&node, 0, 10);
    node.close_blocking().unwrap();
    drop(node);
    for tamper in [
        format!("UPDATE snapshot SET format = {}", snapshot::FORMAT + 1),
        format!(
            "UPDATE snapshot SET format = {}, body = x'00ff17'",
            snapshot::FORMAT
        ),
    ] {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&tamper).unwrap();
        drop(conn);
        let node = Node::open(&db, store().actor()).unwrap();
        assert_eq!(node.read(|r| r.state().sales.len()), 10, "{tamper}");
        assert_equals_whole_replay(&node);
        node.close_blocking().unwrap();
    }
}

#[test]
fn an_erasure_takes_the_snapshot_holding_the_customer_off_the_disk_in_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let node = stocked_store(&db);
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
    node.checkpoint_blocking().unwrap();
    let holds_name = |body: &[u8]| body.windows(11).any(|w| w == b"Ana Secreta");
    let (_, body) = stored(&db).expect("a snapshot after a checkpoint");
    assert!(holds_name(&body), "the snapshot holds the customer before");

    node.submit_blocking(1_700_000_300_001, vec![Payload::CustomerErase { customer }])
        .unwrap();
    // No checkpoint: the erasure's own commit took the snapshot (a later one is written from
    // memory, which holds nothing of her).
    if let Some((_, body)) = stored(&db) {
        assert!(!holds_name(&body), "the snapshot still holds the customer");
    }
    node.close_blocking().unwrap();
    let (_, body) = stored(&db).expect("a snapshot after the close");
    assert!(!holds_name(&body));
}

#[test]
fn after_a_sigkill_the_node_started_from_its_snapshot_equals_the_whole_logs_replay() {
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
    let mut lines = BufReader::new(stdout).lines();
    // Until the writer has written a snapshot, then some more acknowledged ops after it.
    let mut acked = 0usize;
    while stored(&db).is_none() {
        let read = lines.by_ref().take(200).count();
        assert_eq!(read, 200, "the soak stopped before any snapshot");
        acked += read;
    }
    let more = lines.by_ref().take(500).count();
    assert_eq!(more, 500);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(acked > 0);

    let node = Node::open_existing(&db).unwrap();
    assert_equals_whole_replay(&node);
}

#[test]
fn a_dropped_nodes_late_snapshot_does_not_claim_ops_a_reopened_node_logged_since() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    // `old` stands for a dropped node whose writer thread has not finished yet: it still
    // writes its close-time snapshot after the file was reopened and written to.
    let old = stocked_store(&db);
    let reopened = Node::open(&db, store().actor()).unwrap();
    sell(&reopened, 0, 5);
    reopened.close_blocking().unwrap();
    drop(reopened);
    old.checkpoint_blocking().unwrap(); // its writer snapshots its replica, without the sales
    old.close_blocking().unwrap();
    drop(old);
    let (through, _) = stored(&db).expect("the reopened node's snapshot");
    assert_eq!(through, last_rowid(&db));

    let node = Node::open(&db, store().actor()).unwrap();
    assert_eq!(node.read(|r| r.state().sales.len()), 5);
    assert_equals_whole_replay(&node);
    sell(&node, 5, 6);
    node.close_blocking().unwrap();
    drop(node);
    let node = Node::open(&db, store().actor()).unwrap();
    assert_equals_whole_replay(&node);
}

#[test]
fn a_snapshot_whose_tail_does_not_apply_is_dropped_for_a_whole_replay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let node = stocked_store(&db);
    sell(&node, 0, 10);
    node.checkpoint_blocking().unwrap();
    let (through, body) = stored(&db).expect("a snapshot after a checkpoint");
    sell(&node, 10, 20);
    node.close_blocking().unwrap();
    drop(node);
    // The state after 10 sales claiming 3 more: the tail starts with a seq gap.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE snapshot SET through = ?1, body = ?2",
        rusqlite::params![through + 3, body],
    )
    .unwrap();
    drop(conn);

    let node = Node::open(&db, store().actor()).unwrap();
    assert_eq!(node.read(|r| r.state().sales.len()), 20);
    assert_equals_whole_replay(&node);
    // The next snapshot replaces the bad one.
    sell(&node, 20, 21);
    node.close_blocking().unwrap();
    drop(node);
    assert_eq!(stored(&db).unwrap().0, last_rowid(&db));
    let node = Node::open(&db, store().actor()).unwrap();
    assert_equals_whole_replay(&node);
}
