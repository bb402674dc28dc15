use super::*;
use crate::domain::op::Payload;
use crate::domain::{CustomerId, Hlc, Sku};
use proptest::prelude::*;

fn cart_op(seq: u64, qty: u32) -> Op {
    Op {
        actor: StoreId::parse("norte").unwrap().actor(),
        seq,
        hlc: Hlc::new(1_000 + seq, 0),
        payload: Payload::CartSet {
            customer: CustomerId::parse("c-1").unwrap(),
            sku: Sku::parse("SKU-1").unwrap(),
            qty,
        },
    }
}

#[test]
fn an_up_batch_round_trips() {
    let msg = Message::Up(UpBatch {
        store: StoreId::parse("norte").unwrap(),
        ops: (1..=3).map(|s| cart_op(s, 2)).collect(),
    });
    let bytes = encode(&msg).unwrap();
    assert_eq!(bytes[0], WIRE_VERSION);
    assert_eq!(decode(&bytes).unwrap(), msg);
}

#[test]
fn a_signed_up_batch_round_trips_and_its_inner_batch_opens() {
    let key = StoreKey::from_secret(StoreId::parse("norte").unwrap(), [7; 32]);
    let ops: Vec<Op> = (1..=25).map(|s| cart_op(s, 2)).collect();
    let batches = encode_signed_up(&key, &ops, 10).unwrap();
    assert_eq!(batches.len(), 3);
    let mut back = Vec::new();
    for b in &batches {
        let Message::SignedUp(signed) = decode(&b.bytes).unwrap() else {
            panic!("not a signed batch")
        };
        assert_eq!(signed.signature, key.sign(&signed.batch).to_vec());
        back.extend(open_signed_up(&signed).unwrap().ops);
    }
    assert_eq!(back, ops);
    let json = to_json(&decode(&batches[0].bytes).unwrap());
    assert_eq!(json["type"], "signed_up");
    let mut broken = SignedUp {
        store: key.store().clone(),
        batch: vec![1, 2, 3],
        signature: vec![],
    };
    assert!(open_signed_up(&broken).is_err());
    broken.batch = postcard::to_allocvec(&UpBatch {
        store: key.store().clone(),
        ops: vec![],
    })
    .unwrap();
    broken.batch.push(9);
    assert_eq!(open_signed_up(&broken), Err(WireError::Trailing(1)));
}

#[test]
fn an_unknown_version_is_refused_by_number() {
    let mut bytes = encode(&Message::Status(Status {
        online: true,
        version: "0.1.0".into(),
        outbox: 0,
        at_ms: 5,
    }))
    .unwrap();
    bytes[0] = 9;
    assert_eq!(decode(&bytes), Err(WireError::UnknownVersion(9)));
}

#[test]
fn oversized_empty_and_trailing_payloads_are_refused() {
    assert_eq!(decode(&[]), Err(WireError::Empty));
    let big = vec![1u8; PAYLOAD_BYTES_MAX + 1];
    assert!(matches!(decode(&big), Err(WireError::Oversized { .. })));
    let mut bytes = encode(&Message::Down(DownBatch {
        first_idx: 1,
        ops: vec![],
    }))
    .unwrap();
    bytes.push(0);
    assert_eq!(decode(&bytes), Err(WireError::Trailing(1)));
}

#[test]
fn the_encoder_splits_by_count_and_numbers_down_batches() {
    let ops: Vec<Op> = (1..=25).map(|s| cart_op(s, 1)).collect();
    let batches = encode_down(100, &ops, 10).unwrap();
    assert_eq!(
        batches.iter().map(|b| b.ops).collect::<Vec<_>>(),
        vec![10, 10, 5]
    );
    let Message::Down(third) = decode(&batches[2].bytes).unwrap() else {
        panic!("not a down batch")
    };
    assert_eq!(third.first_idx, 120);
    assert_eq!(third.ops, ops[20..].to_vec());
}

#[test]
fn the_encoder_splits_by_size() {
    let ops: Vec<Op> = (1..=BATCH_OPS_MAX as u64)
        .map(|seq| Op {
            payload: Payload::CustomerUpdate {
                customer: CustomerId::parse("c-1").unwrap(),
                patch: crate::domain::op::ProfilePatch {
                    name: Some("n".repeat(200)),
                    ..Default::default()
                },
            },
            ..cart_op(seq, 1)
        })
        .collect();
    let store = StoreId::parse("norte").unwrap();
    let one = postcard::to_allocvec(&ops[0]).unwrap().len();
    let batches = encode_up(&store, &ops, BATCH_OPS_MAX).unwrap();
    assert!(one * ops.len() > PAYLOAD_BYTES_MAX);
    assert!(batches.len() >= 2);
    let total: usize = batches.iter().map(|b| b.ops).sum();
    assert_eq!(total, ops.len());
    assert!(batches.iter().all(|b| b.bytes.len() <= PAYLOAD_BYTES_MAX));
}

#[test]
fn json_names_the_type_and_version() {
    let json = to_json(&Message::Ack(Ack {
        from: ActorId::hq(),
        vv: BTreeMap::from([(ActorId::hq(), 4)]),
        down_idx: 0,
        resend: false,
        reply: false,
    }));
    assert_eq!(json["type"], "ack");
    assert_eq!(json["version"], 1);
    assert_eq!(json["vv"]["hq"], 4);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn random_bodies_after_a_valid_version_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut payload = vec![WIRE_VERSION];
        payload.extend(bytes);
        let _ = decode(&payload);
    }

    #[test]
    fn batches_round_trip(seqs in 1u64..60, qty in 1u32..100, first in 1u64..1_000) {
        let ops: Vec<Op> = (1..=seqs).map(|s| cart_op(s, qty)).collect();
        let batches = encode_down(first, &ops, 7).unwrap();
        let mut back = Vec::new();
        for b in &batches {
            let Message::Down(d) = decode(&b.bytes).unwrap() else { panic!("kind") };
            prop_assert_eq!(d.first_idx, first + back.len() as u64);
            back.extend(d.ops);
        }
        prop_assert_eq!(back, ops);
    }
}
