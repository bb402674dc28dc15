//! Tests of the conflict inbox: every kind is raised once and identically on every replica,
//! whatever order the ops arrive in, and resolutions converge.

use super::conflict::{conflicts, find, ConflictKind, Facts};
use super::ids::{ActorId, CustomerId, OrderId, SaleId, Sku, StoreId};
use super::op::{Advance, CancelKind, Op, OrderLine, Payload, ReceiveReason, SaleLine, Tender};
use super::{Ean13, Hlc, Replica};
use proptest::prelude::*;

fn store() -> StoreId {
    StoreId::parse("madrid-centro").unwrap()
}
fn sku() -> Sku {
    Sku::parse("SKU-1").unwrap()
}
fn order_id(s: &str) -> OrderId {
    OrderId::parse(s).unwrap()
}
fn customer(s: &str) -> CustomerId {
    CustomerId::parse(s).unwrap()
}

fn put(price_cents: i64) -> Payload {
    Payload::CatalogPut {
        sku: sku(),
        ean: Ean13::parse("8412345678905").unwrap(),
        name: "Aceite".into(),
        price_cents,
        vat_bp: 1000,
    }
}

fn sale(id: &str, unit_cents: i64, customer: Option<CustomerId>) -> Payload {
    Payload::Sale {
        store: store(),
        sale_id: SaleId::parse(id).unwrap(),
        lines: vec![SaleLine {
            sku: sku(),
            qty: 1,
            unit_cents,
            vat_bp: 1000,
        }],
        tender: Tender::Card,
        customer,
    }
}

fn place(id: &str, qty: u32) -> Payload {
    Payload::OrderPlace {
        order_id: order_id(id),
        store: store(),
        customer: customer("C-0001"),
        lines: vec![OrderLine { sku: sku(), qty }],
        pickup_code: "ABC234".into(),
        placed_at_ms: 0,
    }
}

fn advance(id: &str, to: Advance) -> Payload {
    Payload::OrderAdvance {
        order_id: order_id(id),
        store: store(),
        to,
    }
}

/// HQ and a store, each numbering its own ops; `at` is the op's wall clock in ms.
struct Script {
    ops: Vec<Op>,
}

impl Script {
    fn op(&mut self, actor: &ActorId, at: u64, payload: Payload) -> &mut Script {
        let seq = self.ops.iter().filter(|o| &o.actor == actor).count() as u64 + 1;
        self.ops.push(Op {
            actor: actor.clone(),
            seq,
            hlc: Hlc::new(at, 0),
            payload,
        });
        self
    }
}

/// A history that raises one item of every kind, and near misses that must raise nothing.
fn history() -> Vec<Op> {
    let hq = ActorId::hq();
    let st = store().actor();
    let mut s = Script { ops: Vec::new() };
    s.op(&hq, 1_000, put(100))
        .op(
            &st,
            1_100,
            Payload::StockReceive {
                store: store(),
                sku: sku(),
                qty: 10,
                reason: ReceiveReason::Delivery,
            },
        )
        .op(&st, 1_200, place("O-1", 2))
        .op(&st, 1_210, advance("O-1", Advance::Picking))
        .op(
            &st,
            1_220,
            Payload::OrderPick {
                order_id: order_id("O-1"),
                store: store(),
                sku: sku(),
                picked: 2,
            },
        )
        .op(&st, 1_230, advance("O-1", Advance::Ready))
        .op(&st, 1_300, advance("O-1", Advance::HandedOver))
        .op(
            &hq,
            1_250,
            Payload::OrderCancel {
                order_id: order_id("O-1"),
                store: store(),
                kind: CancelKind::Cancelled,
            },
        )
        .op(&st, 1_400, place("O-2", 1))
        .op(
            &st,
            1_500,
            Payload::CountRecorded {
                store: store(),
                sku: sku(),
                counted: 4,
                expected: 7,
                shrinkage: 3,
            },
        )
        // A count that matched raises nothing.
        .op(
            &st,
            1_510,
            Payload::CountRecorded {
                store: store(),
                sku: sku(),
                counted: 4,
                expected: 4,
                shrinkage: 0,
            },
        )
        .op(&hq, 1_600, put(120))
        // Sold offline at the old price after HQ's change: stale.
        .op(&st, 1_700, sale("S-1", 100, None))
        // At the price in force, naming a customer erased only later: nothing.
        .op(&st, 1_750, sale("S-0", 120, Some(customer("C-0009"))))
        .op(
            &hq,
            1_800,
            Payload::CustomerErase {
                customer: customer("C-0009"),
            },
        )
        // Made after the erasure, at a store that had not heard of it.
        .op(&st, 1_900, sale("S-2", 120, Some(customer("C-0009"))));
    s.ops
}

