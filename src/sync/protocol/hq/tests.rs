use super::*;
use crate::domain::{Payload, Sku};
use crate::sync::wire::{encode_up, UpBatch};

fn store(x: &str) -> StoreId {
    StoreId::parse(x).unwrap()
}

fn proto() -> HqProtocol {
    let cfg = HqSyncConfig::new(
        "acme",
        vec![store("norte"), store("sur")],
        "localhost",
        1883,
    );
    let mut p = HqProtocol::new(cfg, HqLoaded::default(), Arc::new(SyncMetrics::new()), 0).unwrap();
    assert_eq!(
        p.poll(0, &Replica::new(ActorId::hq())),
        Some(HqAction::AnswerReturns)
    );
    p
}

/// `n` stock receipts authored by `author`, as a store's outbox would hold them.
fn receipts(author: &StoreId, n: u32) -> Vec<Op> {
    let mut r = Replica::new(author.actor());
    (1..=n)
        .map(|i| {
            let op = Op {
                actor: author.actor(),
                seq: u64::from(i),
                hlc: crate::domain::Hlc::new(u64::from(i), 0),
                payload: Payload::StockReceive {
                    store: author.clone(),
                    sku: Sku::parse("SKU-1").unwrap(),
                    qty: i,
                    reason: crate::domain::op::ReceiveReason::Delivery,
                },
            };
            let _ = r.apply(&op);
            op
        })
        .collect()
}

fn up_topic(s: &StoreId) -> String {
    Topics::new("acme").unwrap().topic(s, TopicKind::Up)
}

fn drain(p: &mut HqProtocol, r: &Replica) -> Vec<HqAction> {
    std::iter::from_fn(|| p.poll(5, r)).take(100).collect()
}

#[test]
fn a_batch_naming_another_store_or_carrying_its_ops_is_refused_before_anything_is_applied() {
    let mut p = proto();
    let r = Replica::new(ActorId::hq());
    p.handle_link(true);
    let theirs = encode_up(&store("sur"), &receipts(&store("sur"), 2), 500).unwrap();
    p.handle_message(1, &up_topic(&store("norte")), &theirs[0].bytes);
    let mixed = Message::Up(UpBatch {
        store: store("norte"),
        ops: receipts(&store("sur"), 1),
    });
    p.handle_message(
        2,
        &up_topic(&store("norte")),
        &wire::encode(&mixed).unwrap(),
    );
    let unknown = encode_up(&store("este"), &receipts(&store("este"), 1), 500).unwrap();
    p.handle_message(3, &up_topic(&store("este")), &unknown[0].bytes);
    assert!(drain(&mut p, &r)
        .iter()
        .all(|a| !matches!(a, HqAction::Ingest { .. })));
    assert_eq!(p.metrics.rejected("wrong_store"), 1);
    assert_eq!(p.metrics.rejected("wrong_actor"), 1);
    assert_eq!(p.metrics.rejected("unknown_store"), 1);
}

fn acks(actions: Vec<HqAction>) -> Vec<Ack> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            HqAction::Publish(p) => match wire::decode(&p.payload) {
                Ok(Message::Ack(ack)) => Some(ack),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_store_is_acked_only_after_its_ingest_is_reported_and_ops_after_a_hole_wait_for_a_resend() {
    let mut p = proto();
    let mut r = Replica::new(ActorId::hq());
    p.handle_link(true);
    drain(&mut p, &r);
    let norte = store("norte");
    let ops = receipts(&norte, 4);
    // Ops 3 and 4 overtook 1 and 2: nothing is applied, and norte is asked to resend.
    let late = encode_up(&norte, &ops[2..], 500).unwrap();
    p.handle_message(1, &up_topic(&norte), &late[0].bytes);
    let acks_now = acks(drain(&mut p, &r));
    assert_eq!(acks_now.len(), 1);
    assert!(acks_now[0].resend);
    assert_eq!(acks_now[0].vv.get(&norte.actor()), Some(&0));
    // The resend: 1..4 in one batch after a second copy of 3..4; all four, in order.
    let all = encode_up(&norte, &ops, 500).unwrap();
    p.handle_message(2_000, &up_topic(&norte), &late[0].bytes);
    p.handle_message(2_000, &up_topic(&norte), &all[0].bytes);
    let actions = drain(&mut p, &r);
    assert_eq!(
        actions,
        vec![HqAction::Ingest {
            store: norte.clone(),
            ops: ops.clone()
        }]
    );
    for op in &ops {
        r.apply(op).unwrap();
    }
    p.handle_ingested(2_001, Some(&[]));
    let acked = acks(drain(&mut p, &r));
    assert_eq!(acked.len(), 1);
    assert!(!acked[0].resend);
    assert_eq!(acked[0].vv.get(&norte.actor()), Some(&4));
}

#[test]
fn routed_ops_stream_to_a_synced_store_and_are_resent_after_silence() {
    let mut p = proto();
    let mut r = Replica::new(ActorId::hq());
    let (put, _) = r
        .prepare(
            1,
            Payload::CatalogPut {
                sku: Sku::parse("SKU-1").unwrap(),
                ean: crate::domain::Ean13::parse("4006381333931").unwrap(),
                name: "Tea".into(),
                price_cents: 250,
                vat_bp: 1000,
            },
        )
        .unwrap();
    p.handle_link(true);
    let reads = match drain(&mut p, &r).into_iter().find_map(|a| match a {
        HqAction::ReadToRoute(reads) => Some(reads),
        _ => None,
    }) {
        Some(reads) => reads,
        None => panic!("nothing to route"),
    };
    p.handle_route_reads(
        reads
            .into_iter()
            .map(|rd| (rd, vec![put.clone()]))
            .collect(),
    );
    let Some(HqAction::Route { actions, cursors }) = p.poll(5, &r) else {
        panic!("no routing write");
    };
    assert_eq!(actions.len(), 2, "the catalog goes to both stores");
    assert_eq!(cursors, vec![(ActorId::hq(), 1)]);
    p.handle_routed(Some(BTreeMap::from([
        (store("norte"), 1),
        (store("sur"), 1),
    ])));
    assert!(
        drain(&mut p, &r)
            .iter()
            .all(|a| !matches!(a, HqAction::ReadDown { .. })),
        "norte has not said hello"
    );
    let hello = Message::Ack(Ack {
        from: store("norte").actor(),
        vv: BTreeMap::new(),
        down_idx: 0,
        resend: true,
        reply: true,
    });
    let topic = Topics::new("acme")
        .unwrap()
        .topic(&store("norte"), TopicKind::Ack);
    p.handle_message(10, &topic, &wire::encode(&hello).unwrap());
    let actions = drain(&mut p, &r);
    assert!(actions.contains(&HqAction::ReadDown {
        store: store("norte"),
        after: 0,
        limit: 500
    }));
    p.handle_down(&store("norte"), 0, vec![put.clone()]);
    assert!(matches!(
        p.poll(5, &r),
        Some(HqAction::Publish(Publish {
            carries: Carries::Ops {
                after: 0,
                ops: 1,
                ..
            },
            ..
        }))
    ));
    p.handle_tick(3_011);
    assert!(drain(&mut p, &r).contains(&HqAction::ReadDown {
        store: store("norte"),
        after: 0,
        limit: 500
    }));
    assert_eq!(p.links()[0].down_pending, 1);
}
