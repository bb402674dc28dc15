//! Fault injection into the writer: every way a submit, an ingest or a side-table write can fail
//! (its first op, a middle op, its side rows, the commit, the begin), each on a real SQLite file.
//!
//! Faults are SQL the test installs through the node's own writer: a trigger that RAISEs when
//! a chosen op row is inserted, or one that leaves a deferred foreign-key violation so that
//! `COMMIT` itself fails. After each fault: the caller got an error naming what failed, memory
//! equals a fresh replay of the file, and sending the same thing again stores it.

use storenode::domain::op::ReceiveReason;
use storenode::domain::{ActorId, Ean13, Op, Payload, Replica, Sku, StoreId};
use storenode::store::{decode_op, Durability, Node, StoreError, SubmitError, TxStep};

/// A store node with HQ's catalog of `skus` articles ingested; HQ's catalog ops returned too.
struct Fixture {
    _dir: tempfile::TempDir,
    store: Node,
    madrid: StoreId,
    catalog: Vec<Op>,
}

fn catalog_ops(dir: &std::path::Path, skus: u32) -> Vec<Op> {
    let hq = Node::open(&dir.join("hq.db"), ActorId::hq()).unwrap();
    let payloads = (1..=skus)
        .map(|i| Payload::CatalogPut {
            sku: sku(i),
            ean: Ean13::parse(["8410234782535", "8410234848118", "8410234787912"][i as usize % 3])
                .unwrap(),
            name: format!("article {i}"),
            price_cents: 100,
            vat_bp: 1000,
        })
        .collect();
    hq.submit_blocking(1_000, payloads).unwrap().ops
}

fn sku(i: u32) -> Sku {
    Sku::parse(&format!("SKU-{i:06}")).unwrap()
}

fn fixture(ingest_catalog: bool) -> Fixture {
    fixture_with(ingest_catalog, Durability::default())
}

/// Built on a thread of its own: the blocking calls must not run on an async test's runtime.
fn fixture_with(ingest_catalog: bool, durability: Durability) -> Fixture {
    std::thread::spawn(move || build(ingest_catalog, durability))
        .join()
        .unwrap()
}

fn build(ingest_catalog: bool, durability: Durability) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_ops(dir.path(), 3);
    let madrid = StoreId::parse("madrid-centro").unwrap();
    let store = Node::open_with(&dir.path().join("madrid.db"), madrid.actor(), durability).unwrap();
    if ingest_catalog {
        assert_eq!(store.ingest_blocking(catalog.clone()).unwrap().applied, 3);
    }
    Fixture {
        _dir: dir,
        store,
        madrid,
        catalog,
    }
}

fn receive(f: &Fixture, i: u32) -> Payload {
    Payload::StockReceive {
        store: f.madrid.clone(),
        sku: sku(i),
        qty: 5,
        reason: ReceiveReason::Delivery,
    }
}

/// Run SQL on the node's writer connection, in its own committed request (from any context:
/// the write is awaited on a thread of its own).
fn sql(node: &Node, statements: impl Into<String>) {
    let statements = statements.into();
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(node.write(move |tx| tx.execute_batch(&statements)))
                .unwrap();
        })
        .join()
        .unwrap();
    });
}

/// A trigger that fails the insert of op `actor/seq` with "injected fault".
fn fail_row(node: &Node, actor: &ActorId, seq: u64) {
    let statements = format!(
        "CREATE TRIGGER fault_row BEFORE INSERT ON ops WHEN NEW.actor = '{}' AND NEW.seq = {seq}
         BEGIN SELECT RAISE(ABORT, 'injected fault on {}/{seq}'); END;",
        actor.as_str(),
        actor.as_str()
    );
    sql(node, statements);
}