/// `ops` in the order `keys` sorts them, keeping each actor's seqs ascending.
fn interleave(ops: &[Op], keys: &[u32]) -> Vec<Op> {
    let mut idx: Vec<usize> = (0..ops.len()).collect();
    idx.sort_by_key(|&i| keys[i % keys.len()].wrapping_add(i as u32 * 7919));
    let mut out: Vec<Op> = idx.iter().map(|&i| ops[i].clone()).collect();
    for actor in [ActorId::hq(), store().actor()] {
        let mut own: Vec<Op> = ops.iter().filter(|o| o.actor == actor).cloned().collect();
        own.sort_by_key(|o| std::cmp::Reverse(o.seq));
        for slot in out.iter_mut().filter(|o| o.actor == actor) {
            if let Some(next) = own.pop() {
                *slot = next;
            }
        }
    }
    out
}

fn replica_of(actor: ActorId, ops: &[Op]) -> Replica {
    let mut r = Replica::new(actor);
    for op in ops {
        r.apply(op).unwrap();
    }
    r
}

#[test]
fn every_kind_the_code_produces_is_raised_once_with_its_facts() {
    let r = replica_of(ActorId::hq(), &history());
    let items = conflicts(r.state(), None);
    let ids: Vec<&str> = items.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "order:O-1",
            "count:store:madrid-centro:8",
            "price:S-1:SKU-1",
            "erased-sale:S-2"
        ]
    );
    let kinds: Vec<ConflictKind> = items.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ConflictKind::CancelMetHandover,
            ConflictKind::Shrinkage,
            ConflictKind::StalePrice,
            ConflictKind::ErasedCustomer
        ]
    );
    assert_eq!(items[0].actions, ["confirm_goods_left"]);
    assert!(items[0].summary_en().contains("already been handed over"));
    assert!(items[0].summary_es().contains("ya se había entregado"));
    match &items[1].facts {
        Facts::Shrinkage {
            shrinkage,
            orders_at_risk,
            ..
        } => {
            assert_eq!(*shrinkage, 3);
            assert_eq!(orders_at_risk, &[order_id("O-2")]);
        }
        other => panic!("shrinkage facts expected, got {other:?}"),
    }
    assert_eq!(items[1].actions, ["cancel_order:O-2", "accept_loss"]);
    match &items[2].facts {
        Facts::StalePrice {
            sold_cents,
            hq_cents,
            hq_price_at_ms,
            ..
        } => assert_eq!((*sold_cents, *hq_cents, *hq_price_at_ms), (100, 120, 1_600)),
        other => panic!("stale price facts expected, got {other:?}"),
    }
    assert!(items[3].summary_en().contains("erased before it was made"));
}

#[test]
fn a_cancel_meeting_a_ready_bag_offers_restocking() {
    let hq = ActorId::hq();
    let st = store().actor();
    let mut s = Script { ops: Vec::new() };
    s.op(&hq, 1_000, put(100))
        .op(&st, 1_200, place("O-1", 1))
        .op(
            &st,
            1_220,
            Payload::OrderPick {
                order_id: order_id("O-1"),
                store: store(),
                sku: sku(),
                picked: 1,
            },
        )
        .op(&st, 1_230, advance("O-1", Advance::Ready))
        .op(
            &hq,
            1_250,
            Payload::OrderCancel {
                order_id: order_id("O-1"),
                store: store(),
                kind: CancelKind::Cancelled,
            },
        );
    let r = replica_of(st, &s.ops);
    let item = find(r.state(), "order:O-1").expect("raised");
    assert_eq!(item.actions, ["confirm_restocked"]);
    assert!(item.summary_en().contains("while its bag was ready"));
}

