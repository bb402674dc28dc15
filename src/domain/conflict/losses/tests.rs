//! Double returns and movements received short or over: raised once, under the same id and
//! with the same facts on every replica holding the ops, whatever order they arrived in; the
//! resolutions converge and are part of the digest.

use crate::domain::conflict::{conflicts, find, ConflictKind, Facts};
use crate::domain::ids::{ActorId, MotionId, ReturnId, SaleId, Sku, StoreId};
use crate::domain::op::{
    OrderLine, Payload, ReceiptLine, ReceiveReason, ReturnLine, SaleLine, Tender,
};
use crate::domain::{Ean13, Hlc, Op, Replica};
use proptest::prelude::*;

fn madrid() -> StoreId {
    StoreId::parse("madrid-centro").unwrap()
}
fn sevilla() -> StoreId {
    StoreId::parse("sevilla-nervion").unwrap()
}
fn sku() -> Sku {
    Sku::parse("SKU-1").unwrap()
}
fn motion(s: &str) -> MotionId {
    MotionId::parse(s).unwrap()
}

fn ret(id: &str, store: StoreId, verified: bool) -> Payload {
    Payload::Return {
        store,
        return_id: ReturnId::parse(id).unwrap(),
        sale: SaleId::parse("S-1").unwrap(),
        sale_store: Some(madrid()),
        lines: vec![ReturnLine {
            sku: sku(),
            qty: 1,
            restock: true,
            refund_cents: 100,
        }],
        tender: Tender::Card,
        verified,
        customer: None,
    }
}

fn receipt(received: u32) -> Vec<ReceiptLine> {
    vec![ReceiptLine {
        sku: sku(),
        received,
        damaged: 0,
    }]
}

fn notice(id: &str, store: StoreId, qty: u32) -> Payload {
    Payload::ShipmentNotice {
        shipment: motion(id),
        store,
        reference: format!("ASN-{id}"),
        lines: vec![OrderLine { sku: sku(), qty }],
    }
}

fn receive(id: &str, store: StoreId, received: u32, over_delivery: bool) -> Payload {
    Payload::ShipmentReceive {
        shipment: motion(id),
        store,
        lines: receipt(received),
        over_delivery,
    }
}

fn resolve(store: StoreId, conflict: &str, action: &str, by: &str) -> Payload {
    Payload::ConflictResolve {
        store,
        conflict: conflict.into(),
        action: action.into(),
        note: "revisado".into(),
        by: by.into(),
    }
}

/// Ops of HQ and two stores, each numbering its own; `at` is the op's wall clock in ms.
#[derive(Default)]
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

/// A sale returned twice (once verified at the seller, once unverified elsewhere), a delivery
/// short, a transfer short, and near misses: a delivery received in full and one over.
fn history() -> Vec<Op> {
    let (hq, md, sv) = (ActorId::hq(), madrid().actor(), sevilla().actor());
    let mut s = Script::default();
    s.op(
        &hq,
        1_000,
        Payload::CatalogPut {
            sku: sku(),
            ean: Ean13::parse("8412345678905").unwrap(),
            name: "Aceite".into(),
            price_cents: 100,
            vat_bp: 1000,
        },
    )
    .op(
        &md,
        1_100,
        Payload::StockReceive {
            store: madrid(),
            sku: sku(),
            qty: 10,
            reason: ReceiveReason::Delivery,
        },
    )
    .op(
        &md,
        1_200,
        Payload::Sale {
            store: madrid(),
            sale_id: SaleId::parse("S-1").unwrap(),
            lines: vec![SaleLine {
                sku: sku(),
                qty: 1,
                unit_cents: 100,
                vat_bp: 1000,
            }],
            tender: Tender::Card,
            customer: None,
        },
    )
    .op(&md, 1_300, ret("R-1", madrid(), true))
    .op(&sv, 1_310, ret("R-2", sevilla(), false))
    .op(&hq, 1_400, notice("D-1", madrid(), 5))
    .op(&md, 1_500, receive("D-1", madrid(), 3, false))
    .op(
        &md,
        1_600,
        Payload::TransferDispatch {
            transfer: motion("T-1"),
            store: madrid(),
            to: sevilla(),
            lines: vec![OrderLine { sku: sku(), qty: 2 }],
        },
    )
    .op(
        &sv,
        1_700,
        Payload::TransferReceive {
            transfer: motion("T-1"),
            store: sevilla(),
            from: madrid(),
            lines: receipt(1),
            over_delivery: false,
        },
    )
    // Received exactly as announced: nothing.
    .op(&hq, 1_800, notice("D-2", sevilla(), 2))
    .op(&sv, 1_810, receive("D-2", sevilla(), 2, false))
    // Over, declared: an item with nothing lost, only to acknowledge.
    .op(&hq, 1_900, notice("D-3", sevilla(), 1))
    .op(&sv, 1_910, receive("D-3", sevilla(), 2, true));
    s.ops
}