/// Tables and a trigger that make the COMMIT of any transaction inserting op `actor/seq` fail
/// (a deferred foreign key left dangling).
fn fail_commit(node: &Node, actor: &ActorId, seq: u64) {
    let statements = format!(
        "CREATE TABLE fault_parent (id INTEGER PRIMARY KEY);
         CREATE TABLE fault_child (parent INTEGER
             REFERENCES fault_parent(id) DEFERRABLE INITIALLY DEFERRED);
         CREATE TRIGGER fault_commit AFTER INSERT ON ops
             WHEN NEW.actor = '{}' AND NEW.seq = {seq}
         BEGIN INSERT INTO fault_child VALUES (1); END;",
        actor.as_str()
    );
    sql(node, statements);
}

fn heal(node: &Node) {
    sql(
        node,
        "DROP TRIGGER IF EXISTS fault_row; DROP TRIGGER IF EXISTS fault_commit;",
    );
}

/// The in-memory replica equals one rebuilt from the ops committed in the file.
fn assert_memory_matches_file(node: &Node) {
    let ops: Vec<Op> = node
        .query_blocking(|c| {
            let mut stmt = c.prepare("SELECT body FROM ops ORDER BY rowid")?;
            let bodies = stmt
                .query_map([], |r| r.get::<_, Vec<u8>>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(bodies)
        })
        .unwrap()
        .iter()
        .map(|b| decode_op(b).unwrap())
        .collect();
    let mut fresh = Replica::new(node.actor().clone());
    for op in &ops {
        fresh.apply(op).unwrap();
    }
    node.read(|memory| {
        assert_eq!(memory.version(), fresh.version(), "version vectors differ");
        assert_eq!(memory.digest(), fresh.digest(), "states differ");
        assert_eq!(memory.next_seq(), fresh.next_seq());
    });
}

fn stored(node: &Node, actor: &ActorId) -> u64 {
    node.query_blocking(|c| {
        c.query_row(
            "SELECT count(*) FROM ops WHERE actor = ?1",
            [actor.as_str()],
            |r| r.get::<_, i64>(0),
        )
    })
    .unwrap() as u64
}

fn assert_injected(e: &StoreError, what: &str) {
    let text = e.to_string();
    assert!(text.contains(what), "{text}");
    assert!(!text.contains("migration"), "{text}");
    assert!(!text.contains("writer has stopped"), "{text}");
}

#[test]
fn an_ingest_whose_first_op_fails_to_store_is_stored_when_sent_again() {
    let f = fixture(false);
    fail_row(&f.store, &ActorId::hq(), 1);
    let e = f.store.ingest_blocking(f.catalog.clone()).unwrap_err();
    assert_injected(&e, "injected fault on hq/1");
    assert_memory_matches_file(&f.store);
    assert_eq!(f.store.read(|r| r.version().contiguous(&ActorId::hq())), 0);

    heal(&f.store);
    let again = f.store.ingest_blocking(f.catalog.clone()).unwrap();
    assert_eq!((again.applied, again.duplicates), (3, 0));
    assert_eq!(stored(&f.store, &ActorId::hq()), 3);
    assert_memory_matches_file(&f.store);
}

#[test]
fn an_ingest_whose_middle_op_fails_stores_none_of_its_ops_and_all_when_sent_again() {
    let f = fixture(false);
    fail_row(&f.store, &ActorId::hq(), 2);
    let e = f.store.ingest_blocking(f.catalog.clone()).unwrap_err();
    assert_injected(&e, "injected fault on hq/2");
    assert_eq!(stored(&f.store, &ActorId::hq()), 0);
    assert_memory_matches_file(&f.store);

    heal(&f.store);
    let again = f.store.ingest_blocking(f.catalog.clone()).unwrap();
    assert_eq!((again.applied, again.duplicates), (3, 0));
    assert_memory_matches_file(&f.store);
}

/// HQ commits an up-batch's routing with it (`Node::ingest_then`): when the routing write
/// fails, the ops are not stored either, memory drops them, and the batch is stored when sent
/// again; the write sees what the ingest did.
#[tokio::test]
async fn an_ingest_whose_following_write_fails_stores_none_of_its_ops() {
    let f = fixture_with(false, Durability::default());
    let e = f
        .store
        .ingest_then(f.catalog.clone(), |tx, _| {
            tx.execute_batch("INSERT INTO no_such_table VALUES (1)")
        })
        .await
        .unwrap_err();
    assert_injected(&e, "no_such_table");
    let node = f.store.clone();
    let hq = ActorId::hq();
    let (stored_now, node) = tokio::task::spawn_blocking(move || {
        assert_memory_matches_file(&node);
        (stored(&node, &hq), node)
    })
    .await
    .unwrap();
    assert_eq!(stored_now, 0);
    assert_eq!(node.read(|r| r.version().contiguous(&ActorId::hq())), 0);

    let (again, seen) = node
        .ingest_then(f.catalog.clone(), |tx, ingested| {
            let logged: i64 = tx.query_row("SELECT count(*) FROM ops", [], |r| r.get(0))?;
            Ok((ingested.applied, logged))
        })
        .await
        .unwrap();
    assert_eq!((again.applied, again.duplicates), (3, 0));
    assert_eq!(
        seen,
        (3, 3),
        "the write runs after the ops, told how many were new"
    );
}

#[test]
fn an_ingest_whose_commit_fails_says_so_and_is_stored_when_sent_again() {
    let f = fixture(false);
    fail_commit(&f.store, &ActorId::hq(), 3);
    let e = f.store.ingest_blocking(f.catalog.clone()).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Transaction {
                step: TxStep::Commit,
                ..
            }
        ),
        "{e:?}"
    );
    assert_injected(&e, "committing the write transaction failed");
    assert!(e.to_string().contains("FOREIGN KEY"), "{e}");
    assert_eq!(stored(&f.store, &ActorId::hq()), 0);
    assert_memory_matches_file(&f.store);

    heal(&f.store);
    let again = f.store.ingest_blocking(f.catalog.clone()).unwrap();
    assert_eq!((again.applied, again.duplicates), (3, 0));
    assert_memory_matches_file(&f.store);
}