fn resolve(conflict: &str, action: &str, by: &str) -> Payload {
    Payload::ConflictResolve {
        store: store(),
        conflict: conflict.into(),
        action: action.into(),
        note: "cliente avisado".into(),
        by: by.into(),
    }
}

#[test]
fn a_resolution_names_who_and_why_and_concurrent_ones_converge_to_the_last() {
    let base = history();
    let mut hq = replica_of(ActorId::hq(), &base);
    let mut st = replica_of(store().actor(), &base);
    let (at_hq, _) = hq
        .prepare(5_000, resolve("price:S-1:SKU-1", "accept_price", "ana@hq"))
        .unwrap();
    let (at_store, _) = st
        .prepare(5_001, resolve("price:S-1:SKU-1", "note_recovery", "M-01"))
        .unwrap();
    hq.apply(&at_store).unwrap();
    st.apply(&at_hq).unwrap();
    let a = find(hq.state(), "price:S-1:SKU-1").unwrap();
    let b = find(st.state(), "price:S-1:SKU-1").unwrap();
    assert_eq!(a, b);
    let r = a.resolution.expect("resolved");
    assert_eq!(
        (r.action.as_str(), r.by.as_str()),
        ("note_recovery", "M-01")
    );
    assert_eq!(r.note, "cliente avisado");
    assert_eq!(r.actor, store().actor());
}

#[test]
fn resolving_refuses_unknown_items_and_actions_not_offered_and_changes_nothing() {
    let mut hq = replica_of(ActorId::hq(), &history());
    let before = conflicts(hq.state(), None);
    let seq = hq.next_seq();
    for bad in [
        resolve("order:O-404", "confirm_goods_left", "ana@hq"),
        resolve("order:O-1", "accept_loss", "ana@hq"),
        resolve("order:O-1", "confirm_goods_left", " "),
        Payload::ConflictResolve {
            store: StoreId::parse("sevilla-nervion").unwrap(),
            conflict: "order:O-1".into(),
            action: "confirm_goods_left".into(),
            note: String::new(),
            by: "ana@hq".into(),
        },
    ] {
        assert!(hq.prepare(5_000, bad).is_err());
    }
    assert_eq!(hq.next_seq(), seq);
    assert_eq!(conflicts(hq.state(), None), before);
}

#[test]
fn another_store_may_not_resolve_a_stores_item() {
    let mut other = replica_of(
        StoreId::parse("sevilla-nervion").unwrap().actor(),
        &history(),
    );
    let err = other
        .prepare(5_000, resolve("order:O-1", "confirm_goods_left", "M-02"))
        .unwrap_err();
    assert!(err.to_string().contains("may not author conflict_resolve"));
}

#[test]
fn a_store_lists_only_its_own_items() {
    let r = replica_of(ActorId::hq(), &history());
    assert_eq!(conflicts(r.state(), Some(&store())).len(), 4);
    let other = StoreId::parse("sevilla-nervion").unwrap();
    assert!(conflicts(r.state(), Some(&other)).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_replica_lists_the_same_items_whatever_the_arrival_order(
        keys in proptest::collection::vec(any::<u32>(), 1..40),
    ) {
        let mut ops = history();
        let hq = ActorId::hq();
        let mut s = Script { ops: ops.clone() };
        s.op(&hq, 5_000, resolve("count:store:madrid-centro:8", "cancel_order:O-2", "ana@hq"));
        s.op(&store().actor(), 5_000, resolve("count:store:madrid-centro:8", "accept_loss", "M-01"));
        ops = s.ops;
        let reference = replica_of(ActorId::hq(), &ops);
        let expected = conflicts(reference.state(), None);
        prop_assert_eq!(expected.len(), 4);
        for observer in [
            ActorId::hq(),
            store().actor(),
            StoreId::parse("sevilla-nervion").unwrap().actor(),
        ] {
            let shuffled = interleave(&ops, &keys);
            let r = replica_of(observer, &shuffled);
            prop_assert_eq!(&conflicts(r.state(), None), &expected);
        }
        let resolved = expected[1].resolution.clone().unwrap();
        // Equal HLCs: the larger actor wins, on every replica.
        prop_assert_eq!(resolved.action.as_str(), "accept_loss");
    }
}
