//! Returns: exactness at the holder, handover of the rights, unverified returns and the
//! `double_return` they may cause, and stock flows that still balance (property tests).

use super::*;
use crate::domain::error::DomainError;
use crate::domain::ids::{ActorId, Ean13};
use crate::domain::op::ReceiveReason;
use crate::domain::replica::Replica;
use proptest::prelude::*;

const DAY_MS: u64 = 86_400_000;
const NOW: u64 = 1_000 * DAY_MS;

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}
fn st(s: &str) -> StoreId {
    StoreId::parse(s).unwrap()
}
fn sale_id(s: &str) -> SaleId {
    SaleId::parse(s).unwrap()
}
fn madrid() -> StoreId {
    st("madrid-centro")
}
fn sevilla() -> StoreId {
    st("sevilla-nervion")
}

/// HQ, madrid and sevilla with two products and 20 units of each at both stores, every op
/// applied everywhere.
fn chain() -> (Replica, Replica, Replica) {
    let mut hq = Replica::new(ActorId::hq());
    let mut a = Replica::new(madrid().actor());
    let mut b = Replica::new(sevilla().actor());
    let mut ops = Vec::new();
    for (s, e, price) in [
        ("SKU-A", "4006381333931", 1000),
        ("SKU-B", "8410000000016", 250),
    ] {
        let (op, _) = hq
            .prepare(
                NOW,
                Payload::CatalogPut {
                    sku: sku(s),
                    ean: Ean13::parse(e).unwrap(),
                    name: format!("Producto {s}"),
                    price_cents: price,
                    vat_bp: 2100,
                },
            )
            .unwrap();
        ops.push(op);
    }
    for op in &ops {
        a.apply(op).unwrap();
        b.apply(op).unwrap();
    }
    let mut receipts = Vec::new();
    for (r, store) in [(&mut a, madrid()), (&mut b, sevilla())] {
        for s in ["SKU-A", "SKU-B"] {
            let (op, _) = r
                .prepare(
                    NOW,
                    Payload::StockReceive {
                        store: store.clone(),
                        sku: sku(s),
                        qty: 20,
                        reason: ReceiveReason::Delivery,
                    },
                )
                .unwrap();
            receipts.push(op);
        }
    }
    for op in &receipts {
        for r in [&mut hq, &mut a, &mut b] {
            r.apply(op).unwrap();
        }
    }
    (hq, a, b)
}

fn sell(r: &mut Replica, id: &str, lines: &[(&str, u32, i64)]) -> Op {
    let store = r.actor().store().unwrap();
    r.prepare(
        NOW,
        Payload::Sale {
            store,
            sale_id: sale_id(id),
            lines: lines
                .iter()
                .map(|(s, q, p)| SaleLine {
                    sku: sku(s),
                    qty: *q,
                    unit_cents: *p,
                    vat_bp: 2100,
                })
                .collect(),
            tender: Tender::Cash,
            customer: None,
        },
    )
    .unwrap()
    .0
}

fn ask(id: &str, sale: &str, lines: &[(&str, u32, bool)], manager: bool) -> ReturnAsk {
    ReturnAsk {
        return_id: ReturnId::parse(id).unwrap(),
        sale: sale_id(sale),
        sale_store: None,
        lines: lines.iter().map(|(s, q, r)| (sku(s), *q, *r)).collect(),
        tender: Tender::Cash,
        manager,
        now_ms: NOW + DAY_MS,
    }
}

fn take(r: &mut Replica, a: ReturnAsk, policy: &ReturnPolicy) -> Result<Op, DomainError> {
    let store = r.actor().store().unwrap();
    let payload = plan_return(r.state(), &store, policy, a)?;
    Ok(r.prepare(NOW + DAY_MS, payload)?.0)
}

/// Every op `from` holds that `to` lacks, applied at `to`.
fn sync(from: &Replica, log: &[Op], to: &mut Replica) {
    for op in log {
        if from.version().contains(&op.actor, op.seq) {
            to.apply(op).unwrap();
        }
    }
}

