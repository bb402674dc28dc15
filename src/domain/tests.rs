//! Property tests of the merge rules, driven through the real `Replica`.
//! (Just over 500 lines: one schedule generator and the properties over it belong together.)
//!
//! A random schedule of local actions at HQ and two stores, with random partial exchanges of
//! ops between them, produces a set of ops. Applying that set in any order, with duplicates,
//! or split across replicas that later exchange everything, must give one digest; and no
//! replica may ever see negative available stock.

use super::ids::*;
use super::op::*;
use super::order::OrderStatus;
use super::replica::Replica;
use proptest::prelude::*;
use std::collections::BTreeMap;

const SKUS: [&str; 3] = ["SKU-A", "SKU-B", "SKU-C"];
const EANS: [&str; 3] = ["4006381333931", "8410000000016", "8412345678905"];
pub(super) const STORES: [&str; 2] = ["madrid-centro", "sevilla-nervion"];
const CUSTOMERS: [&str; 3] = ["C-0001", "C-0002", "C-0003"];

fn sku(i: u8) -> Sku {
    Sku::parse(SKUS[i as usize % SKUS.len()]).unwrap()
}
fn store(i: u8) -> StoreId {
    StoreId::parse(STORES[i as usize % STORES.len()]).unwrap()
}
fn customer(i: u8) -> CustomerId {
    CustomerId::parse(CUSTOMERS[i as usize % CUSTOMERS.len()]).unwrap()
}

/// HQ, madrid, sevilla, each with the catalog and stock at the stores.
fn cluster() -> (Vec<Replica>, Vec<Op>) {
    let mut hq = Replica::new(ActorId::hq());
    let mut log = Vec::new();
    for (i, (s, e)) in SKUS.iter().zip(EANS).enumerate() {
        let (op, _) = hq
            .prepare(
                1,
                Payload::CatalogPut {
                    sku: Sku::parse(s).unwrap(),
                    ean: Ean13::parse(e).unwrap(),
                    name: format!("Producto {i} jamón"),
                    price_cents: 100 + i as i64,
                    vat_bp: 1000,
                },
            )
            .unwrap();
        log.push(op);
    }
    let mut replicas = vec![hq];
    for s in STORES {
        let mut r = Replica::new(StoreId::parse(s).unwrap().actor());
        for op in &log {
            r.apply(op).unwrap();
        }
        replicas.push(r);
    }
    (replicas, log)
}

/// One step of a schedule: which replica acts, what it does, and small parameters.
#[derive(Debug, Clone)]
pub(super) struct Step {
    who: u8,
    what: u8,
    a: u8,
    b: u8,
    n: u8,
}

pub(super) fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (0u8..3, 0u8..16, any::<u8>(), any::<u8>(), 1u8..6).prop_map(|(who, what, a, b, n)| Step {
            who,
            what,
            a,
            b,
            n,
        }),
        1..120,
    )
}

