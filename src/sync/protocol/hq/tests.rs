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

/// HQ's own catalog op, SKU-1, issued on `r`.
fn catalog_put(r: &mut Replica) -> Op {
    let put = Payload::CatalogPut {
        sku: Sku::parse("SKU-1").unwrap(),
        ean: crate::domain::Ean13::parse("4006381333931").unwrap(),
        name: "Tea".into(),
        price_cents: 250,
        vat_bp: 1000,
    };
    r.prepare(1, put).unwrap().0
}

fn drain(p: &mut HqProtocol, r: &Replica) -> Vec<HqAction> {
    std::iter::from_fn(|| p.poll(5, r)).take(100).collect()
}

/// The stores and ops of each `Ingest` among `actions` (their routing aside).
fn ingests(actions: &[HqAction]) -> Vec<(Vec<StoreId>, Vec<Op>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            HqAction::Ingest { stores, ops, .. } => Some((stores.clone(), ops.clone())),
            _ => None,
        })
        .collect()
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

/// A round of N stores costs one commit: their waiting up-batches go out as one `Ingest`
/// (each store's ops in its seq order), and every one of them is acked once it is reported.
#[test]
fn up_batches_of_several_stores_waiting_together_are_ingested_as_one_and_each_store_acked() {
    let mut p = proto();
    let mut r = Replica::new(ActorId::hq());
    p.handle_link(true);
    drain(&mut p, &r);
    let (norte, sur) = (store("norte"), store("sur"));
    let (n_ops, s_ops) = (receipts(&norte, 3), receipts(&sur, 2));
    let n_up = encode_up(&norte, &n_ops, 500).unwrap();
    let s_up = encode_up(&sur, &s_ops, 500).unwrap();
    p.handle_message(1, &up_topic(&sur), &s_up[0].bytes);
    p.handle_message(1, &up_topic(&norte), &n_up[0].bytes);
    let actions = drain(&mut p, &r);
    let expected: Vec<Op> = n_ops.iter().chain(&s_ops).cloned().collect();
    assert_eq!(actions.len(), 1);
    assert_eq!(
        ingests(&actions),
        vec![(vec![norte.clone(), sur.clone()], expected.clone())]
    );
    // Nothing more is issued while it is out: a store's next batch waits for the next round.
    p.handle_message(2, &up_topic(&norte), &n_up[0].bytes);
    assert!(drain(&mut p, &r).is_empty());
    for op in &expected {
        r.apply(op).unwrap();
    }
    p.handle_ingested(3, Some(&[]), Some(BTreeMap::new()));
    let acked = acks(drain(&mut p, &r));
    let seqs: BTreeMap<ActorId, u64> = acked.iter().flat_map(|a| a.vv.clone()).collect();
    assert_eq!(acked.len(), 2, "one ack per store");
    assert_eq!(seqs.get(&norte.actor()), Some(&3));
    assert_eq!(seqs.get(&sur.actor()), Some(&2));
}

/// One round's `Ingest` is bounded: a store whose batches would take it past
/// `INGEST_OPS_MAX` waits for the next round (the first store always goes).
#[test]
fn an_ingest_round_stops_at_its_op_bound_and_the_rest_go_in_the_next() {
    let mut p = proto();
    let mut r = Replica::new(ActorId::hq());
    p.handle_link(true);
    drain(&mut p, &r);
    let (norte, sur) = (store("norte"), store("sur"));
    let n_ops = receipts(&norte, INGEST_OPS_MAX as u32);
    let s_ops = receipts(&sur, 1);
    for up in encode_up(&norte, &n_ops, 500).unwrap() {
        p.handle_message(1, &up_topic(&norte), &up.bytes);
    }
    p.handle_message(
        1,
        &up_topic(&sur),
        &encode_up(&sur, &s_ops, 500).unwrap()[0].bytes,
    );
    let first = drain(&mut p, &r);
    assert_eq!(first.len(), 1);
    assert_eq!(ingests(&first), vec![(vec![norte.clone()], n_ops.clone())]);
    for op in &n_ops {
        r.apply(op).unwrap();
    }
    p.handle_ingested(2, Some(&[]), Some(BTreeMap::new()));
    let second = drain(&mut p, &r);
    assert_eq!(ingests(&second), vec![(vec![sur.clone()], s_ops.clone())]);
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
    assert_eq!(actions.len(), 1);
    assert_eq!(ingests(&actions), vec![(vec![norte.clone()], ops.clone())]);
    for op in &ops {
        r.apply(op).unwrap();
    }
    p.handle_ingested(2_001, Some(&[]), Some(BTreeMap::new()));
    let acked = acks(drain(&mut p, &r));
    assert_eq!(acked.len(), 1);
    assert!(!acked[0].resend);
    assert_eq!(acked[0].vv.get(&norte.actor()), Some(&4));
}

