//! "Random bytes never panic", in CI: the proptest twins of the fuzz targets in fuzz/ for the
//! decoders that face the outside and live outside `devices` (which has its own): the op
//! decoder (log and peers) followed by applying the op, and the CSV import parser.

use proptest::prelude::*;
use storenode::domain::op::{OrderLine, SaleLine, Tender};
use storenode::domain::{ActorId, CustomerId, Op, OrderId, Payload, Replica, SaleId, Sku, StoreId};
use storenode::store::import::{parse, ImportKind};
use storenode::store::{decode_op, encode_op};

fn store() -> StoreId {
    StoreId::parse("madrid-centro").unwrap()
}

/// HQ and a store holding the soak catalog.
fn replicas() -> Vec<Replica> {
    let mut out = vec![Replica::new(ActorId::hq()), Replica::new(store().actor())];
    for op in storenode::soak::soak_catalog().unwrap() {
        for r in &mut out {
            r.apply(&op).unwrap();
        }
    }
    out
}

/// Real ops of several kinds, as a peer would send them.
fn sample_ops() -> Vec<Op> {
    let sku = Sku::parse("SOAK-1").unwrap();
    let payloads = [
        Payload::Sale {
            store: store(),
            sale_id: SaleId::parse("S-1").unwrap(),
            lines: vec![SaleLine {
                sku: sku.clone(),
                qty: 2,
                unit_cents: 249,
                vat_bp: 2100,
            }],
            tender: Tender::Card,
            customer: Some(CustomerId::parse("C-0001").unwrap()),
        },
        Payload::OrderPlace {
            order_id: OrderId::parse("O-1").unwrap(),
            store: store(),
            customer: CustomerId::parse("C-0002").unwrap(),
            lines: vec![OrderLine { sku, qty: 1 }],
            pickup_code: "K7P2QX".into(),
            placed_at_ms: 1_763_900_000_000,
        },
    ];
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| Op {
            actor: store().actor(),
            seq: i as u64 + 1,
            hlc: storenode::domain::Hlc::new(1_763_900_000_000, 0),
            payload,
        })
        .collect()
}

fn decode_and_apply(bytes: &[u8]) {
    if let Ok(op) = decode_op(bytes) {
        assert_eq!(decode_op(&encode_op(&op)).unwrap(), op);
        for mut r in replicas() {
            let _ = r.apply(&op);
            let _ = r.apply(&op);
            let _ = r.digest();
        }
    }
}

proptest! {
    #[test]
    fn random_op_bytes_never_panic_the_decoder_or_the_replica(
        body in prop::collection::vec(any::<u8>(), 0..300)
    ) {
        // Version byte 1, so postcard sees the random part.
        let mut bytes = vec![1u8];
        bytes.extend(body);
        decode_and_apply(&bytes);
    }

    #[test]
    fn mutated_real_ops_never_panic_the_decoder_or_the_replica(
        which in 0usize..2,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode_op(&sample_ops()[which]);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1).max(1);
        decode_and_apply(&bytes);
        decode_and_apply(&bytes[..keep]);
    }

    #[test]
    fn random_bytes_never_panic_the_csv_import(
        bytes in prop::collection::vec(any::<u8>(), 0..400)
    ) {
        let rs = replicas();
        for kind in [ImportKind::Catalog, ImportKind::Stock, ImportKind::Customers, ImportKind::Carts] {
            for r in &rs {
                let _ = parse(kind, bytes.as_slice(), r);
            }
        }
    }

    #[test]
    fn csv_shaped_rows_never_panic_the_import(
        kind in 0usize..4,
        rows in prop::collection::vec(
            prop::collection::vec("[A-Za-z0-9 ,\"ñ.\\-]{0,14}", 0..7), 0..12),
    ) {
        let (kind, header) = [
            (ImportKind::Catalog, "sku,ean,name,price_cents,vat_bp"),
            (ImportKind::Stock, "store,sku,qty"),
            (ImportKind::Customers, "id,name,email,phone,loyalty_card,consent_email,consent_sms,consent_whatsapp"),
            (ImportKind::Carts, "customer,sku,qty"),
        ][kind];
        let mut text = format!("{header}\n");
        for row in rows {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        for r in &replicas() {
            let _ = parse(kind, text.as_bytes(), r);
        }
    }
}
