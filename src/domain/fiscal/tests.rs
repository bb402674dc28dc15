//! Chains issued, checked, merged out of order and tampered with.

use super::*;

fn issuer() -> Issuer {
    Issuer {
        nif: TaxId::parse("89890001K").unwrap(),
        name: "Tiendas Demo SL".into(),
        series: "MAD1".into(),
    }
}

fn stamp(second: u32) -> Stamp {
    Stamp {
        fecha: "01-01-2024".into(),
        generated_at: format!("2024-01-01T19:20:{second:02}+01:00"),
    }
}

/// A chain of `n` till sales, each merged as the store would.
fn issued(n: u32) -> (FiscalChain, Vec<InvoiceRecord>) {
    let mut chain = FiscalChain::default();
    let mut records = Vec::new();
    for i in 0..n {
        let draft = InvoiceDraft::sale(&format!("S{i}"), [(2, 1210 + i64::from(i), 2100)], None);
        let r = chain.issue(&issuer(), draft, &stamp(i));
        assert_eq!(chain.check_next(&r), Ok(()));
        chain.merge(r.clone());
        records.push(r);
    }
    (chain, records)
}

#[test]
fn issued_records_are_numbered_in_order_and_chained_by_their_huella() {
    let (chain, records) = issued(3);
    assert_eq!(records[0].numserie(), "MAD1-1");
    assert_eq!(records[2].numserie(), "MAD1-3");
    assert_eq!(records[0].previous, "");
    assert_eq!(records[1].previous, records[0].huella);
    assert_eq!(records[0].tipo, InvoiceType::F2);
    assert_eq!(records[0].importe_cents, 2420);
    assert_eq!(records[0].cuota_cents, 420);
    assert_eq!(chain.records, 3);
    assert_eq!(chain.last_numserie, "MAD1-3");
    assert_eq!(verify(&records), Ok(3));
}

#[test]
fn a_customer_tax_id_makes_a_full_invoice_and_its_rectification_an_r1() {
    let mut chain = FiscalChain::default();
    let buyer = TaxId::parse("B12345674").unwrap();
    let sale = InvoiceDraft::sale("S1", [(1, 12100, 2100)], Some(buyer));
    let r = chain.issue(&issuer(), sale, &stamp(1));
    assert_eq!(r.tipo, InvoiceType::F1);
    chain.merge(r);
    let original = chain.invoice_for("S1").unwrap().clone();
    let rect = InvoiceDraft::rectifying("R1", Some(&original), [(-12100, 2100)]);
    let r = chain.issue(&issuer(), rect, &stamp(2));
    assert_eq!(r.tipo, InvoiceType::R1);
    assert_eq!(r.importe_cents, -12100);
    assert_eq!(r.cuota_cents, -2100);
    assert_eq!(r.customer_tax_id.as_deref(), Some("B12345674"));
    assert_eq!(r.rectifies.as_ref().unwrap().numserie, "MAD1-1");
    assert_eq!(r.numserie(), "MAD1-2");
}

#[test]
fn a_changed_record_fails_verification_at_that_record() {
    let (_, mut records) = issued(4);
    records[2].importe_cents += 100;
    let err = verify(&records).unwrap_err();
    assert_eq!(err.position, 3);
    assert_eq!(err.numserie, "MAD1-3");
    assert!(matches!(err.reason, BreakReason::Huella { .. }));
}

#[test]
fn a_removed_record_fails_verification_where_it_is_missing() {
    let (_, mut records) = issued(4);
    records.remove(1);
    let err = verify(&records).unwrap_err();
    assert_eq!(err.position, 2);
    assert!(matches!(
        err.reason,
        BreakReason::Position {
            got: 3,
            expected: 2
        }
    ));
}

#[test]
fn records_swapped_in_place_fail_at_the_first_of_them() {
    let (_, mut records) = issued(4);
    let (a, b) = (records[1].clone(), records[2].clone());
    records[1] = InvoiceRecord { position: 2, ..b };
    records[2] = InvoiceRecord { position: 3, ..a };
    let err = verify(&records).unwrap_err();
    assert_eq!(err.position, 2);
    assert_eq!(err.numserie, "MAD1-3");
    assert!(matches!(err.reason, BreakReason::Previous { .. }));
}

#[test]
fn a_rehashed_record_with_a_skipped_number_fails_on_the_number() {
    let (_, mut records) = issued(2);
    records[1].number = 7;
    records[1].huella = records[1].computed_huella();
    let err = verify(&records).unwrap_err();
    assert!(matches!(
        err.reason,
        BreakReason::Number {
            got: 7,
            expected: 2,
            ..
        }
    ));
}

#[test]
fn hq_merges_records_arriving_out_of_order_into_an_intact_chain() {
    let (store, records) = issued(5);
    let mut hq = FiscalChain::default();
    for i in [3, 0, 4, 2, 1] {
        hq.merge(records[i].clone());
    }
    assert_eq!(hq, store);
    assert_eq!(hq.broken_at, None);
    assert_eq!(hq.pending(), 0);
}

#[test]
fn hq_marks_the_chain_broken_at_the_first_tampered_record_and_keeps_going() {
    let (_, mut records) = issued(5);
    records[1].cuota_cents = 0;
    records[3].importe_cents = 0;
    let mut hq = FiscalChain::default();
    for r in records {
        hq.merge(r);
    }
    assert_eq!(hq.records, 5);
    let broken = hq.broken_at.unwrap();
    assert_eq!((broken.position, broken.numserie.as_str()), (2, "MAD1-2"));
}

#[test]
fn a_cancellation_record_chains_like_a_registration() {
    let (mut chain, records) = issued(2);
    let mut anulacion = InvoiceRecord {
        position: 3,
        kind: RecordKind::Anulacion,
        previous: chain.last_huella.clone(),
        generated_at: "2024-01-01T19:21:00+01:00".into(),
        ..records[1].clone()
    };
    anulacion.huella = anulacion.computed_huella();
    assert_eq!(chain.check_next(&anulacion), Ok(()));
    chain.merge(anulacion.clone());
    assert_eq!(chain.next_number("MAD1"), 3);
    let mut all = records;
    all.push(anulacion);
    assert_eq!(verify(&all), Ok(3));
}