#[test]
fn a_store_returns_its_own_sale_exactly_and_restocks_the_units() {
    let (_, mut a, _) = chain();
    sell(&mut a, "S1", &[("SKU-A", 3, 900)]);
    let before = a.state().available(&madrid(), &sku("SKU-A"));
    let policy = ReturnPolicy::default();
    let op = take(
        &mut a,
        ask("R1", "S1", &[("SKU-A", 2, true)], false),
        &policy,
    )
    .unwrap();
    let Payload::Return {
        verified, lines, ..
    } = &op.payload
    else {
        panic!("not a return: {op:?}");
    };
    assert!(*verified);
    assert_eq!(
        lines[0].refund_cents, 1800,
        "what was paid, not the catalog's 1000"
    );
    assert_eq!(a.state().available(&madrid(), &sku("SKU-A")), before + 2);
    assert_eq!(a.state().returnable(&sale_id("S1"), &sku("SKU-A")), Some(1));
    let again = take(
        &mut a,
        ask("R2", "S1", &[("SKU-A", 2, true)], true),
        &policy,
    );
    assert_eq!(
        again.unwrap_err(),
        DomainError::AlreadyReturned {
            sale: sale_id("S1"),
            sku: sku("SKU-A"),
            returnable: 1
        }
    );
}

#[test]
fn a_sku_not_in_the_sale_and_a_closed_window_are_refused() {
    let (_, mut a, _) = chain();
    sell(&mut a, "S1", &[("SKU-A", 1, 1000)]);
    let policy = ReturnPolicy::default();
    let err = take(
        &mut a,
        ask("R1", "S1", &[("SKU-B", 1, true)], false),
        &policy,
    )
    .unwrap_err();
    assert!(matches!(err, DomainError::NotInSale { .. }), "{err}");
    let mut late = ask("R2", "S1", &[("SKU-A", 1, true)], true);
    late.now_ms = NOW + 31 * DAY_MS;
    let err = take(&mut a, late, &policy).unwrap_err();
    assert!(
        matches!(err, DomainError::ReturnWindowClosed { days: 30, .. }),
        "{err}"
    );
}

#[test]
fn damaged_units_are_written_off_and_not_restocked() {
    let (_, mut a, _) = chain();
    sell(&mut a, "S1", &[("SKU-B", 2, 250)]);
    let before = a.state().available(&madrid(), &sku("SKU-B"));
    take(
        &mut a,
        ask("R1", "S1", &[("SKU-B", 2, false)], false),
        &ReturnPolicy::default(),
    )
    .unwrap();
    assert_eq!(a.state().available(&madrid(), &sku("SKU-B")), before);
    let key = (madrid(), sku("SKU-B"));
    assert_eq!(a.state().returns.written_off.get(&key), Some(&2));
}

#[test]
fn another_store_gets_the_rights_by_a_grant_and_then_returns_exactly() {
    let (mut hq, mut a, mut b) = chain();
    let mut log = vec![sell(&mut a, "S1", &[("SKU-A", 3, 1000)])];
    let policy = ReturnPolicy::default();
    log.push(
        take(
            &mut a,
            ask("R1", "S1", &[("SKU-A", 1, true)], false),
            &policy,
        )
        .unwrap(),
    );
    // Sevilla knows nothing of the sale: it asks, not knowing the holder.
    let req = plan_rights_request(b.state(), &sevilla(), &sale_id("S1"), None);
    log.push(b.prepare(NOW, req).unwrap().0);
    sync(&b, &log, &mut a);
    let grants = plan_grants(a.state(), &madrid());
    assert_eq!(grants.len(), 1);
    log.push(a.prepare(NOW, grants[0].clone()).unwrap().0);
    assert!(plan_grants(a.state(), &madrid()).is_empty(), "granted once");
    // Only the grant reaches sevilla (not madrid's return): its floor carries the return.
    let grant = log.last().unwrap().clone();
    b.apply(&grant).unwrap();
    assert_eq!(b.state().return_holder(&sale_id("S1")), Some(sevilla()));
    assert_eq!(b.state().returnable(&sale_id("S1"), &sku("SKU-A")), Some(2));
    let op = take(
        &mut b,
        ask("R2", "S1", &[("SKU-A", 2, true)], false),
        &policy,
    )
    .unwrap();
    assert!(matches!(op.payload, Payload::Return { verified: true, .. }));
    log.push(op);
    // Madrid no longer holds them: its associate is refused; once it learns of sevilla's
    // return, even a manager's unverified return finds nothing left.
    let err = take(
        &mut a,
        ask("R3", "S1", &[("SKU-A", 1, true)], false),
        &policy,
    )
    .unwrap_err();
    assert!(matches!(err, DomainError::ManagerRequired { .. }), "{err}");
    sync(&b, &log, &mut a);
    let err = take(
        &mut a,
        ask("R3", "S1", &[("SKU-A", 1, true)], true),
        &policy,
    )
    .unwrap_err();
    assert!(
        matches!(err, DomainError::AlreadyReturned { returnable: 0, .. }),
        "{err}"
    );
    for op in &log {
        hq.apply(op).unwrap();
    }
    assert!(hq.state().returns.double_returns.is_empty());
    assert_eq!(hq.state().available(&sevilla(), &sku("SKU-A")), 22);
}

