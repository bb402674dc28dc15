//! Several tills in one store: each drawer has its own session, a sale or return counts in
//! the session of the till it was taken at, and HQ derives the same per-till reports.

use super::tests::{issue, session, sku, store_and_hq};
use super::{default_till, TillDoc};
use crate::domain::ids::*;
use crate::domain::op::*;
use crate::domain::DomainError;

fn till(t: &str) -> TillId {
    TillId::parse(t).unwrap()
}

fn sale(store: &StoreId, id: &str, unit_cents: i64, tender: Tender) -> Payload {
    Payload::Sale {
        store: store.clone(),
        sale_id: SaleId::parse(id).unwrap(),
        lines: vec![SaleLine {
            sku: sku(0),
            qty: 1,
            unit_cents,
            vat_bp: 2_100,
        }],
        tender,
        customer: None,
    }
}

#[test]
fn each_till_counts_only_the_sales_taken_at_it_and_hq_reports_the_same() {
    let (mut st, mut hq, store, mut log) = store_and_hq();
    // T1 opened as every store did before tills (`CashOpen`), T2 with its own op.
    let t1 = Payload::CashOpen {
        store: store.clone(),
        session: session("Z1"),
        float_cents: 10_000,
        staff: "1001".into(),
        opened_ms: 10,
    };
    issue(&mut st, &mut log, 10, t1);
    let t2 = |id: &str| Payload::CashOpenTill {
        store: store.clone(),
        till: till("T2"),
        session: session(id),
        float_cents: 5_000,
        staff: "1002".into(),
        opened_ms: 11,
    };
    issue(&mut st, &mut log, 11, t2("Z2"));
    assert_eq!(
        st.prepare(12, t2("Z3")).unwrap_err(),
        DomainError::CashSessionOpen(session("Z2")),
        "one open session per till"
    );
    let at_t2 = |id: &str| Payload::TakenAt {
        store: store.clone(),
        till: till("T2"),
        doc: TillDoc::Sale(SaleId::parse(id).unwrap()),
    };
    issue(&mut st, &mut log, 12, at_t2("S1"));
    issue(&mut st, &mut log, 12, sale(&store, "S1", 700, Tender::Cash));
    issue(&mut st, &mut log, 13, sale(&store, "S2", 300, Tender::Cash));
    issue(&mut st, &mut log, 14, at_t2("S3"));
    issue(&mut st, &mut log, 14, sale(&store, "S3", 900, Tender::Card));
    let book = &st.state().cash;
    let z1 = &book.sessions[&session("Z1")];
    let z2 = &book.sessions[&session("Z2")];
    assert_eq!(z1.till, default_till());
    assert_eq!((z1.totals.sales, z1.expected_cents()), (1, 10_300));
    assert_eq!((z2.totals.sales, z2.expected_cents()), (2, 5_700));
    assert_eq!(z2.report().by_tender[&Tender::Card], 900);
    // Closing T2 leaves T1's drawer open.
    let close = Payload::CashClose {
        store: store.clone(),
        session: session("Z2"),
        counted_cents: 5_700,
        staff: "1002".into(),
        closed_ms: 20,
    };
    issue(&mut st, &mut log, 20, close);
    let book = &st.state().cash;
    assert!(book.current(&store, &till("T2")).is_none());
    assert_eq!(
        book.current(&store, &default_till()).unwrap().id,
        session("Z1")
    );
    assert_eq!(book.open_of_store(&store).count(), 1);
    // A sale at T2 now is counted nowhere (card needs no drawer); T2 opens again.
    issue(&mut st, &mut log, 21, at_t2("S4"));
    issue(&mut st, &mut log, 21, sale(&store, "S4", 100, Tender::Card));
    issue(&mut st, &mut log, 22, t2("Z3"));
    let book = &st.state().cash;
    assert_eq!(book.sessions[&session("Z2")].totals.sales, 2);
    assert_eq!(book.sessions[&session("Z3")].totals.sales, 0);
    assert_eq!(book.sessions[&session("Z1")].totals.sales, 1);
    for op in &log {
        hq.apply(op).unwrap();
    }
    for id in ["Z1", "Z2", "Z3"] {
        assert_eq!(
            hq.state().cash.sessions[&session(id)].report(),
            st.state().cash.sessions[&session(id)].report(),
            "{id} at HQ"
        );
    }
}
