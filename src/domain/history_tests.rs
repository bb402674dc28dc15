//! History out of memory, property-tested: evicting sales at arbitrary points (and putting
//! them back before the ops that name them, as the store adapter does) changes no digest and
//! no answer to a return.

use super::history::sales_named;
use super::ids::*;
use super::op::*;
use super::replica::Replica;
use super::returns::{plan_return, ReturnAsk, ReturnPolicy};
use super::state::SaleRecord;
use super::tests::{run, steps, STORES};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A replica with the adapter's side of eviction: `kept` plays the history table.
struct Evicting {
    r: Replica,
    kept: BTreeMap<SaleId, SaleRecord>,
}

impl Evicting {
    fn new(r: Replica) -> Evicting {
        Evicting {
            r,
            kept: BTreeMap::new(),
        }
    }

    /// Put back every evicted sale `payload` names.
    fn recall(&mut self, payload: &Payload) {
        for id in sales_named(payload) {
            if let Some(record) = self.kept.get(id) {
                self.r.rehydrate_sale(record.clone());
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        self.recall(&op.payload);
        self.r.apply(op).unwrap();
    }

    fn prepare(&mut self, now_ms: u64, payload: Payload) -> Result<Op, super::DomainError> {
        self.recall(&payload);
        self.r.prepare(now_ms, payload).map(|(op, _)| op)
    }

    /// Evict the sales in memory that `pick` selects (one bit per sale).
    fn evict(&mut self, pick: u64) {
        let ids: Vec<SaleId> = self.r.state().sales.keys().cloned().collect();
        for (i, id) in ids.iter().enumerate() {
            if pick >> (i % 64) & 1 == 1 {
                if let Some(record) = self.r.evict_sale(id) {
                    self.kept.insert(id.clone(), record);
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

const DAY_MS: u64 = 86_400_000;
const NOW: u64 = 1_000 * DAY_MS;
const SALES: [&str; 3] = ["S1", "S2", "S3"];
const SKUS: [&str; 2] = ["SKU-A", "SKU-B"];

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}
fn madrid() -> StoreId {
    StoreId::parse(STORES[0]).unwrap()
}
fn sevilla() -> StoreId {
    StoreId::parse(STORES[1]).unwrap()
}

/// The catalog, stock at both stores and madrid's sales S1-S3, as ops.
fn sold_log() -> Vec<Op> {
    let mut hq = Replica::new(ActorId::hq());
    let mut m = Replica::new(madrid().actor());
    let mut log = Vec::new();
    for (s, e) in SKUS.iter().zip(["4006381333931", "8410000000016"]) {
        let put = Payload::CatalogPut {
            sku: sku(s),
            ean: Ean13::parse(e).unwrap(),
            name: format!("Producto {s}"),
            price_cents: 1_000,
            vat_bp: 2100,
        };
        log.push(hq.prepare(NOW, put).unwrap().0);
    }
    let mut s = Replica::new(sevilla().actor());
    for op in &log {
        m.apply(op).unwrap();
        s.apply(op).unwrap();
    }
    for r in [&mut m, &mut s] {
        for k in SKUS {
            let receive = Payload::StockReceive {
                store: r.actor().store().unwrap(),
                sku: sku(k),
                qty: 50,
                reason: ReceiveReason::Delivery,
            };
            log.push(r.prepare(NOW, receive).unwrap().0);
        }
    }
    for (i, id) in SALES.iter().enumerate() {
        let sale = Payload::Sale {
            store: madrid(),
            sale_id: SaleId::parse(id).unwrap(),
            lines: SKUS
                .iter()
                .map(|k| SaleLine {
                    sku: sku(k),
                    qty: 2 + i as u32,
                    unit_cents: 1_000,
                    vat_bp: 2100,
                })
                .collect(),
            tender: Tender::Cash,
            customer: Some(CustomerId::parse(&format!("C-000{i}")).unwrap()),
        };
        log.push(m.prepare(NOW, sale).unwrap().0);
    }
    log
}

/// A return of `qty` units of `k` from `sale`, taken at `store`.
fn ask(n: usize, sale: &str, k: &str, qty: u32) -> ReturnAsk {
    ReturnAsk {
        return_id: ReturnId::parse(&format!("R{n}")).unwrap(),
        sale: SaleId::parse(sale).unwrap(),
        sale_store: Some(madrid()),
        lines: vec![(sku(k), qty, true)],
        tender: Tender::Card,
        manager: true,
        now_ms: NOW,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any order, duplication or split of the ops, with sales evicted at arbitrary points on
    /// one replica, gives the digest of a replica that never evicts, whole and per store.
    #[test]
    fn evicting_sales_at_any_point_changes_no_digest(
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
        }
    }

    /// Verified returns at madrid and manager returns at sevilla (which may double-return),
    /// delivered to madrid late, in any order: a madrid that evicts its sales at arbitrary
    /// points answers every return as one that never evicts, and ends with the same returns,
    /// double returns and digest.
    #[test]
    fn evicting_sales_changes_no_answer_to_a_return(
        script in prop::collection::vec((any::<bool>(), 0usize..3, 0usize..2, 1u32..4, any::<u64>()), 1..30),
        seed in any::<u64>(),
    ) {
        let policy = ReturnPolicy { window_ms: 30 * DAY_MS, unverified_max_cents: 1_000_000 };
        let log = sold_log();
        let mut plain = Replica::new(madrid().actor());
        let mut sev = Replica::new(sevilla().actor());
        for op in &log {
            plain.apply(op).unwrap();
            sev.apply(op).unwrap();
        }
        let mut e = Evicting::new(plain.clone());
        e.evict(u64::MAX);
        let mut late = Vec::new();
        for (n, (at_madrid, sale, k, qty, pick)) in script.iter().enumerate() {
            let a = ask(n, SALES[*sale], SKUS[*k], *qty);
            if *at_madrid {
                let planned = plan_return(plain.state(), &madrid(), &policy, a.clone());
                e.recall(&Payload::Return {
                    store: madrid(), return_id: a.return_id.clone(), sale: a.sale.clone(),
                    sale_store: None, lines: Vec::new(), tender: Tender::Card, verified: true,
                    customer: None,
                });
                let evicted = plan_return(e.r.state(), &madrid(), &policy, a);
                prop_assert_eq!(&planned, &evicted);
                if let Ok(p) = planned {
                    let op = plain.prepare(NOW, p.clone()).unwrap().0;
                    prop_assert_eq!(e.prepare(NOW, p).unwrap(), op);
                }
            } else if let Ok(p) = plan_return(sev.state(), &sevilla(), &policy, a) {
                if let Ok((op, _)) = sev.prepare(NOW, p) {
                    late.push(op);
                }
            }
            e.evict(*pick);
        }
        for op in shuffled(&late, seed) {
            plain.apply(&op).unwrap();
            e.apply(&op);
            e.evict(seed);
        }
        for id in SALES {
            let sale = SaleId::parse(id).unwrap();
            if let Some(record) = e.kept.get(&sale) {
                e.r.rehydrate_sale(record.clone());
            }
            for k in SKUS {
                prop_assert_eq!(e.r.state().returnable(&sale, &sku(k)), plain.state().returnable(&sale, &sku(k)));
            }
        }
        prop_assert_eq!(&e.r.state().returns.double_returns, &plain.state().returns.double_returns);
        prop_assert_eq!(e.r.state().returns.returns.len(), plain.state().returns.returns.len());
        prop_assert_eq!(e.r.digest(), plain.digest());
    }
}
