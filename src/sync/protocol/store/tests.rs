//! Tests of the store's sync protocol, without I/O: outbox, acks, down-log cursor and lease
//! epochs, lookups. Over 500 lines on purpose: one flat list of message/action cases sharing
//! the `proto` and `drain` helpers.

use super::*;
use crate::domain::{Ean13, Payload};

fn store() -> StoreId {
    StoreId::parse("norte").unwrap()
}

fn proto() -> StoreProtocol {
    let cfg = StoreSyncConfig::new("acme", store(), "localhost", 1883);
    StoreProtocol::new(
        cfg,
        StoreCursors::default(),
        Arc::new(SyncMetrics::new()),
        0,
    )
    .unwrap()
}

/// HQ's catalog ops, as a down-log would carry them.
fn hq_ops(n: u64) -> Vec<Op> {
    let mut hq = Replica::new(ActorId::hq());
    (0..n)
        .map(|i| {
            let (op, _) = hq
                .prepare(
                    i,
                    Payload::CatalogPut {
                        sku: Sku::parse(&format!("SKU-{i}")).unwrap(),
                        ean: Ean13::parse("4006381333931").unwrap(),
                        name: "Tea".into(),
                        price_cents: 250,
                        vat_bp: 1000,
                    },
                )
                .unwrap();
            op
        })
        .collect()
}

fn down(first_idx: u64, ops: &[Op]) -> (String, Vec<u8>) {
    let topic = Topics::new("acme")
        .unwrap()
        .topic(&store(), TopicKind::Down);
    let bytes = wire::encode(&Message::Down(DownBatch {
        first_idx,
        ops: ops.to_vec(),
    }))
    .unwrap();
    (topic, bytes)
}

/// Every action due now, as `handle_*` left them.
fn drain(p: &mut StoreProtocol, now: u64, r: &Replica) -> Vec<StoreAction> {
    std::iter::from_fn(|| p.poll(now, r)).take(100).collect()
}