/// The payload a step asks for, given the acting replica's current state.
fn payload_for(r: &Replica, step: &Step, k: usize) -> Option<Payload> {
    let actor = r.actor().clone();
    let own_store = actor.store();
    let st = own_store.clone().unwrap_or_else(|| store(step.a));
    let state = r.state();
    let orders: Vec<_> = state.orders.values().filter(|o| o.store == st).collect();
    let order = (!orders.is_empty()).then(|| orders[step.b as usize % orders.len()]);
    let n = u32::from(step.n);
    Some(match step.what {
        0 | 1 if own_store.is_some() => Payload::StockReceive {
            store: st,
            sku: sku(step.b),
            qty: n * 2,
            reason: ReceiveReason::Delivery,
        },
        2 if own_store.is_some() => Payload::StockTransfer {
            store: st,
            sku: sku(step.b),
            to: ActorId::hq(),
            qty: n,
        },
        3 if own_store.is_some() => Payload::Sale {
            store: st,
            sale_id: SaleId::parse(&format!("S-{}-{k}", actor.as_str().replace(':', "_"))).unwrap(),
            lines: vec![SaleLine {
                sku: sku(step.b),
                qty: n,
                unit_cents: 100,
                vat_bp: 1000,
            }],
            tender: Tender::Cash,
            customer: None,
        },
        4 | 5 => Payload::OrderPlace {
            order_id: OrderId::parse(&format!("O-{}-{k}", actor.as_str().replace(':', "_")))
                .unwrap(),
            store: st,
            customer: customer(step.a),
            lines: vec![OrderLine {
                sku: sku(step.b),
                qty: n.min(2),
            }],
            pickup_code: "ABC234".into(),
            placed_at_ms: 5,
        },
        6 if own_store.is_some() => {
            let o = order?;
            let (sku, line) = o.lines.iter().next()?;
            Payload::OrderPick {
                order_id: o.id.clone(),
                store: st,
                sku: sku.clone(),
                picked: line.qty,
            }
        }
        7 if own_store.is_some() => Payload::OrderAdvance {
            order_id: order?.id.clone(),
            store: st,
            to: match step.a % 3 {
                0 => Advance::Picking,
                1 => Advance::Ready,
                _ => Advance::HandedOver,
            },
        },
        8 => Payload::OrderCancel {
            order_id: order?.id.clone(),
            store: st,
            kind: if step.a.is_multiple_of(4) {
                CancelKind::Expired
            } else {
                CancelKind::Cancelled
            },
        },
        9 if own_store.is_some() => Payload::OrderRelease {
            order_id: order?.id.clone(),
            store: st,
        },
        10 | 11 => Payload::CartSet {
            customer: customer(step.a),
            sku: sku(step.b),
            qty: n,
        },
        12 => {
            let c = customer(step.a);
            let observed = state.carts.get(&c)?.observed(&sku(step.b));
            Payload::CartRemove {
                customer: c,
                sku: sku(step.b),
                observed,
            }
        }
        13 => Payload::CustomerUpdate {
            customer: customer(step.a),
            patch: ProfilePatch {
                name: Some(format!("Cliente {}", step.b)),
                email: Some(format!("c{}@example.es", step.b)),
                ..Default::default()
            },
        },
        14 if step.n == 1 && step.b.is_multiple_of(4) => Payload::CustomerErase {
            customer: customer(step.a),
        },
        14 | 15 if own_store.is_some() => Payload::CustomerFollow {
            customer: customer(step.a),
            store: st,
        },
        _ => return None,
    })
}

/// Run a schedule: local actions, and every fourth step a partial exchange of ops.
pub(super) fn run(schedule: &[Step]) -> (Vec<Replica>, Vec<Op>) {
    let (mut replicas, mut log) = cluster();
    let mut delivered: Vec<usize> = vec![log.len(); replicas.len()];
    for (k, step) in schedule.iter().enumerate() {
        let who = step.who as usize % replicas.len();
        if step.what % 4 == 3 && step.n > 3 {
            // Deliver a prefix of the log to `who` (a partial, late exchange).
            let upto = (delivered[who] + usize::from(step.b)).min(log.len());
            for op in &log[..upto] {
                replicas[who].apply(op).unwrap();
            }
            delivered[who] = upto;
        }
        if let Some(p) = payload_for(&replicas[who], step, k) {
            if let Ok((op, _)) = replicas[who].prepare(10 + k as u64, p) {
                log.push(op);
            }
        }
        for r in &replicas {
            for ((_, _), c) in &r.state().stock {
                assert!(c.available() >= 0, "negative stock at {}", r.actor());
            }
        }
    }
    (replicas, log)
}