#[test]
fn routed_ops_stream_to_a_synced_store_and_are_resent_after_silence() {
    let mut p = proto();
    let mut r = Replica::new(ActorId::hq());
    let put = catalog_put(&mut r);
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

fn ack_topic(s: &StoreId) -> String {
    Topics::new("acme").unwrap().topic(s, TopicKind::Ack)
}

fn store_ack(s: &StoreId, down_idx: u64, epoch: Option<u64>) -> Vec<u8> {
    let ack = Ack {
        from: s.actor(),
        vv: BTreeMap::from([(ActorId::hq(), 5)]),
        down_idx,
        resend: true,
        reply: false,
    };
    let msg = match epoch {
        None => Message::Ack(ack),
        Some(epoch) => Message::EpochAck(wire::EpochAck { epoch, ack }),
    };
    wire::encode(&msg).unwrap()
}

#[test]
fn a_leasing_process_serves_only_its_stores_and_streams_from_where_the_store_stands() {
    let (norte, sur) = (store("norte"), store("sur"));
    let mut cfg = HqSyncConfig::new("acme", vec![norte.clone(), sur.clone()], "localhost", 1883);
    cfg.leases = Some(crate::sync::protocol::config::LeaseSettings {
        url: "postgres://hq@localhost/hq".to_string(),
        holder: "hq-1".to_string(),
    });
    let loaded = HqLoaded {
        downlog_last: BTreeMap::from([(norte.clone(), 10), (sur.clone(), 10)]),
        ..HqLoaded::default()
    };
    let mut p = HqProtocol::new(cfg, loaded, Arc::new(SyncMetrics::new()), 0).unwrap();
    let r = Replica::new(ActorId::hq());
    p.handle_link(true);
    let before = drain(&mut p, &r);
    assert!(before.is_empty(), "no store served yet: {before:?}");
    let up = encode_up(&norte, &receipts(&norte, 2), 500).unwrap();
    p.handle_message(1, &up_topic(&norte), &up[0].bytes);
    assert!(
        drain(&mut p, &r).is_empty(),
        "not ours: left for the holder"
    );

    p.handle_leases(2, &BTreeMap::from([(norte.clone(), 3)]));
    let taken = drain(&mut p, &r);
    assert_eq!(taken[0], HqAction::AnswerReturns);
    let hello = acks(taken);
    assert_eq!(hello.len(), 1, "a hello to the store taken, none to sur");
    assert!(hello[0].resend && hello[0].reply);

    // The store answers in the old holder's numbering: its vv decides where we start.
    p.handle_message(3, &ack_topic(&norte), &store_ack(&norte, 7, Some(2)));
    let find = drain(&mut p, &r);
    assert_eq!(
        find,
        vec![HqAction::FindDownStart {
            store: norte.clone(),
            epoch: 3,
            vv: BTreeMap::from([(ActorId::hq(), 5)]),
        }]
    );
    p.handle_down_start(4, &norte, 3, Some(6));
    let read = drain(&mut p, &r);
    assert!(
        matches!(&read[..], [HqAction::ReadDown { after: 6, .. }]),
        "{read:?}"
    );
    let ops = receipts(&norte, 4);
    p.handle_down(&norte, 6, ops.clone());
    let sent: Vec<_> = drain(&mut p, &r)
        .into_iter()
        .filter_map(|a| match a {
            HqAction::Publish(pb) => wire::decode(&pb.payload).ok(),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        vec![Message::EpochDown(wire::EpochDownBatch {
            epoch: 3,
            first_idx: 1,
            ops
        })]
    );
    p.handle_message(5, &ack_topic(&norte), &store_ack(&norte, 2, Some(3)));
    drain(&mut p, &r);
    let link = p.links().into_iter().find(|l| l.store == norte).unwrap();
    assert_eq!(
        link.down_acked, 8,
        "entry 2 of epoch 3 is down-log entry 6 + 2"
    );

    // Up-batches of the store served are ingested; once the lease is gone, no longer.
    p.handle_message(6, &up_topic(&norte), &up[0].bytes);
    assert!(drain(&mut p, &r)
        .iter()
        .any(|a| matches!(a, HqAction::Ingest { .. })));
    p.handle_ingested(7, None, None);
    assert_eq!(
        drain(&mut p, &r),
        vec![HqAction::Reload],
        "the routing the failed ingest carried was not written: the router reloads"
    );
    p.handle_loaded(HqLoaded::default());
    drain(&mut p, &r);
    p.handle_leases(8, &BTreeMap::new());
    p.handle_message(9, &up_topic(&norte), &up[0].bytes);
    assert!(drain(&mut p, &r).is_empty());
}

/// HQ routed a store's `SalePriced`, then restarted before routing its sale (the two were
/// split across routing steps). The router's pairing is memory, so the first read after the
/// start reads the last routed op again: the sale still takes its pricing to the store that
/// follows its customer, and nothing is routed twice.
#[test]
fn a_sale_routed_after_a_restart_still_takes_its_pricing_to_the_stores_following_its_customer() {
    use crate::domain::op::Tender;
    use crate::domain::till::SalePricing;
    use crate::domain::{CustomerId, Hlc, SaleId};
    use crate::sync::route::RouteAction;
    use std::collections::BTreeSet;
    let (norte, sur) = (store("norte"), store("sur"));
    let customer = CustomerId::parse("C-1").unwrap();
    let sale_id = SaleId::parse("S-1").unwrap();
    let priced = Op {
        actor: norte.actor(),
        seq: 1,
        hlc: Hlc::new(1, 0),
        payload: Payload::SalePriced {
            store: norte.clone(),
            sale_id: sale_id.clone(),
            pricing: SalePricing::default(),
        },
    };
    let sale = Op {
        seq: 2,
        hlc: Hlc::new(2, 0),
        payload: Payload::Sale {
            store: norte.clone(),
            sale_id,
            lines: vec![],
            tender: Tender::Card,
            customer: Some(customer.clone()),
        },
        ..priced.clone()
    };
    let mut r = Replica::new(ActorId::hq());
    r.apply(&priced).unwrap();
    r.apply(&sale).unwrap();
    let loaded = HqLoaded {
        routed: BTreeMap::from([(norte.actor(), 1)]),
        scope: BTreeSet::from([(sur.clone(), customer)]),
        ..HqLoaded::default()
    };
    let cfg = HqSyncConfig::new("acme", vec![norte.clone(), sur.clone()], "localhost", 1883);
    let mut p = HqProtocol::new(cfg, loaded, Arc::new(SyncMetrics::new()), 0).unwrap();
    let reads = drain(&mut p, &r)
        .into_iter()
        .find_map(|a| match a {
            HqAction::ReadToRoute(reads) => Some(reads),
            _ => None,
        })
        .expect("a routing read");
    assert_eq!(reads.len(), 1);
    assert!(reads[0].prime, "the first read after a start primes");
    assert_eq!((reads[0].since(), reads[0].upto), (0, 2));
    let got = vec![(reads[0].clone(), vec![priced.clone(), sale.clone()])];
    p.handle_route_reads(got);
    let Some(HqAction::Route { actions, cursors }) = p.poll(5, &r) else {
        panic!("no routing write");
    };
    let appended = |op: &Op| {
        actions
            .iter()
            .filter(|a| matches!(a, RouteAction::Append { store, op: o } if *store == sur && *o == op.id()))
            .count()
    };
    assert_eq!(appended(&priced), 1, "the pricing goes with its sale, once");
    assert_eq!(appended(&sale), 1);
    assert_eq!(cursors, vec![(norte.actor(), 2)]);
    p.handle_routed(Some(BTreeMap::from([(sur.clone(), 2)])));
    let more = Op {
        seq: 3,
        hlc: Hlc::new(3, 0),
        ..priced.clone()
    };
    r.apply(&more).unwrap();
    p.handle_committed();
    let again = drain(&mut p, &r).into_iter().find_map(|a| match a {
        HqAction::ReadToRoute(reads) => Some(reads),
        _ => None,
    });
    assert!(
        again.is_some_and(|reads| reads.iter().all(|rd| !rd.prime && rd.since() == 2)),
        "primed once per start"
    );
}

#[test]
fn a_leasing_process_looks_at_requests_for_rights_back_again_without_an_event() {
    let norte = store("norte");
    let mut cfg = HqSyncConfig::new("acme", vec![norte.clone()], "localhost", 1883);
    cfg.leases = Some(crate::sync::protocol::config::LeaseSettings {
        url: "postgres://hq@localhost/hq".to_string(),
        holder: "hq-1".to_string(),
    });
    let mut p = HqProtocol::new(cfg, HqLoaded::default(), Arc::new(SyncMetrics::new()), 0).unwrap();
    let r = Replica::new(ActorId::hq());
    let rescans = |p: &mut HqProtocol| {
        drain(p, &r)
            .into_iter()
            .filter(|a| *a == HqAction::AnswerReturns)
            .count()
    };
    p.handle_tick(super::RETURNS_RESCAN_MS - 1);
    assert_eq!(rescans(&mut p), 0, "not due yet");
    // A request a dead holder ingested may reach this file after the lease was taken.
    p.handle_tick(super::RETURNS_RESCAN_MS);
    assert_eq!(rescans(&mut p), 1);
    // One queued pass answers everything: a take and a tick at once queue one.
    p.handle_leases(super::RETURNS_RESCAN_MS + 1, &BTreeMap::from([(norte, 1)]));
    p.handle_tick(2 * super::RETURNS_RESCAN_MS);
    assert_eq!(rescans(&mut p), 1);
}

#[test]
fn a_route_read_short_of_ops_not_committed_yet_waits_for_their_commit_instead_of_reading_again() {
    let mut p = proto();
    let mut r = Replica::new(ActorId::hq());
    let put = |r: &mut Replica, sku: &str| {
        let payload = Payload::CatalogPut {
            sku: Sku::parse(sku).unwrap(),
            ean: crate::domain::Ean13::parse("4006381333931").unwrap(),
            name: "Tea".into(),
            price_cents: 250,
            vat_bp: 1000,
        };
        r.prepare(1, payload).unwrap().0
    };
    let first = put(&mut r, "SKU-1");
    let _in_the_writer = put(&mut r, "SKU-2");
    let route_reads = |actions: Vec<HqAction>| -> Vec<Vec<RouteRead>> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                HqAction::ReadToRoute(reads) => Some(reads),
                _ => None,
            })
            .collect()
    };
    let reads = route_reads(drain(&mut p, &r));
    assert_eq!(reads.len(), 1);
    assert_eq!((reads[0][0].after, reads[0][0].upto), (0, 2));
    // The reader sees only the committed op 1.
    let answered = reads[0].iter().map(|rd| (rd.clone(), vec![first.clone()]));
    p.handle_route_reads(answered.collect());
    let Some(HqAction::Route { cursors, .. }) = p.poll(5, &r) else {
        panic!("no routing write for op 1");
    };
    assert_eq!(cursors, vec![(ActorId::hq(), 1)]);
    p.handle_routed(Some(BTreeMap::from([(store("norte"), 1)])));
    assert!(
        route_reads(drain(&mut p, &r)).is_empty(),
        "op 2 is not committed: no read until it is"
    );
    p.handle_committed();
    let reads = route_reads(drain(&mut p, &r));
    assert_eq!(reads.len(), 1, "its commit calls for routing");
    assert_eq!((reads[0][0].after, reads[0][0].upto), (1, 2));
}