fn acks(actions: &[StoreAction]) -> Vec<Ack> {
    actions
        .iter()
        .filter_map(|a| match a {
            StoreAction::Publish(p) => match wire::decode(&p.payload) {
                Ok(Message::Ack(ack)) => Some(ack),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_connection_starts_with_status_and_a_hello_ack() {
    let mut p = proto();
    let r = Replica::new(store().actor());
    assert!(drain(&mut p, 1, &r).is_empty(), "offline: nothing to say");
    p.handle_link(1, true);
    let actions = drain(&mut p, 1, &r);
    assert!(matches!(
        &actions[0],
        StoreAction::Publish(Publish {
            carries: Carries::Status,
            retain: true,
            ..
        })
    ));
    let hello = acks(&actions);
    assert_eq!(hello.len(), 1);
    assert!(hello[0].resend && hello[0].reply);
}

#[test]
fn a_down_batch_is_acked_only_after_its_ingest_is_reported() {
    let mut p = proto();
    let mut r = Replica::new(store().actor());
    p.handle_link(1, true);
    drain(&mut p, 1, &r);
    let ops = hq_ops(3);
    let (topic, bytes) = down(1, &ops);
    p.handle_message(2, &topic, &bytes);
    let actions = drain(&mut p, 2, &r);
    assert_eq!(
        actions,
        vec![StoreAction::Ingest {
            first_idx: 1,
            ops: ops.clone()
        }]
    );
    assert!(drain(&mut p, 3, &r).is_empty(), "no ack before the commit");
    for op in &ops {
        r.apply(op).unwrap();
    }
    p.handle_ingested(Some(&[]));
    let actions = drain(&mut p, 4, &r);
    assert!(actions.contains(&StoreAction::Persist {
        key: KEY_DOWN_IDX,
        value: 3
    }));
    assert_eq!(acks(&actions)[0].down_idx, 3);
    assert_eq!(p.cursors().down_idx, 3);
}

#[test]
fn a_failed_ingest_is_never_acked_and_is_taken_again_when_resent() {
    let mut p = proto();
    let r = Replica::new(store().actor());
    p.handle_link(1, true);
    drain(&mut p, 1, &r);
    let ops = hq_ops(2);
    let (topic, bytes) = down(1, &ops);
    p.handle_message(2, &topic, &bytes);
    drain(&mut p, 2, &r);
    p.handle_ingested(None);
    assert!(acks(&drain(&mut p, 3, &r)).is_empty());
    assert_eq!(p.cursors().down_idx, 0);
    p.handle_message(4, &topic, &bytes);
    assert!(matches!(
        drain(&mut p, 4, &r)[..],
        [StoreAction::Ingest { first_idx: 1, .. }]
    ));
}

#[test]
fn consecutive_down_batches_become_one_ingest_and_a_gap_asks_for_a_resend_once() {
    let mut p = proto();
    let r = Replica::new(store().actor());
    p.handle_link(1, true);
    drain(&mut p, 1, &r);
    let ops = hq_ops(6);
    for (first, chunk) in [(1, &ops[0..2]), (3, &ops[2..4])] {
        let (topic, bytes) = down(first, chunk);
        p.handle_message(2, &topic, &bytes);
    }
    let actions = drain(&mut p, 2, &r);
    assert_eq!(
        actions,
        vec![StoreAction::Ingest {
            first_idx: 1,
            ops: ops[0..4].to_vec()
        }]
    );
    p.handle_ingested(Some(&[]));
    drain(&mut p, 2, &r);
    let (topic, bytes) = down(6, &ops[5..6]);
    p.handle_message(10, &topic, &bytes);
    let first = acks(&drain(&mut p, 10, &r));
    assert!(first.len() == 1 && first[0].resend, "{first:?}");
    p.handle_message(20, &topic, &bytes);
    assert!(acks(&drain(&mut p, 20, &r)).is_empty(), "throttled");
}

#[test]
fn own_ops_are_published_until_acked_and_a_deferred_batch_goes_again_after_the_tick() {
    let mut p = proto();
    let mut r = Replica::new(store().actor());
    for op in hq_ops(1) {
        r.apply(&op).unwrap();
    }
    let mut own = Vec::new();
    for i in 0..3 {
        let (op, _) = r
            .prepare(
                i,
                Payload::StockReceive {
                    store: store(),
                    sku: Sku::parse("SKU-0").unwrap(),
                    qty: 1,
                    reason: crate::domain::op::ReceiveReason::Delivery,
                },
            )
            .unwrap();
        own.push(op);
    }
    p.handle_link(1, true);
    let actions = drain(&mut p, 1, &r);
    assert!(actions.contains(&StoreAction::ReadOutbox {
        after: 0,
        limit: 500
    }));
    p.handle_outbox(0, own.clone());
    let Some(StoreAction::Publish(up)) = p.poll(1, &r) else {
        panic!("no up-batch");
    };
    assert!(matches!(
        up.carries,
        Carries::Ops {
            after: 0,
            ops: 3,
            ..
        }
    ));
    p.handle_deferred(&up);
    assert!(drain(&mut p, 2, &r)
        .iter()
        .all(|a| !matches!(a, StoreAction::ReadOutbox { .. })));
    p.handle_tick(3);
    assert!(drain(&mut p, 3, &r).contains(&StoreAction::ReadOutbox {
        after: 0,
        limit: 500
    }));
    p.handle_outbox(0, own.clone());
    drain(&mut p, 3, &r);
    let ack = Ack {
        from: ActorId::hq(),
        vv: [(store().actor(), 3)].into(),
        down_idx: 0,
        resend: false,
        reply: false,
    };
    let topic = Topics::new("acme").unwrap().topic(&store(), TopicKind::Ack);
    p.handle_message(4, &topic, &wire::encode(&Message::Ack(ack)).unwrap());
    assert!(drain(&mut p, 4, &r).contains(&StoreAction::Persist {
        key: KEY_HQ_ACKED_SEQ,
        value: 3
    }));
    assert_eq!(p.link_status(&r).outbox, 0);
}

#[test]
fn a_lost_hello_is_said_again_on_a_tick_until_hq_answers_without_a_reconnect() {
    let mut p = proto();
    let r = Replica::new(store().actor());
    let retry = StoreSyncConfig::new("acme", store(), "localhost", 1883).retransmit_ms;
    p.handle_link(1, true);
    assert_eq!(acks(&drain(&mut p, 1, &r)).len(), 1, "the first hello");
    // The hello is lost: before the retry interval a tick says nothing new.
    p.handle_tick(retry);
    assert!(acks(&drain(&mut p, retry, &r)).is_empty());
    p.handle_tick(1 + retry);
    let again = acks(&drain(&mut p, 1 + retry, &r));
    assert_eq!(again.len(), 1, "the hello again, on the same connection");
    assert!(again[0].resend && again[0].reply);

    // HQ answers (its ack asks us to resend too): no more hellos.
    let topic = Topics::new("acme").unwrap().topic(&store(), TopicKind::Ack);
    let answer = wire::encode(&Message::Ack(Ack {
        from: ActorId::hq(),
        vv: Default::default(),
        down_idx: 0,
        resend: true,
        reply: false,
    }))
    .unwrap();
    p.handle_message(2 + retry, &topic, &answer);
    drain(&mut p, 2 + retry, &r);
    p.handle_tick(10 * retry);
    let later = acks(&drain(&mut p, 10 * retry, &r));
    assert!(later.iter().all(|a| !a.reply), "{later:?}");
}

#[test]
fn a_store_holding_hqs_key_takes_only_acks_and_lookup_replies_hq_signed_for_it() {
    use crate::signing::{HqKey, HqPublicKey};
    let hq = HqKey::from_secret([7; 32]);
    let forger = HqKey::from_secret([8; 32]);
    let mut cfg = StoreSyncConfig::new("acme", store(), "localhost", 1883);
    cfg.hq_public_key = Some(Arc::new(HqPublicKey::parse(&hq.public_hex()).unwrap()));
    let metrics = Arc::new(SyncMetrics::new());
    let mut p = StoreProtocol::new(cfg, StoreCursors::default(), metrics.clone(), 0).unwrap();
    let r = Replica::new(store().actor());
    p.handle_link(1, true);
    drain(&mut p, 1, &r);

    let topics = Topics::new("acme").unwrap();
    let (ack_topic, down_topic) = (
        topics.topic(&store(), TopicKind::Ack),
        topics.topic(&store(), TopicKind::Down),
    );
    let answer = Message::Ack(Ack {
        from: ActorId::hq(),
        vv: Default::default(),
        down_idx: 0,
        resend: false,
        reply: true,
    });
    let reply = Message::LookupReply(LookupReply {
        id: 1,
        customers: Vec::new(),
    });
    let other = StoreId::parse("sur").unwrap();
    for (topic, msg, reason) in [
        (&ack_topic, wire::encode(&answer).unwrap(), "reply_unsigned"),
        (&down_topic, wire::encode(&reply).unwrap(), "reply_unsigned"),
        (
            &ack_topic,
            wire::encode_signed_reply(&forger, &store(), &answer).unwrap(),
            "reply_bad_signature",
        ),
        (
            &down_topic,
            wire::encode_signed_reply(&hq, &other, &reply).unwrap(),
            "reply_bad_signature",
        ),
    ] {
        let before = metrics.rejected(reason);
        p.handle_message(2, topic, &msg);
        assert_eq!(metrics.rejected(reason), before + 1, "{reason}");
        let taken = drain(&mut p, 2, &r);
        assert!(
            acks(&taken).is_empty()
                && !taken
                    .iter()
                    .any(|a| matches!(a, StoreAction::LookupReply(_)))
        );
    }

    let signed = wire::encode_signed_reply(&hq, &store(), &answer).unwrap();
    p.handle_message(3, &ack_topic, &signed);
    let answered = acks(&drain(&mut p, 3, &r));
    assert_eq!(answered.len(), 1, "HQ's signed hello reply is answered");
    let signed = wire::encode_signed_reply(&hq, &store(), &reply).unwrap();
    p.handle_message(4, &down_topic, &signed);
    assert!(drain(&mut p, 4, &r)
        .iter()
        .any(|a| matches!(a, StoreAction::LookupReply(r) if r.id == 1)));
}

fn epoch_down(epoch: u64, first_idx: u64, ops: &[Op]) -> (String, Vec<u8>) {
    let topic = Topics::new("acme")
        .unwrap()
        .topic(&store(), TopicKind::Down);
    let bytes = wire::encode(&Message::EpochDown(wire::EpochDownBatch {
        epoch,
        first_idx,
        ops: ops.to_vec(),
    }))
    .unwrap();
    (topic, bytes)
}

fn epoch_acks(actions: &[StoreAction]) -> Vec<wire::EpochAck> {
    actions
        .iter()
        .filter_map(|a| match a {
            StoreAction::Publish(p) => match wire::decode(&p.payload) {
                Ok(Message::EpochAck(ack)) => Some(ack),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_higher_lease_epoch_restarts_the_numbering_and_a_lower_one_is_dropped() {
    let mut p = proto();
    let mut r = Replica::new(store().actor());
    p.handle_link(1, true);
    drain(&mut p, 1, &r);
    let ops = hq_ops(6);
    let (topic, bytes) = down(1, &ops[0..3]);
    p.handle_message(2, &topic, &bytes);
    drain(&mut p, 2, &r);
    ops[0..3].iter().for_each(|op| {
        r.apply(op).unwrap();
    });
    p.handle_ingested(Some(&[]));
    assert_eq!(acks(&drain(&mut p, 3, &r))[0].down_idx, 3);

    // A new holder (epoch 2) numbers from its own base: its entry 1 is an op we hold.
    let (topic, bytes) = epoch_down(2, 1, &ops[2..5]);
    p.handle_message(4, &topic, &bytes);
    let actions = drain(&mut p, 4, &r);
    let reset = DownCursor { epoch: 2, idx: 0 }.pack();
    assert!(actions.contains(&StoreAction::Persist {
        key: KEY_DOWN_IDX,
        value: reset
    }));
    assert!(actions.contains(&StoreAction::Ingest {
        first_idx: 1,
        ops: ops[2..5].to_vec()
    }));
    ops[3..5].iter().for_each(|op| {
        r.apply(op).unwrap();
    });
    p.handle_ingested(Some(&[]));
    let acked = epoch_acks(&drain(&mut p, 5, &r));
    assert_eq!((acked[0].epoch, acked[0].ack.down_idx), (2, 3));
    assert_eq!(
        DownCursor::unpack(p.cursors().down_idx),
        DownCursor { epoch: 2, idx: 3 }
    );

    // The dead holder's batch still in flight (epoch 1) moves nothing.
    let (topic, bytes) = epoch_down(1, 4, &ops[5..6]);
    p.handle_message(6, &topic, &bytes);
    assert!(drain(&mut p, 6, &r).is_empty());
    assert_eq!(p.metrics.rejected("stale_epoch"), 1);
    assert_eq!(DownCursor::unpack(p.cursors().down_idx).idx, 3);

    // A restart resumes in the new numbering.
    let cfg = StoreSyncConfig::new("acme", store(), "localhost", 1883);
    let again = StoreProtocol::new(cfg, p.cursors(), Arc::new(SyncMetrics::new()), 7).unwrap();
    assert_eq!((again.down_epoch, again.down_idx), (2, 3));
}

#[test]
fn an_ingest_of_the_old_epoch_ending_after_the_switch_does_not_move_the_new_cursor() {
    let mut p = proto();
    let r = Replica::new(store().actor());
    p.handle_link(1, true);
    drain(&mut p, 1, &r);
    let ops = hq_ops(5);
    let (topic, bytes) = epoch_down(1, 1, &ops[0..3]);
    p.handle_message(2, &topic, &bytes);
    assert!(matches!(
        drain(&mut p, 2, &r)[..],
        [
            StoreAction::Persist { .. },
            StoreAction::Ingest { first_idx: 1, .. }
        ]
    ));
    let (topic, bytes) = epoch_down(2, 1, &ops[2..4]);
    p.handle_message(3, &topic, &bytes);
    let waiting = drain(&mut p, 3, &r);
    assert!(
        !waiting
            .iter()
            .any(|a| matches!(a, StoreAction::Ingest { .. })),
        "one ingest at a time: {waiting:?}"
    );
    p.handle_ingested(Some(&[]));
    let actions = drain(&mut p, 4, &r);
    assert!(actions.contains(&StoreAction::Ingest {
        first_idx: 1,
        ops: ops[2..4].to_vec()
    }));
    assert_eq!(
        DownCursor::unpack(p.cursors().down_idx),
        DownCursor { epoch: 2, idx: 0 }
    );
    p.handle_ingested(Some(&[]));
    drain(&mut p, 5, &r);
    assert_eq!(
        DownCursor::unpack(p.cursors().down_idx),
        DownCursor { epoch: 2, idx: 2 }
    );
}

#[test]
fn own_ops_just_committed_are_published_without_reading_the_log_until_a_commit_is_missed() {
    let mut p = proto();
    let mut r = Replica::new(store().actor());
    for op in hq_ops(1) {
        r.apply(&op).unwrap();
    }
    p.handle_link(1, true);
    drain(&mut p, 1, &r);
    let mut own = Vec::new();
    for i in 0..2 {
        let (op, eff) = r
            .prepare(
                2 + i,
                Payload::StockReceive {
                    store: store(),
                    sku: Sku::parse("SKU-0").unwrap(),
                    qty: 1,
                    reason: crate::domain::op::ReceiveReason::Delivery,
                },
            )
            .unwrap();
        p.handle_committed(std::slice::from_ref(&op), &eff);
        own.push(op);
    }
    let actions = drain(&mut p, 3, &r);
    assert!(actions
        .iter()
        .all(|a| !matches!(a, StoreAction::ReadOutbox { .. })));
    let ups: Vec<&Publish> = actions
        .iter()
        .filter_map(|a| match a {
            StoreAction::Publish(p) if matches!(p.carries, Carries::Ops { .. }) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(ups.len(), 1, "{actions:?}");
    assert!(matches!(
        ups[0].carries,
        Carries::Ops {
            after: 0,
            ops: 2,
            ..
        }
    ));
    let Message::Up(batch) = wire::decode(&ups[0].payload).unwrap() else {
        panic!("not an up-batch");
    };
    assert_eq!(batch.ops, own, "the very ops the commit reported");

    // Seq 3's commit is missed: seq 4 alone does not follow what was sent, so read the log.
    let mut next = Vec::new();
    for i in 0..2 {
        let (op, _) = r
            .prepare(
                9 + i,
                Payload::StockReceive {
                    store: store(),
                    sku: Sku::parse("SKU-0").unwrap(),
                    qty: 1,
                    reason: crate::domain::op::ReceiveReason::Delivery,
                },
            )
            .unwrap();
        next.push(op);
    }
    p.handle_lagged();
    p.handle_committed(&next[1..], &[]);
    assert!(drain(&mut p, 4, &r).contains(&StoreAction::ReadOutbox {
        after: 2,
        limit: 500
    }));
}

/// The broker hands a store its own acks back (it subscribes to its ack topic for HQ's): an
/// epoch ack of its own is ignored like a plain one, not logged and counted as malformed
/// (it was, once per down-batch, with a leased HQ).
#[test]
fn a_stores_own_epoch_ack_handed_back_by_the_broker_is_ignored() {
    let mut p = proto();
    let r = Replica::new(store().actor());
    p.handle_link(1, true);
    drain(&mut p, 1, &r);
    let topic = Topics::new("acme").unwrap().topic(&store(), TopicKind::Ack);
    let own = Message::EpochAck(wire::EpochAck {
        epoch: 2,
        ack: Ack {
            from: store().actor(),
            vv: Default::default(),
            down_idx: 3,
            resend: false,
            reply: false,
        },
    });
    p.handle_message(2, &topic, &wire::encode(&own).unwrap());
    assert!(drain(&mut p, 2, &r).is_empty());
    assert_eq!(p.metrics.rejected_total(), 0);
}

#[test]
fn a_single_hq_after_leased_ones_is_refused_loudly_until_the_cursor_is_reset() {
    let mut p = proto();
    let r = Replica::new(store().actor());
    p.handle_link(1, true);
    drain(&mut p, 1, &r);
    let ops = hq_ops(3);
    let (topic, bytes) = epoch_down(2, 1, &ops[0..1]);
    p.handle_message(2, &topic, &bytes);
    drain(&mut p, 2, &r);
    p.handle_ingested(Some(&[]));
    drain(&mut p, 3, &r);

    // HQ runs without leases again: its batches (epoch 0) move nothing and are counted.
    let (topic, bytes) = down(1, &ops);
    p.handle_message(4, &topic, &bytes);
    assert!(drain(&mut p, 4, &r).is_empty());
    assert_eq!(p.metrics.rejected("single_hq"), 1);
    assert_eq!(p.metrics.rejected("stale_epoch"), 0);

    // `storenode store reset-hq-cursor` leaves epoch 0 index 0: the same batch is taken.
    let cfg = StoreSyncConfig::new("acme", store(), "localhost", 1883);
    let mut again = StoreProtocol::new(
        cfg,
        StoreCursors::default(),
        Arc::new(SyncMetrics::new()),
        5,
    )
    .unwrap();
    again.handle_link(5, true);
    drain(&mut again, 5, &r);
    again.handle_message(6, &topic, &bytes);
    assert!(drain(&mut again, 6, &r).contains(&StoreAction::Ingest {
        first_idx: 1,
        ops: ops.clone()
    }));
}

/// The replica holds a group's ops before the writer commits them: the outbox is read only up
/// to the last own op a commit event reported, so the engine never reads the log for ops it
/// cannot find there yet (it used to read again and again until the commit landed).
#[test]
fn own_ops_are_published_only_up_to_the_last_commit_reported() {
    let mut p = proto();
    let mut r = Replica::new(store().actor());
    for op in hq_ops(1) {
        r.apply(&op).unwrap();
    }
    p.handle_link(1, true);
    drain(&mut p, 1, &r);
    let mut receive = |at: u64| {
        let payload = Payload::StockReceive {
            store: store(),
            sku: Sku::parse("SKU-0").unwrap(),
            qty: 1,
            reason: crate::domain::op::ReceiveReason::Delivery,
        };
        r.prepare(at, payload).unwrap().0
    };
    let first = receive(2);
    let (second, third) = (receive(3), receive(4));
    let sent = |actions: &[StoreAction]| -> (usize, Vec<usize>) {
        let reads = actions
            .iter()
            .filter(|a| matches!(a, StoreAction::ReadOutbox { .. }))
            .count();
        let ups = actions
            .iter()
            .filter_map(|a| match a {
                StoreAction::Publish(Publish {
                    carries: Carries::Ops { ops, .. },
                    ..
                }) => Some(*ops),
                _ => None,
            })
            .collect();
        (reads, ups)
    };
    p.handle_committed(std::slice::from_ref(&first), &[]);
    // Seqs 2 and 3 are in the replica, their commit not reported yet: only seq 1 goes.
    assert_eq!(sent(&drain(&mut p, 2, &r)), (0, vec![1]));
    assert_eq!(sent(&drain(&mut p, 3, &r)), (0, vec![]), "no read for 2-3");
    p.handle_committed(&[second, third], &[]);
    assert_eq!(sent(&drain(&mut p, 4, &r)), (0, vec![2]));
}