#[test]
fn an_unverified_return_needs_a_manager_within_the_limit() {
    let (_, mut a, mut b) = chain();
    let log = vec![sell(&mut a, "S1", &[("SKU-A", 3, 1000)])];
    sync(&a, &log, &mut b);
    let policy = ReturnPolicy {
        window_ms: 30 * DAY_MS,
        unverified_max_cents: 1500,
    };
    let err = take(
        &mut b,
        ask("R1", "S1", &[("SKU-A", 1, true)], false),
        &policy,
    )
    .unwrap_err();
    assert!(matches!(err, DomainError::ManagerRequired { .. }), "{err}");
    let err = take(
        &mut b,
        ask("R1", "S1", &[("SKU-A", 2, true)], true),
        &policy,
    )
    .unwrap_err();
    assert!(err.to_string().contains("over the limit of 1500"), "{err}");
    let op = take(
        &mut b,
        ask("R1", "S1", &[("SKU-A", 1, true)], true),
        &policy,
    )
    .unwrap();
    assert!(matches!(
        op.payload,
        Payload::Return {
            verified: false,
            ..
        }
    ));
    // A sale this store has never seen: priced from the catalog, still within the limit.
    let op = take(
        &mut b,
        ask("R2", "X-9", &[("SKU-A", 1, true)], true),
        &policy,
    )
    .unwrap();
    let Payload::Return { lines, .. } = &op.payload else {
        panic!("not a return")
    };
    assert_eq!(lines[0].refund_cents, 1000);
}

#[test]
fn an_unverified_return_meeting_the_holders_return_is_a_double_return_in_any_order() {
    let (mut hq, mut a, mut b) = chain();
    let sale = sell(&mut a, "S1", &[("SKU-A", 1, 1000)]);
    let policy = ReturnPolicy::default();
    // Partitioned: madrid returns its own sale, sevilla (not knowing it) takes it unverified.
    let own = take(
        &mut a,
        ask("R1", "S1", &[("SKU-A", 1, true)], false),
        &policy,
    )
    .unwrap();
    let blind = take(
        &mut b,
        ask("R2", "S1", &[("SKU-A", 1, true)], true),
        &policy,
    )
    .unwrap();
    let mut other = Replica::new(ActorId::hq());
    for op in [&blind, &own, &sale] {
        other.apply(op).unwrap();
    }
    for op in [&sale, &own, &blind] {
        hq.apply(op).unwrap();
    }
    let key = (sale_id("S1"), sku("SKU-A"));
    let conflict = hq
        .state()
        .returns
        .double_returns
        .get(&key)
        .cloned()
        .unwrap();
    assert_eq!((conflict.sold, conflict.returned), (1, 2));
    assert_eq!(conflict.returns.len(), 2);
    assert_eq!(
        other.state().returns.double_returns.get(&key),
        Some(&conflict)
    );
}

/// One step of a return schedule at madrid (0) or sevilla (1).
#[derive(Debug, Clone)]
struct Step {
    who: usize,
    what: u8,
    sale: u8,
    sku: u8,
    qty: u32,
    restock: bool,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (0usize..2, 0u8..6, 0u8..2, 0u8..2, 1u32..4, any::<bool>()).prop_map(
            |(who, what, sale, sku, qty, restock)| Step {
                who,
                what,
                sale,
                sku,
                qty,
                restock,
            },
        ),
        1..60,
    )
}

const SALES: [&str; 2] = ["S1", "S2"];
const SKUS: [&str; 2] = ["SKU-A", "SKU-B"];