fn fresh_with(ops: &[Op]) -> Replica {
    let mut r = Replica::new(ActorId::parse("store:observer").unwrap());
    for op in ops {
        r.apply(op).unwrap();
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_order_duplication_or_partition_of_the_ops_converges(
        schedule in steps(),
        seed in any::<u64>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let (_, log) = run(&schedule);
        let reference = fresh_with(&log);

        let mut rng = seed;
        let mut shuffled = log.clone();
        for i in (1..shuffled.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let mut duplicated = shuffled.clone();
        duplicated.extend(log.iter().rev().cloned());
        let other = fresh_with(&duplicated);
        prop_assert_eq!(reference.digest(), other.digest());
        for s in STORES {
            let s = StoreId::parse(s).unwrap();
            prop_assert_eq!(reference.digest_for_store(&s), other.digest_for_store(&s));
        }

        // Two halves on two replicas that then exchange everything.
        let at = cut.index(shuffled.len() + 1);
        let (left, right) = shuffled.split_at(at);
        let mut a = fresh_with(left);
        let mut b = fresh_with(right);
        for op in right { a.apply(op).unwrap(); }
        for op in left { b.apply(op).unwrap(); }
        prop_assert_eq!(a.digest(), reference.digest());
        prop_assert_eq!(b.digest(), reference.digest());
    }

    #[test]
    fn stock_never_goes_below_zero_and_sales_never_exceed_receipts(schedule in steps()) {
        let (_, log) = run(&schedule);
        let merged = fresh_with(&log);
        let mut received: BTreeMap<(StoreId, Sku), i64> = BTreeMap::new();
        for op in &log {
            if let Payload::StockReceive { store, sku, qty, .. } = &op.payload {
                *received.entry((store.clone(), sku.clone())).or_default() += i64::from(*qty);
            }
        }
        for ((store, sku), counter) in &merged.state().stock {
            prop_assert!(counter.available() >= 0);
            let sold: i64 = merged.state().sales.values().filter(|s| &s.store == store)
                .flat_map(|s| s.lines.iter()).filter(|l| &l.sku == sku)
                .map(|l| i64::from(l.qty)).sum();
            let taken: i64 = merged.state().orders.values()
                .filter(|o| &o.store == store && !o.released)
                .map(|o| i64::from(o.lines.get(sku).map_or(0, |l| l.qty))).sum();
            let got = received.get(&(store.clone(), sku.clone())).copied().unwrap_or(0);
            prop_assert!(sold + taken <= got, "sold {sold} + reserved {taken} > received {got}");
            // `reserved` reads an index of orders by line; it must agree with a full scan.
            let scanned: u64 = merged.state().orders.values().filter(|o| &o.store == store)
                .map(|o| u64::from(o.reserved_units(sku))).sum();
            prop_assert_eq!(merged.state().reserved(store, sku), scanned);
        }
    }

    #[test]
    fn handed_over_is_never_undone_and_erasure_removes_all_personal_data(
        schedule in steps(), seed in any::<u64>(),
    ) {
        let (_, mut log) = run(&schedule);
        let mut rng = seed;
        for i in (1..log.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            log.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let merged = fresh_with(&log);
        for op in &log {
            match &op.payload {
                Payload::OrderAdvance { order_id, to: Advance::HandedOver, .. } => {
                    prop_assert_eq!(merged.state().orders[order_id].status, OrderStatus::HandedOver);
                }
                Payload::CustomerErase { customer } => {
                    let c = &merged.state().customers[customer];
                    prop_assert!(c.is_erased() && !c.has_personal_data());
                    prop_assert!(!merged.state().carts.contains_key(customer));
                }
                _ => {}
            }
        }
    }
}

#[test]
fn hq_cannot_sell_more_than_its_allocation_while_the_store_is_offline() {
    let (mut r, _) = cluster();
    let madrid = store(0);
    let a = sku(0);
    let (recv, _) = r[1]
        .prepare(
            10,
            Payload::StockReceive {
                store: madrid.clone(),
                sku: a.clone(),
                qty: 10,
                reason: ReceiveReason::Delivery,
            },
        )
        .unwrap();
    let (alloc, _) = r[1]
        .prepare(
            11,
            Payload::StockTransfer {
                store: madrid.clone(),
                sku: a.clone(),
                to: ActorId::hq(),
                qty: 3,
            },
        )
        .unwrap();
    r[0].apply(&recv).unwrap();
    r[0].apply(&alloc).unwrap();
    let order = |i: u32, qty: u32| Payload::OrderPlace {
        order_id: OrderId::parse(&format!("O-{i}")).unwrap(),
        store: madrid.clone(),
        customer: customer(0),
        lines: vec![OrderLine {
            sku: a.clone(),
            qty,
        }],
        pickup_code: "ABC234".into(),
        placed_at_ms: 12,
    };
    r[0].prepare(12, order(1, 2)).unwrap();
    let err = r[0].prepare(13, order(2, 2)).unwrap_err();
    assert!(matches!(
        err,
        super::DomainError::InsufficientStock { available: 1, .. }
    ));
    // The store, offline, sells all of its own 7 and no more.
    r[1].prepare(14, sale(&madrid, &a, 7)).unwrap();
    assert!(r[1].prepare(15, sale(&madrid, &a, 1)).is_err());
}

fn sale(store: &StoreId, sku: &Sku, qty: u32) -> Payload {
    Payload::Sale {
        store: store.clone(),
        sale_id: SaleId::parse(&format!("S-{qty}")).unwrap(),
        lines: vec![SaleLine {
            sku: sku.clone(),
            qty,
            unit_cents: 100,
            vat_bp: 1000,
        }],
        tender: Tender::Card,
        customer: None,
    }
}

#[test]
fn a_store_cannot_edit_the_catalog_or_sell_for_another_store() {
    let (mut r, _) = cluster();
    let put = Payload::CatalogPut {
        sku: sku(0),
        ean: Ean13::parse(EANS[0]).unwrap(),
        name: "x".into(),
        price_cents: 1,
        vat_bp: 0,
    };
    assert!(matches!(
        r[1].prepare(5, put),
        Err(super::DomainError::Unauthorized { .. })
    ));
    assert!(matches!(
        r[1].prepare(5, sale(&store(1), &sku(0), 1)),
        Err(super::DomainError::Unauthorized { .. })
    ));
}

#[test]
fn a_gap_in_the_local_actors_own_seqs_is_refused() {
    let (mut r, _) = cluster();
    let (op1, _) = r[1]
        .prepare(
            5,
            Payload::CustomerFollow {
                customer: customer(0),
                store: store(0),
            },
        )
        .unwrap();
    let mut fresh = Replica::new(store(0).actor());
    let mut op2 = op1.clone();
    op2.seq = 2;
    assert!(matches!(
        fresh.apply(&op2),
        Err(super::DomainError::SeqGap { expected: 1, .. })
    ));
    assert_eq!(fresh.apply(&op1), Ok(super::Applied::New(vec![])));
}

#[test]
fn the_schedule_generator_exercises_every_kind_of_op() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut kinds = std::collections::BTreeSet::new();
    for _ in 0..64 {
        let schedule = steps().new_tree(&mut runner).unwrap().current();
        let (_, log) = run(&schedule);
        kinds.extend(log.iter().map(|op| op.payload.kind()));
    }
    for kind in [
        "sale",
        "order_place",
        "order_pick",
        "order_advance",
        "order_cancel",
        "order_release",
        "stock_transfer",
        "cart_set",
        "cart_remove",
        "customer_erase",
        "customer_follow",
    ] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
}

#[test]
fn overdue_orders_and_abandoned_carts_are_listed_by_time_passed_in() {
    let (mut r, _) = cluster();
    let madrid = store(0);
    r[1].prepare(
        10,
        Payload::StockReceive {
            store: madrid.clone(),
            sku: sku(0),
            qty: 5,
            reason: ReceiveReason::Delivery,
        },
    )
    .unwrap();
    r[1].prepare(
        20,
        Payload::OrderPlace {
            order_id: OrderId::parse("O-1").unwrap(),
            store: madrid.clone(),
            customer: customer(0),
            lines: vec![OrderLine {
                sku: sku(0),
                qty: 1,
            }],
            pickup_code: "ABC234".into(),
            placed_at_ms: 20,
        },
    )
    .unwrap();
    r[1].prepare(
        30,
        Payload::CartSet {
            customer: customer(1),
            sku: sku(1),
            qty: 2,
        },
    )
    .unwrap();
    let state = r[1].state();
    assert!(state.overdue_orders(&madrid, 1_000, 5_000).is_empty());
    assert_eq!(state.overdue_orders(&madrid, 6_000, 5_000).len(), 1);
    assert!(state.abandoned_carts(1_000, 5_000).is_empty());
    assert_eq!(state.abandoned_carts(6_000, 5_000)[0].0, customer(1));
}