#[test]
fn a_submit_whose_only_op_fails_to_store_leaves_no_gap_in_the_seqs() {
    let f = fixture(true);
    let me = f.madrid.actor();
    fail_row(&f.store, &me, 1);
    let e = f.store.submit_blocking(2_000, vec![receive(&f, 1)]);
    let Err(SubmitError::Store(e)) = e else {
        panic!("{e:?}")
    };
    assert_injected(&e, &format!("injected fault on {}/1", me.as_str()));
    assert_memory_matches_file(&f.store);

    heal(&f.store);
    let ok = f
        .store
        .submit_blocking(2_001, vec![receive(&f, 1)])
        .unwrap();
    assert_eq!(ok.ops[0].seq, 1);
    assert_eq!(stored(&f.store, &me), 1);
    assert_memory_matches_file(&f.store);
}

#[test]
fn a_submit_whose_middle_op_fails_stores_none_of_its_ops() {
    let f = fixture(true);
    let me = f.madrid.actor();
    fail_row(&f.store, &me, 2);
    let all = vec![receive(&f, 1), receive(&f, 2), receive(&f, 3)];
    let Err(SubmitError::Store(e)) = f.store.submit_blocking(2_000, all.clone()) else {
        panic!("the middle op's fault must fail the submit")
    };
    assert_injected(&e, &format!("injected fault on {}/2", me.as_str()));
    assert_eq!(stored(&f.store, &me), 0);
    assert_memory_matches_file(&f.store);

    heal(&f.store);
    let ok = f.store.submit_blocking(2_001, all).unwrap();
    assert_eq!(ok.ops.iter().map(|o| o.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_memory_matches_file(&f.store);
}

#[tokio::test]
async fn a_submit_whose_side_rows_fail_stores_nothing_and_says_why() {
    let f = fixture(true);
    let e = f
        .store
        .submit_with(vec![receive(&f, 1)], |tx, _ops| {
            tx.execute_batch("INSERT INTO no_such_table VALUES (1)")
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no_such_table"), "{e}");
    assert_eq!(stored(&f.store, &f.madrid.actor()), 0);
    assert_memory_matches_file(&f.store);
    let ok = f.store.submit(vec![receive(&f, 1)]).await.unwrap();
    assert_eq!(ok.ops[0].seq, 1);
}

#[test]
fn a_submit_whose_commit_fails_says_so_and_leaves_memory_as_the_file() {
    let f = fixture(true);
    let me = f.madrid.actor();
    fail_commit(&f.store, &me, 1);
    let Err(SubmitError::Store(e)) = f.store.submit_blocking(2_000, vec![receive(&f, 1)]) else {
        panic!("a failed commit must fail the submit")
    };
    assert_injected(&e, "committing the write transaction failed");
    assert_eq!(stored(&f.store, &me), 0);
    assert_memory_matches_file(&f.store);

    heal(&f.store);
    let ok = f
        .store
        .submit_blocking(2_001, vec![receive(&f, 1)])
        .unwrap();
    assert_eq!(ok.ops[0].seq, 1);
    assert_memory_matches_file(&f.store);
}

#[tokio::test]
async fn a_side_table_write_that_fails_or_whose_commit_fails_says_which() {
    let f = fixture(true);
    let e = f
        .store
        .write(|tx| tx.execute_batch("INSERT INTO no_such_table VALUES (1)"))
        .await
        .unwrap_err();
    assert_injected(&e, "no_such_table");

    // A write that leaves a deferred constraint broken fails at COMMIT, and says so.
    f.store
        .write(|tx| {
            tx.execute_batch(
                "CREATE TABLE fault_parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE fault_child (parent INTEGER
                     REFERENCES fault_parent(id) DEFERRABLE INITIALLY DEFERRED);",
            )
        })
        .await
        .unwrap();
    let e = f
        .store
        .write(|tx| tx.execute_batch("INSERT INTO fault_child VALUES (7)"))
        .await
        .unwrap_err();
    assert_injected(&e, "committing the write transaction failed");
    let rows: i64 = f
        .store
        .query(|c| c.query_row("SELECT count(*) FROM fault_child", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(rows, 0);
    assert_memory_matches_file(&f.store);
}

#[test]
fn a_group_whose_begin_fails_tells_every_caller_and_the_node_writes_again_after() {
    let f = fixture_with(
        true,
        Durability {
            busy_timeout_ms: 50,
            ..Durability::default()
        },
    );
    // Another connection holds the write lock until after the writer's busy timeout.
    let other = rusqlite::Connection::open(f.store.path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let Err(SubmitError::Store(e)) = f.store.submit_blocking(2_000, vec![receive(&f, 1)]) else {
        panic!("a failed begin must fail the submit")
    };
    assert!(
        matches!(
            e,
            StoreError::Transaction {
                step: TxStep::Begin,
                ..
            }
        ),
        "{e:?}"
    );
    assert_injected(&e, "beginning the write transaction failed");
    other.execute_batch("ROLLBACK").unwrap();
    assert_memory_matches_file(&f.store);
    let ok = f
        .store
        .submit_blocking(2_001, vec![receive(&f, 1)])
        .unwrap();
    assert_eq!(ok.ops[0].seq, 1);
}

/// Holds the writer inside one request until released, so the requests queued meanwhile are
/// committed together in the next group. Returns once the writer is held.
async fn hold_writer(node: &Node) -> std::sync::mpsc::Sender<()> {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (entered, is_held) = tokio::sync::oneshot::channel::<()>();
    let node = node.clone();
    tokio::spawn(async move {
        node.write(move |_| {
            let _ = entered.send(());
            let _ = held.recv();
            Ok(())
        })
        .await
    });
    is_held.await.unwrap();
    release
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_in_the_same_group_as_its_failed_ingest_is_stored_not_taken_for_a_duplicate() {
    let f = fixture(false);
    sql(&f.store, "CREATE TABLE fault_armed (x INTEGER)");
    sql(
        &f.store,
        "INSERT INTO fault_armed VALUES (1);
         CREATE TRIGGER fault_row BEFORE INSERT ON ops
             WHEN NEW.seq = 1 AND (SELECT count(*) FROM fault_armed) > 0
         BEGIN SELECT RAISE(ABORT, 'injected fault on hq/1'); END;",
    );
    let release = hold_writer(&f.store).await;
    let mut first = Box::pin(f.store.ingest(f.catalog.clone()));
    let mut disarm = Box::pin(
        f.store
            .write(|tx| tx.execute_batch("DELETE FROM fault_armed")),
    );
    let mut resend = Box::pin(f.store.ingest(f.catalog.clone()));
    // Each poll queues its request behind the held one, in this order.
    assert!(futures_util::poll!(&mut first).is_pending());
    assert!(futures_util::poll!(&mut disarm).is_pending());
    assert!(futures_util::poll!(&mut resend).is_pending());
    let before = f.store.writer_stats();
    release.send(()).unwrap();

    let e = first.await.unwrap_err();
    assert_injected(&e, "injected fault on hq/1");
    disarm.await.unwrap();
    let again = resend.await.unwrap();
    assert_eq!((again.applied, again.duplicates), (3, 0));
    // The held request's group, then one group of the three.
    let after = f.store.writer_stats();
    assert_eq!(
        (
            after.groups - before.groups,
            after.requests - before.requests
        ),
        (2, 4)
    );
    assert_eq!(stored(&f.store, &ActorId::hq()), 3);
    assert_memory_matches_file(&f.store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_after_a_failed_one_in_the_same_group_takes_the_freed_seq() {
    let f = fixture(true);
    let release = hold_writer(&f.store).await;
    let mut failing = Box::pin(f.store.submit_with(vec![receive(&f, 1)], |tx, _| {
        tx.execute_batch("INSERT INTO no_such_table VALUES (1)")
    }));
    let mut next = Box::pin(f.store.submit(vec![receive(&f, 2)]));
    assert!(futures_util::poll!(&mut failing).is_pending());
    assert!(futures_util::poll!(&mut next).is_pending());
    release.send(()).unwrap();

    assert!(failing.await.is_err());
    let ok = next.await.unwrap();
    assert_eq!(ok.ops[0].seq, 1, "the failed op's seq is free again");
    assert_eq!(stored(&f.store, &f.madrid.actor()), 1);
    assert_memory_matches_file(&f.store);
}

/// SQLite may roll a whole transaction back when a statement fails (a full disk, an I/O
/// error; `RAISE(ROLLBACK)` here): the rows of the requests before it in the group are gone
/// with it, so none of the group may be reported stored, and memory must match the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_whose_failure_rolls_back_the_transaction_fails_every_request_of_its_group() {
    let f = fixture(true);
    let me = f.madrid.actor();
    sql(
        &f.store,
        format!(
            "CREATE TRIGGER fault_row BEFORE INSERT ON ops WHEN NEW.actor = '{}' AND NEW.seq = 2
             BEGIN SELECT RAISE(ROLLBACK, 'injected rollback'); END;",
            me.as_str()
        ),
    );
    let release = hold_writer(&f.store).await;
    let mut first = Box::pin(f.store.submit(vec![receive(&f, 1)]));
    let mut second = Box::pin(f.store.submit(vec![receive(&f, 2)]));
    let mut third = Box::pin(f.store.submit(vec![receive(&f, 3)]));
    assert!(futures_util::poll!(&mut first).is_pending());
    assert!(futures_util::poll!(&mut second).is_pending());
    assert!(futures_util::poll!(&mut third).is_pending());
    release.send(()).unwrap();

    let second = second.await.expect_err("its row was refused");
    assert!(second.to_string().contains("injected rollback"), "{second}");
    assert!(
        first.await.is_err(),
        "its row was rolled back with the group"
    );
    assert!(
        third.await.is_err(),
        "it ran after the group broke, or not at all"
    );
    assert_eq!(stored(&f.store, &me), 0);
    assert_memory_matches_file(&f.store);

    heal(&f.store);
    let ok = f.store.submit(vec![receive(&f, 1)]).await.unwrap();
    assert_eq!(ok.ops[0].seq, 1);
    assert_eq!(stored(&f.store, &me), 1);
    assert_memory_matches_file(&f.store);
}
