//! Black-box tests of the store: the real binary, real SQLite files, SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use storenode::domain::op::{ReceiveReason, SaleLine, Tender};
use storenode::domain::{ActorId, Payload, SaleId, Sku, StoreId};
use storenode::store::import::{import_blocking, ImportKind};
use storenode::store::Node;

const BIN: &str = env!("CARGO_BIN_EXE_storenode");

fn seed(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/seed")
        .join(name)
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run storenode");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[test]
fn every_acknowledged_op_survives_a_sigkill_and_the_database_stays_intact() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("soak.db");
    let mut child = Command::new(BIN)
        .args(["soak", "--db"])
        .arg(&db)
        .args(["--ops", "1000000", "--writers", "8"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let seq: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        acked.push(seq);
        if acked.len() >= 2_000 {
            break;
        }
    }
    // Kill it mid-stream: writers are still committing.
    child.kill().unwrap();
    child.wait().unwrap();

    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut missing = Vec::new();
    for seq in &acked {
        let present: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM ops WHERE actor = 'hq' AND seq = ?1",
                [*seq as i64],
                |r| r.get(0),
            )
            .unwrap();
        if !present {
            missing.push(*seq);
        }
    }
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    drop(conn);
    // The log replays without a gap and the node accepts new writes after the crash.
    let (ok, out, err) = run(&["digest", "--db", db.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.starts_with("digest "), "{out}");
}

/// Seed an HQ database and return its ops (catalog, customers, carts).
fn seeded_hq(dir: &Path) -> (Node, Vec<storenode::domain::Op>) {
    let hq = Node::open(&dir.join("hq.db"), ActorId::hq()).unwrap();
    for (kind, file) in [
        (ImportKind::Catalog, "catalog.csv"),
        (ImportKind::Customers, "customers.csv"),
        (ImportKind::Carts, "carts.csv"),
    ] {
        import_blocking(&hq, kind, std::fs::File::open(seed(file)).unwrap()).unwrap();
    }
    let ops = hq
        .query_blocking(|c| Node::ops_since(c, &ActorId::hq(), 0, usize::MAX >> 1))
        .unwrap();
    (hq, ops)
}

#[test]
fn the_same_ops_applied_in_different_orders_give_equal_digests() {
    let dir = tempfile::tempdir().unwrap();
    let (_hq, hq_ops) = seeded_hq(dir.path());
    assert!(hq_ops.len() > 500);

    // A store builds its own ops on top of HQ's catalog: stock and some sales.
    let madrid = StoreId::parse("madrid-centro").unwrap();
    let store = Node::open(&dir.path().join("madrid.db"), madrid.actor()).unwrap();
    store.ingest_blocking(hq_ops.clone()).unwrap();
    import_blocking(
        &store,
        ImportKind::Stock,
        std::fs::File::open(seed("stock.csv")).unwrap(),
    )
    .unwrap();
    let sku = Sku::parse("SKU-000001").unwrap();
    for i in 0..20 {
        store
            .submit_blocking(
                1_000 + i,
                vec![Payload::Sale {
                    store: madrid.clone(),
                    sale_id: SaleId::parse(&format!("S-{i}")).unwrap(),
                    lines: vec![SaleLine {
                        sku: sku.clone(),
                        qty: 1,
                        unit_cents: 100,
                        vat_bp: 1000,
                    }],
                    tender: Tender::Cash,
                    customer: None,
                }],
            )
            .unwrap_or_else(|_| {
                store
                    .submit_blocking(
                        1_000 + i,
                        vec![Payload::StockReceive {
                            store: madrid.clone(),
                            sku: sku.clone(),
                            qty: 5,
                            reason: ReceiveReason::Delivery,
                        }],
                    )
                    .unwrap()
            });
    }
    let store_ops = store
        .query_blocking(|c| Node::ops_since(c, &madrid.actor(), 0, usize::MAX >> 1))
        .unwrap();
    let mut all: Vec<_> = hq_ops.iter().chain(store_ops.iter()).cloned().collect();

    let observer = ActorId::parse("store:observer").unwrap();
    let a = Node::open(&dir.path().join("a.db"), observer.clone()).unwrap();
    a.ingest_blocking(all.clone()).unwrap();
    all.reverse();
    let b = Node::open(&dir.path().join("b.db"), observer).unwrap();
    // Reversed, in small batches, with every batch sent twice.
    for chunk in all.chunks(37) {
        b.ingest_blocking(chunk.to_vec()).unwrap();
        let again = b.ingest_blocking(chunk.to_vec()).unwrap();
        assert_eq!(again.applied, 0);
    }
    drop((a, b));
    let (_, da, _) = run(&["digest", "--db", dir.path().join("a.db").to_str().unwrap()]);
    let (_, db, _) = run(&["digest", "--db", dir.path().join("b.db").to_str().unwrap()]);
    assert!(da.starts_with("digest "), "{da}");
    assert_eq!(da, db);
}

#[test]
fn a_bad_csv_names_each_bad_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hq.db");
    let dbs = db.to_str().unwrap();
    let (ok, _, err) = run(&[
        "import",
        "catalog",
        "--db",
        dbs,
        "--actor",
        "hq",
        seed("catalog.csv").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (_, before, _) = run(&["digest", "--db", dbs]);

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "sku,ean,name,price_cents,vat_bp\n\
         NEW-1,8412345678905,Queso añejo,1299,1000\n\
         NEW-2,8412345678901,Turrón,-5,1000\n\
         NEW 3,8412345678905,Café,100,1000\n\
         NEW-4,8412345678905,Té,abc,1000\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["import", "catalog", "--db", dbs, bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("line 3: invalid ean \"8412345678901\": check digit 1, expected 5"),
        "{err}"
    );
    assert!(err.contains("line 4: invalid sku \"NEW 3\""), "{err}");
    assert!(err.contains("line 5: invalid price_cents \"abc\""), "{err}");
    assert!(err.contains("database is unchanged"), "{err}");

    let stock = dir.path().join("stock.csv");
    std::fs::write(
        &stock,
        "customer,sku,qty\nC-0001,NOPE-1,2\nC-0001,SKU-000001,-2\n",
    )
    .unwrap();
    let (ok, _, err) = run(&["import", "carts", "--db", dbs, stock.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("line 2: unknown sku NOPE-1"), "{err}");
    assert!(err.contains("line 3: invalid qty \"-2\""), "{err}");

    let (_, after, _) = run(&["digest", "--db", dbs]);
    assert_eq!(before, after);
}

#[test]
fn a_newer_schema_or_a_non_sqlite_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("newer.db");
    let (ok, _, err) = run(&["migrate", "--db", db.to_str().unwrap(), "--actor", "hq"]);
    assert!(ok, "{err}");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "INSERT INTO schema_version (version, name, applied_at_ms) VALUES (999, 'future', 0)",
            [],
        )
        .unwrap();
    }
    let before = file_bytes(&db);
    let (ok, _, err) = run(&["migrate", "--db", db.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("schema version 999 is newer than this binary supports"),
        "{err}"
    );
    assert_eq!(before, file_bytes(&db));

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"these are not the pages you are looking for").unwrap();
    let (ok, _, err) = run(&["digest", "--db", junk.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("is not an SQLite database"), "{err}");
    assert_eq!(
        file_bytes(&junk),
        b"these are not the pages you are looking for"
    );

    // A real SQLite file with a damaged page.
    let (ok, _, _) = run(&[
        "migrate",
        "--db",
        dir.path().join("c.db").to_str().unwrap(),
        "--actor",
        "hq",
    ]);
    assert!(ok);
    let corrupt = dir.path().join("c.db");
    let mut bytes = file_bytes(&corrupt);
    for b in bytes.iter_mut().skip(4096).take(2048) {
        *b = 0xA5;
    }
    std::fs::write(&corrupt, &bytes).unwrap();
    let (ok, _, err) = run(&["digest", "--db", corrupt.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("corrupt") || err.contains("not an SQLite"),
        "{err}"
    );
    assert_eq!(file_bytes(&corrupt), bytes);
}