/// `n` receipts authored by `author` for `at`'s stock: ops HQ routes to `at`. (The domain
/// would refuse them; the protocol only routes them, and the tests advance HQ's version with
/// `receipts(author, n)`, same ids, through `held`.)
fn receipts_for(author: &StoreId, at: &StoreId, n: u32) -> Vec<Op> {
    receipts(author, n)
        .into_iter()
        .map(|mut op| {
            if let Payload::StockReceive { store, .. } = &mut op.payload {
                *store = at.clone();
            }
            op
        })
        .collect()
}

/// HQ's replica holding `author`'s ops through `seq`.
fn held(r: &mut Replica, author: &StoreId, seq: u32) {
    for op in receipts(author, seq) {
        let _ = r.apply(&op);
    }
}

/// Routing caught up with norte, so norte's next up-batch is routed from the batch itself:
/// its down-log entries travel with the ingest (one commit), and nothing is read back.
#[test]
fn an_up_batch_of_an_actor_routing_caught_up_with_is_routed_in_its_ingest() {
    let mut p = proto();
    let mut r = Replica::new(ActorId::hq());
    p.handle_link(true);
    drain(&mut p, &r);
    let (norte, sur) = (store("norte"), store("sur"));
    let ops = receipts_for(&norte, &sur, 2);
    p.handle_message(
        1,
        &up_topic(&norte),
        &encode_up(&norte, &ops, 500).unwrap()[0].bytes,
    );
    let Some(HqAction::Ingest {
        route: Some(route), ..
    }) = p.poll(2, &r)
    else {
        panic!("no ingest carrying its routing");
    };
    let to_sur = |op: &Op| RouteAction::Append {
        store: sur.clone(),
        op: op.id(),
    };
    assert_eq!(route.actions, vec![to_sur(&ops[0]), to_sur(&ops[1])]);
    assert_eq!(route.cursors, vec![(norte.actor(), 2)]);
    held(&mut r, &norte, 2);
    p.handle_ingested(3, Some(&[]), Some(BTreeMap::from([(sur.clone(), 2)])));
    let after = drain(&mut p, &r);
    assert!(
        after
            .iter()
            .all(|a| !matches!(a, HqAction::ReadToRoute(_) | HqAction::Route { .. })),
        "routed already: {after:?}"
    );
    // The next batch goes the same way, from where the first left off.
    let more = receipts_for(&norte, &sur, 3);
    p.handle_message(
        4,
        &up_topic(&norte),
        &encode_up(&norte, &more[2..], 500).unwrap()[0].bytes,
    );
    let Some(HqAction::Ingest {
        route: Some(route), ..
    }) = p.poll(5, &r)
    else {
        panic!("no ingest carrying its routing");
    };
    assert_eq!(route.actions, vec![to_sur(&more[2])]);
    assert_eq!(route.cursors, vec![(norte.actor(), 3)]);
}