proptest! {
    /// Concurrent returns at two stores, rights requests and grants, deliveries and sales,
    /// with random partial syncs: once everything meets, every replica agrees; no unit is
    /// refunded twice unless a `double_return` records it; verified returns never exceed
    /// what was sold; and per store and sku, units received + returned = available + sold +
    /// written off.
    #[test]
    fn returns_never_refund_a_unit_twice_unrecorded_and_stock_flows_balance(script in steps()) {
        let (mut hq, a, b) = chain();
        let mut reps = [a, b];
        let mut log: Vec<Op> = Vec::new();
        for (i, id) in SALES.iter().enumerate() {
            let op = sell(&mut reps[i], id, &[("SKU-A", 2, 900), ("SKU-B", 3, 200)]);
            log.push(op);
        }
        let policy = ReturnPolicy { window_ms: 30 * DAY_MS, unverified_max_cents: 1_000_000 };
        for (k, step) in script.iter().enumerate() {
            let me = step.who;
            let store = reps[me].actor().store().unwrap();
            let sale = sale_id(SALES[step.sale as usize]);
            let payload = match step.what {
                0 | 1 => plan_return(reps[me].state(), &store, &policy, ReturnAsk {
                    return_id: ReturnId::parse(&format!("R{me}-{k}")).unwrap(),
                    sale: sale.clone(),
                    sale_store: None,
                    lines: vec![(sku(SKUS[step.sku as usize]), step.qty, step.restock)],
                    tender: Tender::Card,
                    manager: true,
                    now_ms: NOW,
                }).ok(),
                2 => (reps[me].state().return_holder(&sale).as_ref() != Some(&store))
                    .then(|| plan_rights_request(reps[me].state(), &store, &sale, None)),
                3 => plan_grants(reps[me].state(), &store).into_iter().next(),
                4 => {
                    let (from, to) = if me == 0 { (0, 1) } else { (1, 0) };
                    let snapshot = reps[from].clone();
                    sync(&snapshot, &log, &mut reps[to]);
                    None
                }
                _ => Some(Payload::StockReceive {
                    store: store.clone(), sku: sku(SKUS[step.sku as usize]), qty: step.qty,
                    reason: ReceiveReason::Delivery,
                }),
            };
            if let Some(p) = payload {
                if let Ok((op, _)) = reps[me].prepare(NOW, p) {
                    log.push(op);
                }
            }
        }
        // Everything meets, each replica in its own order.
        for r in reps.iter_mut() {
            for op in &log {
                r.apply(op).unwrap();
            }
        }
        for op in &log {
            hq.apply(op).unwrap();
        }
        let s = reps[0].state();
        for id in SALES {
            let sale = sale_id(id);
            for sk in SKUS {
                let sold = s.sold(&sale).unwrap().lines.iter().filter(|l| l.sku.as_str() == sk).map(|l| u64::from(l.qty)).sum::<u64>();
                let rets: Vec<&ReturnRecord> = s.returns.of_sale(&sale);
                let verified: u64 = rets.iter().filter(|r| r.verified).flat_map(|r| r.lines.iter()).filter(|l| l.sku.as_str() == sk).map(|l| u64::from(l.qty)).sum();
                let all: u64 = rets.iter().flat_map(|r| r.lines.iter()).filter(|l| l.sku.as_str() == sk).map(|l| u64::from(l.qty)).sum();
                prop_assert!(verified <= sold, "verified returns of {id} {sk}: {verified} > {sold}");
                prop_assert!(all <= sold || s.returns.double_returns.contains_key(&(sale.clone(), sku(sk))),
                    "{all} of {sold} units of {id} {sk} returned with no double_return");
            }
        }
        for (st_i, store) in [madrid(), sevilla()].iter().enumerate() {
            for sk in SKUS {
                let received: u64 = 20 + log.iter().filter_map(|op| match &op.payload {
                    Payload::StockReceive { store: x, sku: y, qty, .. } if x == store && y.as_str() == sk => Some(u64::from(*qty)),
                    _ => None,
                }).sum::<u64>();
                let returned: u64 = s.returns.returns.values().filter(|r| &r.store == store).flat_map(|r| r.lines.iter()).filter(|l| l.sku.as_str() == sk).map(|l| u64::from(l.qty)).sum();
                let sold: u64 = s.sales.values().filter(|x| &x.store == store).flat_map(|x| x.lines.iter()).filter(|l| l.sku.as_str() == sk).map(|l| u64::from(l.qty)).sum();
                let written_off = s.returns.written_off.get(&(store.clone(), sku(sk))).copied().unwrap_or(0);
                let available = reps[st_i].state().available(store, &sku(sk));
                prop_assert_eq!(received + returned, available as u64 + sold + s.reserved(store, &sku(sk)) + written_off,
                    "stock flow of {} {}", store, sk);
            }
        }
        let d = reps[0].digest();
        prop_assert_eq!(reps[1].digest(), d);
        prop_assert_eq!(hq.digest(), d);
    }
}
