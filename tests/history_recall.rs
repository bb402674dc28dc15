//! `store::history::recall` reads the history tables only when they can hold what an op
//! names: never on a replica that has evicted nothing, never for an op it has seen already
//! (a duplicate, answered from the version vector), and always for a fresh op naming an
//! evicted sale, so a resent sale is still refused as a duplicate. Real SQLite files.

mod history_support;

use history_support::{catalog, madrid, sku, T0};
use rusqlite::Connection;
use storenode::domain::op::{ReceiveReason, SaleLine, Tender};
use storenode::domain::{DomainError, Op, Payload, Replica, SaleId};
use storenode::store::{history, schema};

fn sale_id(n: u32) -> SaleId {
    SaleId::parse(&format!("S-{n}")).unwrap()
}

fn sale(n: u32) -> Payload {
    Payload::Sale {
        store: madrid(),
        sale_id: sale_id(n),
        lines: vec![SaleLine {
            sku: sku(n as usize),
            qty: 1,
            unit_cents: 250,
            vat_bp: 2100,
        }],
        tender: Tender::Cash,
        customer: None,
    }
}

/// Madrid's replica with the catalog, stock, and sale 1 made; the sale's op.
fn selling() -> (Replica, Op) {
    let mut r = Replica::new(madrid().actor());
    for op in catalog() {
        r.apply(&op).unwrap();
    }
    for i in 0..3 {
        let receive = Payload::StockReceive {
            store: madrid(),
            sku: sku(i),
            qty: 100,
            reason: ReceiveReason::Delivery,
        };
        r.prepare(T0 + 100, receive).unwrap();
    }
    let (op, _) = r.prepare(T0 + 200, sale(1)).unwrap();
    (r, op)
}

/// A migrated store file in `dir`.
fn file(dir: &tempfile::TempDir) -> Connection {
    let mut conn = Connection::open(dir.path().join("store.db")).unwrap();
    schema::migrate(&mut conn, T0).unwrap();
    conn
}

/// Evict sale 1 from `r` and keep its row where `recall` looks, as the writer's eviction
/// pass does (row numbered with the eviction that made it).
fn evict_sale_1(conn: &Connection, r: &mut Replica) {
    let record = r.evict_sale(&sale_id(1)).expect("sale 1 is evictable");
    conn.execute(
        "INSERT INTO sale_history (id, store, customer, at_ms, eviction, body)
         VALUES (?1, ?2, NULL, ?3, ?4, ?5)",
        rusqlite::params![
            record.id.as_str(),
            record.store.as_str(),
            record.at.wall_ms() as i64,
            r.state().evictions() as i64,
            history::encode_body(history::SALE_BODY_FORMAT, &record),
        ],
    )
    .unwrap();
}

#[test]
fn a_replica_that_never_evicted_reads_no_history_table_for_any_op() {
    let dir = tempfile::tempdir().unwrap();
    let conn = file(&dir);
    // Any read of history now fails: a recall that succeeds read nothing.
    conn.execute_batch("DROP TABLE sale_history; DROP TABLE order_history;")
        .unwrap();
    let (mut r, op) = selling();
    assert_eq!(r.state().evictions(), 0);

    history::recall(&conn, &mut r, &sale(2)).unwrap();
    history::recall(&conn, &mut r, &sale(1)).unwrap();
    history::recall_op(&conn, &mut r, &op).unwrap();
    history::recall_sales(&conn, &mut r, [&sale_id(9)]).unwrap();

    // Once something was evicted, the same recall reads the table (here: finds it gone).
    r.evict_sale(&sale_id(1)).expect("sale 1 is evictable");
    assert!(history::recall(&conn, &mut r, &sale(2)).is_err());
}

#[test]
fn a_seen_op_is_not_recalled_but_a_resent_sale_after_eviction_is_refused_as_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let conn = file(&dir);
    let (mut r, op) = selling();
    evict_sale_1(&conn, &mut r);
    assert!(!r.state().sales.contains_key(&sale_id(1)));

    // The sale's own op again (a redelivery): a duplicate, nothing read, nothing rehydrated.
    history::recall_op(&conn, &mut r, &op).unwrap();
    assert!(!r.state().sales.contains_key(&sale_id(1)));
    assert!(matches!(
        r.apply(&op),
        Ok(storenode::domain::Applied::Duplicate)
    ));

    // The till resends the sale as a new submit: the evicted record comes back first, so
    // the resend is refused as before.
    history::recall(&conn, &mut r, &sale(1)).unwrap();
    assert!(r.state().sales.contains_key(&sale_id(1)));
    assert!(matches!(
        r.check(&sale(1)),
        Err(DomainError::DuplicateSale(id)) if id == sale_id(1)
    ));
}