/// While a routing read is out, an ingest carries no routing (the read path keeps each
/// actor's order); and when an ingest's routing was not written, the router reloads.
#[test]
fn an_ingest_carries_no_routing_while_routing_is_out_and_a_routing_not_written_reloads() {
    let mut p = proto();
    let mut r = Replica::new(ActorId::hq());
    p.handle_link(true);
    drain(&mut p, &r);
    let (norte, sur) = (store("norte"), store("sur"));
    let own = catalog_put(&mut r);
    p.handle_committed();
    assert!(matches!(p.poll(2, &r), Some(HqAction::ReadToRoute(_))));
    let ops = receipts_for(&norte, &sur, 1);
    p.handle_message(
        3,
        &up_topic(&norte),
        &encode_up(&norte, &ops, 500).unwrap()[0].bytes,
    );
    assert_eq!(
        p.poll(4, &r),
        Some(HqAction::Ingest {
            stores: vec![norte.clone()],
            ops: ops.clone(),
            route: None
        })
    );
    held(&mut r, &norte, 1);
    p.handle_ingested(5, Some(&[]), None);
    p.handle_route_reads(vec![(
        RouteRead {
            actor: ActorId::hq(),
            after: 0,
            upto: 1,
            prime: false,
        },
        vec![own],
    )]);
    assert!(matches!(p.poll(6, &r), Some(HqAction::Route { .. })));
    p.handle_routed(Some(BTreeMap::from([(norte.clone(), 1), (sur.clone(), 1)])));
    // norte's op is routed by reading it back, as before.
    let Some(HqAction::ReadToRoute(reads)) = p.poll(7, &r) else {
        panic!("norte's op is not read back for routing");
    };
    assert_eq!(reads.len(), 1);
    assert_eq!((reads[0].actor.clone(), reads[0].upto), (norte.actor(), 1));
    p.handle_route_reads(vec![(reads[0].clone(), ops.clone())]);
    assert!(matches!(p.poll(8, &r), Some(HqAction::Route { .. })));
    p.handle_routed(Some(BTreeMap::from([(sur.clone(), 2)])));
    drain(&mut p, &r);

    // Caught up now: the next batch carries its routing; reported not written, it reloads.
    let next = receipts_for(&norte, &sur, 2);
    p.handle_message(
        9,
        &up_topic(&norte),
        &encode_up(&norte, &next[1..], 500).unwrap()[0].bytes,
    );
    let Some(HqAction::Ingest { route: Some(_), .. }) = p.poll(10, &r) else {
        panic!("no ingest carrying its routing");
    };
    held(&mut r, &norte, 2);
    p.handle_ingested(11, Some(&[]), None);
    assert!(drain(&mut p, &r).contains(&HqAction::Reload));
}
