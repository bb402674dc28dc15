//! Orders out of memory, property-tested: evicting finished orders at arbitrary points (and
//! putting them back before the ops that name them, as the store adapter does) changes no
//! digest and no answer a store gives about its orders.

use super::conflict::conflicts;
use super::history::{orders_named, sales_named};
use super::ids::*;
use super::op::*;
use super::order::Order;
use super::reaction::plan_releases;
use super::replica::Replica;
use super::returns::{plan_return, ReturnAsk, ReturnPolicy};
use super::state::SaleRecord;
use super::tests::{run, steps, STORES};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A replica with the adapter's side of eviction: the maps play the history tables.
#[derive(Clone)]
struct Evicting {
    r: Replica,
    orders: BTreeMap<OrderId, Order>,
    sales: BTreeMap<SaleId, SaleRecord>,
}

impl Evicting {
    fn new(r: Replica) -> Evicting {
        Evicting {
            r,
            orders: BTreeMap::new(),
            sales: BTreeMap::new(),
        }
    }

    /// Put back every evicted order and sale `payload` names.
    fn recall(&mut self, payload: &Payload) {
        for id in orders_named(self.r.state(), payload) {
            if let Some(record) = self.orders.get(&id) {
                self.r.rehydrate_order(record.clone());
            }
        }
        for id in sales_named(payload) {
            if let Some(record) = self.sales.get(id) {
                self.r.rehydrate_sale(record.clone());
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        self.recall(&op.payload);
        self.r.apply(op).unwrap();
    }

    fn prepare(&mut self, now_ms: u64, payload: Payload) -> Result<Op, String> {
        self.recall(&payload);
        self.r
            .prepare(now_ms, payload)
            .map(|(op, _)| op)
            .map_err(|e| format!("{e:?}"))
    }

    /// Evict the orders and sales in memory that `pick` selects (one bit per record).
    fn evict(&mut self, pick: u64) {
        let ids: Vec<OrderId> = self.r.state().orders.keys().cloned().collect();
        for (i, id) in ids.iter().enumerate() {
            if pick >> (i % 64) & 1 == 1 {
                if let Some(record) = self.r.evict_order(id) {
                    self.orders.insert(id.clone(), record);
                }
            }
        }
        let ids: Vec<SaleId> = self.r.state().sales.keys().cloned().collect();
        for (i, id) in ids.iter().enumerate() {
            if pick.rotate_left(17) >> (i % 64) & 1 == 1 {
                if let Some(record) = self.r.evict_sale(id) {
                    self.sales.insert(id.clone(), record);
                }
            }
        }
    }
}

fn observer() -> Replica {
    Replica::new(ActorId::parse("store:observer").unwrap())
}

fn shuffled(log: &[Op], seed: u64) -> Vec<Op> {
    let mut rng = seed;
    let mut out = log.to_vec();
    for i in (1..out.len()).rev() {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.swap(i, (rng >> 33) as usize % (i + 1));
    }
    out
}

/// Everything a store might be asked to do with `order` (each may be refused).
fn order_asks(store: &StoreId, o: &Order, k: usize) -> Vec<Payload> {
    let order_id = o.id.clone();
    let mut out: Vec<Payload> = [Advance::Picking, Advance::Ready, Advance::HandedOver]
        .into_iter()
        .map(|to| Payload::OrderAdvance {
            order_id: order_id.clone(),
            store: store.clone(),
            to,
        })
        .collect();
    for kind in [CancelKind::Cancelled, CancelKind::Expired] {
        out.push(Payload::OrderCancel {
            order_id: order_id.clone(),
            store: store.clone(),
            kind,
        });
    }
    out.push(Payload::OrderRelease {
        order_id: order_id.clone(),
        store: store.clone(),
    });
    if let Some((sku, line)) = o.lines.iter().next() {
        out.push(Payload::OrderPick {
            order_id: order_id.clone(),
            store: store.clone(),
            sku: sku.clone(),
            picked: line.qty,
        });
    }
    out.push(Payload::OrderPlace {
        order_id,
        store: store.clone(),
        customer: o.customer.clone(),
        lines: Vec::new(),
        pickup_code: format!("K{k}"),
        placed_at_ms: 5,
    });
    out
}

/// A return of one unit of each line of `o`, taken at `store` against the order's id.
fn return_ask(store: &StoreId, o: &Order, k: usize) -> ReturnAsk {
    ReturnAsk {
        return_id: ReturnId::parse(&format!("R-{k}")).unwrap(),
        sale: SaleId::parse(o.id.as_str()).unwrap(),
        sale_store: Some(store.clone()),
        lines: o.lines.keys().map(|s| (s.clone(), 1, true)).collect(),
        tender: Tender::Card,
        manager: true,
        now_ms: 50,
    }
}

/// The answers a store gives without an op: releases to issue, reserved units, the inbox.
fn answers(r: &Replica, store: &StoreId) -> String {
    let s = r.state();
    let reserved: Vec<_> = s
        .stock
        .keys()
        .map(|(st, sku)| (st.clone(), s.reserved(st, sku), s.on_hand(st, sku)))
        .collect();
    let open: Vec<_> = conflicts(s, Some(store))
        .into_iter()
        .filter(|c| c.resolution.is_none())
        .map(|c| c.id)
        .collect();
    format!(
        "{:?} {:?} {:?} {:?}",
        plan_releases(s, store),
        reserved,
        open,
        s.overdue_orders(store, 1_000_000, 10)
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any order, duplication or split of the ops, with finished orders (and closed sales)
    /// evicted at arbitrary points on one replica and late ops naming them, gives the digest
    /// and the scope of a replica that never evicts, whole and per store.
    #[test]
    fn evicting_orders_at_any_point_changes_no_digest(
        schedule in steps(),
        seed in any::<u64>(),
        picks in prop::collection::vec(any::<u64>(), 1..8),
    ) {
        let (_, log) = run(&schedule);
        let mut reference = observer();
        for op in &log {
            reference.apply(op).unwrap();
        }
        let mut ops = shuffled(&log, seed);
        ops.extend(log.iter().rev().cloned());
        let mut e = Evicting::new(observer());
        let every = ops.len() / picks.len() + 1;
        for (i, op) in ops.iter().enumerate() {
            e.apply(op);
            if i % every == every - 1 {
                e.evict(picks[i / every]);
            }
        }
        e.evict(u64::MAX);
        prop_assert_eq!(e.r.digest(), reference.digest());
        for s in STORES {
            let s = StoreId::parse(s).unwrap();
            prop_assert_eq!(e.r.digest_for_store(&s), reference.digest_for_store(&s));
            prop_assert_eq!(e.r.state().customers_in_scope(&s), reference.state().customers_in_scope(&s));
            prop_assert_eq!(answers(&e.r, &s), answers(&reference, &s));
        }
    }

    /// Each store of a random run, twinned with one that evicts its finished orders at
    /// arbitrary points, gives the same answer to every order op it might be asked for (late
    /// handovers, cancels, releases, picks, a reused id), to a return against each order, and
    /// to releases, reserved units and the inbox; both end with one digest.
    #[test]
    fn evicting_orders_changes_no_answer_a_store_gives(
        schedule in steps(),
        picks in prop::collection::vec(any::<u64>(), 1..16),
    ) {
        let policy = ReturnPolicy::default();
        let (replicas, _) = run(&schedule);
        for mut plain in replicas.into_iter().filter(|r| r.actor().store().is_some()) {
            let store = plain.actor().store().unwrap();
            let mut e = Evicting::new(plain.clone());
            e.evict(picks[0]);
            let ids: Vec<OrderId> = plain.state().orders.keys().cloned().collect();
            for (k, id) in ids.iter().enumerate() {
                let Some(o) = plain.state().orders.get(id).cloned() else { continue };
                let ask = return_ask(&store, &o, k);
                let planned = plan_return(plain.state(), &store, &policy, ask.clone());
                e.recall(&Payload::Return {
                    store: store.clone(), return_id: ask.return_id.clone(), sale: ask.sale.clone(),
                    sale_store: None, lines: Vec::new(), tender: Tender::Card, verified: true,
                    customer: None,
                });
                prop_assert_eq!(&plan_return(e.r.state(), &store, &policy, ask), &planned);
                for (n, p) in order_asks(&store, &o, k).into_iter().enumerate() {
                    let want = plain.prepare(20, p.clone()).map(|(op, _)| op).map_err(|e| format!("{e:?}"));
                    prop_assert_eq!(e.prepare(20, p), want);
                    e.evict(picks[(k + n) % picks.len()]);
                }
                prop_assert_eq!(answers(&e.r, &store), answers(&plain, &store));
            }
            prop_assert_eq!(e.r.digest(), plain.digest());
        }
    }
}