fn replica_of(actor: ActorId, ops: &[Op]) -> Replica {
    let mut r = Replica::new(actor);
    for op in ops {
        r.apply(op).unwrap();
    }
    r
}

/// `ops` shuffled by `keys`, then each actor's ops put back in seq order in the slots it got.
fn interleave(ops: &[Op], keys: &[u32]) -> Vec<Op> {
    let mut idx: Vec<usize> = (0..ops.len()).collect();
    idx.sort_by_key(|&i| keys[i % keys.len()].wrapping_add(i as u32 * 7919));
    let mut out: Vec<Op> = idx.iter().map(|&i| ops[i].clone()).collect();
    for actor in [ActorId::hq(), madrid().actor(), sevilla().actor()] {
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

#[test]
fn a_double_return_and_short_movements_are_raised_once_with_their_facts() {
    let r = replica_of(ActorId::hq(), &history());
    let items = conflicts(r.state(), None);
    let got: Vec<(&str, ConflictKind, &str)> = items
        .iter()
        .map(|c| (c.id.as_str(), c.kind, c.store.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "return:S-1:SKU-1",
                ConflictKind::DoubleReturn,
                "madrid-centro"
            ),
            (
                "shipment:D-1",
                ConflictKind::DeliveryDiscrepancy,
                "madrid-centro"
            ),
            (
                "transfer:T-1",
                ConflictKind::TransferDiscrepancy,
                "sevilla-nervion"
            ),
            (
                "shipment:D-3",
                ConflictKind::DeliveryDiscrepancy,
                "sevilla-nervion"
            ),
        ]
    );
    let double = &items[0];
    assert_eq!(double.actions, ["accept_loss", "note_recovery"]);
    match &double.facts {
        Facts::DoubleReturn {
            sold,
            returned,
            returns,
            ..
        } => {
            assert_eq!((*sold, *returned), (1, 2));
            let who: Vec<(&str, &str, bool)> = returns
                .iter()
                .map(|r| (r.id.as_str(), r.store.as_str(), r.verified))
                .collect();
            assert_eq!(
                who,
                [
                    ("R-1", "madrid-centro", true),
                    ("R-2", "sevilla-nervion", false)
                ]
            );
        }
        other => panic!("double return facts expected, got {other:?}"),
    }
    assert_eq!(
        double.summary_en(),
        "Sale S-1 sold 1 of SKU-1 but 2 came back (taken at madrid-centro, sevilla-nervion): refunded twice."
    );
    assert!(double.summary_es().contains("reembolso doble"));

    let delivery = &items[1];
    assert_eq!(delivery.actions, ["confirm_loss", "note_found"]);
    match &delivery.facts {
        Facts::Movement {
            from,
            reference,
            lines,
            ..
        } => {
            assert_eq!(from, &None);
            assert_eq!(reference, "ASN-D-1");
            assert_eq!((lines[0].sent, lines[0].received, lines[0].lost), (5, 3, 2));
        }
        other => panic!("movement facts expected, got {other:?}"),
    }
    assert_eq!(
        delivery.summary_en(),
        "Delivery D-1 arrived 2 unit(s) short."
    );
    let transfer = &items[2];
    assert!(matches!(&transfer.facts, Facts::Movement { from: Some(f), .. } if *f == madrid()));
    assert_eq!(
        transfer.summary_es(),
        "El traspaso T-1 llegó con 1 unidad(es) de menos."
    );
    assert_eq!(items[3].actions, ["acknowledge"]);
    assert_eq!(
        items[3].summary_en(),
        "Delivery D-3 arrived with 1 unit(s) more than sent."
    );
}

#[test]
fn each_store_lists_the_items_it_must_act_on() {
    let r = replica_of(ActorId::hq(), &history());
    let ids = |s: StoreId| -> Vec<String> {
        conflicts(r.state(), Some(&s))
            .into_iter()
            .map(|c| c.id)
            .collect()
    };
    assert_eq!(ids(madrid()), ["return:S-1:SKU-1", "shipment:D-1"]);
    assert_eq!(ids(sevilla()), ["transfer:T-1", "shipment:D-3"]);
}

#[test]
fn only_the_offered_actions_resolve_and_only_by_the_items_store() {
    let mut hq = replica_of(ActorId::hq(), &history());
    for bad in [
        resolve(madrid(), "shipment:D-1", "acknowledge", "ana@hq"),
        resolve(sevilla(), "shipment:D-1", "confirm_loss", "ana@hq"),
        resolve(madrid(), "shipment:D-2", "confirm_loss", "ana@hq"),
    ] {
        assert!(hq.prepare(5_000, bad).is_err());
    }
    let mut sv = replica_of(sevilla().actor(), &history());
    let err = sv
        .prepare(
            5_000,
            resolve(madrid(), "return:S-1:SKU-1", "accept_loss", "M-02"),
        )
        .unwrap_err();
    assert!(err.to_string().contains("may not author"), "{err}");
}

#[test]
fn a_resolution_is_part_of_the_stores_digest_and_both_sides_agree() {
    let base = history();
    let mut hq = replica_of(ActorId::hq(), &base);
    let mut md = replica_of(madrid().actor(), &base);
    let before = hq.digest_for_store(&madrid());
    let sevilla_before = hq.digest_for_store(&sevilla());
    let (op, _) = hq
        .prepare(
            5_000,
            resolve(madrid(), "shipment:D-1", "note_found", "ana@hq"),
        )
        .unwrap();
    assert_ne!(hq.digest_for_store(&madrid()), before);
    assert_eq!(hq.digest_for_store(&sevilla()), sevilla_before);
    assert_ne!(
        md.digest_for_store(&madrid()),
        hq.digest_for_store(&madrid())
    );
    md.apply(&op).unwrap();
    assert_eq!(
        md.digest_for_store(&madrid()),
        hq.digest_for_store(&madrid())
    );
    let item = find(md.state(), "shipment:D-1").unwrap();
    let r = item.resolution.expect("resolved at the store too");
    assert_eq!((r.action.as_str(), r.by.as_str()), ("note_found", "ana@hq"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_replica_raises_the_same_losses_and_resolutions_converge(
        keys in proptest::collection::vec(any::<u32>(), 1..40),
    ) {
        let mut s = Script { ops: history() };
        s.op(&ActorId::hq(), 5_000, resolve(madrid(), "return:S-1:SKU-1", "note_recovery", "ana@hq"));
        s.op(&madrid().actor(), 5_000, resolve(madrid(), "return:S-1:SKU-1", "accept_loss", "M-01"));
        s.op(&sevilla().actor(), 5_100, resolve(sevilla(), "transfer:T-1", "confirm_loss", "M-02"));
        let reference = replica_of(ActorId::hq(), &s.ops);
        let expected = conflicts(reference.state(), None);
        prop_assert_eq!(expected.len(), 4);
        for observer in [ActorId::hq(), madrid().actor(), sevilla().actor()] {
            let r = replica_of(observer, &interleave(&s.ops, &keys));
            prop_assert_eq!(&conflicts(r.state(), None), &expected);
            prop_assert_eq!(r.digest(), reference.digest());
        }
        // Equal HLCs: the larger actor (the store) wins, on every replica.
        let double = expected[0].resolution.clone().unwrap();
        prop_assert_eq!(double.action.as_str(), "accept_loss");
        prop_assert!(expected[2].resolution.is_some());
        prop_assert!(expected[1].resolution.is_none());
    }
}
