//! The invariants checked after healing: every store's digest equals HQ's, the stock flow
//! holds (nothing sold or reserved beyond what was received, deliveries and transfers
//! included), units in motion are conserved, no forged op got in, no cancelled order is left
//! unreleased.

use super::net::Proto;
use super::{actions, Outcome, World};
use std::collections::BTreeMap;
use storenode::domain::order::OrderStatus;
use storenode::domain::{ActorId, StoreId};

impl World {
    pub(super) fn check_converged(&self) -> Outcome {
        let mut digests = Vec::new();
        for s in self.stores() {
            let store = self.nodes[s].actor.store().expect("store");
            let at_hq = self.nodes[0].backend.read(|r| r.digest_for_store(&store));
            let at_store = self.nodes[s].backend.read(|r| r.digest_for_store(&store));
            if at_hq != at_store {
                let hq_vv = self.nodes[0].backend.read(|r| r.version().entries());
                let st_vv = self.nodes[s].backend.read(|r| r.version().entries());
                let link = match &self.nodes[0].proto {
                    Proto::Hq(p) => {
                        format!("{:?}", p.links().into_iter().find(|l| l.store == store))
                    }
                    Proto::Store(_) => String::new(),
                };
                let cursors = self.nodes[s].backend.store_cursors();
                panic!(
                    "store {store} diverged from HQ\n  hq vv {hq_vv:?}\n  store vv {st_vv:?}\n  \
                     hq's link {link}\n  store cursors {cursors:?}\n  {:?}",
                    self.stats
                );
            }
            digests.push((store.to_string(), at_hq.short(), at_store.short()));
        }
        self.check_stock();
        self.check_motion();
        // No forged op (a seq the store never issued) got into HQ.
        for s in self.stores() {
            let actor = self.nodes[s].actor.clone();
            let last = self.nodes[s].backend.read(|r| r.next_seq()) - 1;
            let forged = self.nodes[0]
                .backend
                .read(|r| (last + 1..=last + 5_000).any(|seq| r.version().contains(&actor, seq)));
            assert!(!forged, "HQ accepted a forged op of {actor}");
        }
        for s in self.stores() {
            let store = self.nodes[s].actor.store().expect("store");
            let unreleased = self.nodes[s].backend.read(|r| {
                r.state()
                    .orders
                    .values()
                    .filter(|o| o.store == store && !o.released && !o.status.is_open())
                    .filter(|o| o.status != OrderStatus::HandedOver)
                    .count()
            });
            assert_eq!(unreleased, 0, "{store} left cancelled orders unreleased");
            let kept = self.nodes[s].backend.read(|r| {
                storenode::domain::ship_to_store::plan_withdrawals(r.state(), &store).len()
            });
            assert_eq!(
                kept, 0,
                "{store} did not take back the units of a cancelled ship-to-store order"
            );
        }
        // No forged down op (an HQ seq HQ never issued) got into a store.
        let hq_last = self.nodes[0].backend.read(|r| r.next_seq()) - 1;
        for s in self.stores() {
            let forged = self.nodes[s].backend.read(|r| {
                (hq_last + 1..=hq_last + 5_000).any(|seq| r.version().contains(&ActorId::hq(), seq))
            });
            assert!(!forged, "store {s} accepted a forged down-batch");
            // No forged ack moved the store's mark of what HQ holds past what it issued.
            let issued = self.nodes[s].backend.read(|r| r.next_seq()) - 1;
            let acked = self.nodes[s].backend.store_cursors().hq_acked;
            assert!(
                acked <= issued,
                "store {s} took a forged ack: {acked} > {issued}"
            );
        }
        let mut stats = self.stats.clone();
        self.check_returns(&mut stats);
        self.count_motion(&mut stats);
        stats.forged_rejected = self.hq_metrics.rejected_total();
        stats.forged_down_rejected = self
            .store_metrics
            .iter()
            .map(|m| m.rejected("down_unsigned") + m.rejected("down_bad_signature"))
            .sum();
        stats.forged_reply_rejected = self
            .store_metrics
            .iter()
            .map(|m| m.rejected("reply_unsigned") + m.rejected("reply_bad_signature"))
            .sum();
        Outcome { digests, stats }
    }

    /// At HQ, which holds every store's returns: no unit of a sale is returned verified more
    /// often than it was sold, and any excess (unverified returns taken while the holder was
    /// unreachable) is recorded as a `double_return` (DESIGN.md section 12).
    fn check_returns(&self, stats: &mut super::Stats) {
        self.nodes[0].backend.read(|r| {
            let s = r.state();
            let verified = s.returns.returns.values().filter(|x| x.verified).count() as u64;
            stats.returns_verified = verified;
            stats.returns_unverified = s.returns.returns.len() as u64 - verified;
            stats.double_returns = s.returns.double_returns.len() as u64;
            stats.rights_granted = s.returns.rights.len() as u64;
            let mut by_sale: BTreeMap<_, (u64, u64)> = BTreeMap::new();
            for ret in s.returns.returns.values() {
                for l in &ret.lines {
                    let e = by_sale
                        .entry((ret.sale.clone(), l.sku.clone()))
                        .or_default();
                    e.0 += u64::from(l.qty);
                    if ret.verified {
                        e.1 += u64::from(l.qty);
                    }
                }
            }
            // A discounted sale is never refunded more than was paid for a line by verified
            // returns (promotions and manual discounts, DESIGN.md §18).
            let mut refunded: BTreeMap<_, i64> = BTreeMap::new();
            for ret in s.returns.returns.values().filter(|x| x.verified) {
                for l in &ret.lines {
                    *refunded
                        .entry((ret.sale.clone(), l.sku.clone()))
                        .or_default() += l.refund_cents;
                }
            }
            for ((sale, sku), cents) in &refunded {
                let Some(record) = s.sales.get(sale).filter(|r| r.pricing.is_some()) else {
                    continue;
                };
                stats.discounted_returns += 1;
                let paid: i64 = record
                    .lines
                    .iter()
                    .zip(record.net_lines())
                    .filter(|(l, _)| &l.sku == sku)
                    .map(|(_, n)| n)
                    .sum();
                assert!(
                    *cents <= paid,
                    "{sale}/{sku}: {cents} refunded, {paid} paid after discounts"
                );
            }
            stats.discounted_sales =
                s.sales.values().filter(|r| r.pricing.is_some()).count() as u64;
            // Lines whose promotion reaches them through their category (as the promotion and
            // the catalog stand at the end: both may have been rewritten since).
            stats.category_promoted_lines = s
                .sales
                .values()
                .filter_map(|r| r.pricing.as_ref())
                .flat_map(|p| &p.lines)
                .filter(|d| {
                    let promo = d.promotion.as_ref().and_then(|id| s.promotions.get(id));
                    let category = s.catalog.category(&d.sku);
                    promo.is_some_and(|p| !p.skus.contains(&d.sku) && p.covers(&d.sku, category))
                })
                .count() as u64;
            for ((sale, sku), (all, verified)) in by_sale {
                let Some(sold) = s.sold(&sale) else { continue };
                let sold: u64 = sold
                    .lines
                    .iter()
                    .filter(|l| l.sku == sku)
                    .map(|l| u64::from(l.qty))
                    .sum();
                assert!(
                    verified <= sold,
                    "{sale}/{sku}: {verified} verified returns of {sold} sold"
                );
                assert!(
                    all <= sold
                        || s.returns
                            .double_returns
                            .contains_key(&(sale.clone(), sku.clone())),
                    "{sale}/{sku}: {all} units returned of {sold} sold, no double_return"
                );
            }
        });
    }

    /// From HQ's full log: per (store, sku), units sold, reserved and consumed never exceed
    /// units received plus units released, and the escrow counter agrees with that count.
    fn check_stock(&self) {
        let hq = &self.nodes[0].backend;
        let actors: Vec<ActorId> = hq.read(|r| r.version().entries().into_keys().collect());
        let mut flow: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        for actor in &actors {
            for op in hq.ops_since(actor, 0, usize::MAX >> 1) {
                actions::count_flow(&op, &mut flow);
            }
        }
        hq.read(|r| {
            let state = r.state();
            // A released order gives back the units it held at its store (for a ship-to-store
            // order, those that arrived).
            for o in state.orders.values().filter(|o| o.released) {
                for sku in o.lines.keys().filter(|k| o.units_here(k) > 0) {
                    let e = flow
                        .entry((o.store.to_string(), sku.to_string()))
                        .or_default();
                    e.0 += i64::from(o.units_here(sku));
                }
            }
            // A withdrawn ship-to-store transfer gives its units back to the sender.
            for m in state.transfers.values().filter(|m| m.withdrawn()) {
                let Some(sent) = m.sent.as_ref() else {
                    continue;
                };
                for l in &sent.lines {
                    let from = sent
                        .from
                        .as_ref()
                        .map(|f| f.to_string())
                        .unwrap_or_default();
                    flow.entry((from, l.sku.to_string())).or_default().0 += i64::from(l.qty);
                }
            }
            for ((store, sku), (into, out)) in &flow {
                assert!(
                    out <= into,
                    "{store}/{sku}: {out} units out of {into} received"
                );
                let s = StoreId::parse(store).expect("store");
                let k = storenode::domain::Sku::parse(sku).expect("sku");
                assert_eq!(state.available(&s, &k), into - out, "{store}/{sku} counter");
                let c = state.counter(&s, &k).unwrap_or_else(|| {
                    panic!("no counter for {store}/{sku}: {into} in, {out} out")
                });
                assert!(c.rights(&s.actor()) >= 0 && c.rights(&ActorId::hq()) >= 0);
            }
        });
    }
}

impl World {
    /// Units in motion are conserved (DESIGN.md §19): at HQ, every line of every delivery and
    /// transfer has `received + in_transit + lost = dispatched`; every store sees the deliveries and
    /// transfers it sends or receives exactly as HQ does; a ship-to-store order never holds or
    /// picks more than arrived for it.
    fn check_motion(&self) {
        let (shipments, transfers) = self.nodes[0].backend.read(|r| {
            let s = r.state();
            for m in s.shipments.values().chain(s.transfers.values()) {
                for b in m.balance() {
                    assert_eq!(
                        i64::from(b.received) + i64::from(b.in_transit) + b.lost,
                        i64::from(b.dispatched),
                        "{} {}: units created or lost in motion",
                        m.kind.as_str(),
                        m.id
                    );
                }
            }
            for o in s.orders.values().filter(|o| o.ship.is_some()) {
                for (sku, line) in &o.lines {
                    let here = o.units_here(sku);
                    assert!(here <= line.qty, "{}: {here} arrived of {}", o.id, line.qty);
                    assert!(
                        line.picked <= here,
                        "{}: picked {} of {here} arrived",
                        o.id,
                        line.picked
                    );
                }
            }
            (s.shipments.clone(), s.transfers.clone())
        });
        for st in self.stores() {
            let store = self.nodes[st].actor.store().expect("store");
            let mine = |m: &storenode::domain::motion::Movement| {
                m.to() == Some(&store)
                    || m.sent
                        .as_ref()
                        .is_some_and(|x| x.from.as_ref() == Some(&store))
            };
            self.nodes[st].backend.read(|r| {
                let s = r.state();
                for (theirs, ours) in [(&shipments, &s.shipments), (&transfers, &s.transfers)] {
                    let at_hq: Vec<_> = theirs.values().filter(|m| mine(m)).collect();
                    let here: Vec<_> = ours.values().filter(|m| mine(m)).collect();
                    assert_eq!(here, at_hq, "{store} sees its movements unlike HQ");
                }
            });
        }
    }

    fn count_motion(&self, stats: &mut super::Stats) {
        self.nodes[0].backend.read(|r| {
            let s = r.state();
            let received = |m: &&storenode::domain::motion::Movement| m.received.is_some();
            stats.shipments_received = s.shipments.values().filter(received).count() as u64;
            stats.transfers_received = s.transfers.values().filter(received).count() as u64;
            stats.transfers_short = s
                .transfers
                .values()
                .filter(|m| !m.discrepancies().is_empty())
                .count() as u64;
            let shipped = s.orders.values().filter(|o| o.ship.is_some());
            stats.ship_to_store_orders = shipped.clone().count() as u64;
            stats.ship_to_store_arrived = shipped
                .clone()
                .filter(|o| o.arrived.values().any(|n| *n > 0))
                .count() as u64;
            stats.ship_to_store_ready = shipped.clone().filter(|o| o.was_ready).count() as u64;
            let ended = |o: &&storenode::domain::order::Order, withdrawn: bool| {
                let t = o.ship.as_ref().and_then(|x| s.transfers.get(&x.transfer));
                t.and_then(|m| m.dispatch.as_ref())
                    .is_some_and(|d| d.withdrawn == withdrawn)
            };
            stats.ship_to_store_dispatched =
                shipped.clone().filter(|o| ended(o, false)).count() as u64;
            stats.ship_to_store_withdrawn =
                shipped.clone().filter(|o| ended(o, true)).count() as u64;
            stats.ship_to_store_handed_over = shipped
                .clone()
                .filter(|o| o.status == OrderStatus::HandedOver)
                .count() as u64;
            stats.ship_to_store_cancelled = shipped
                .filter(|o| matches!(o.status, OrderStatus::Cancelled | OrderStatus::Expired))
                .count() as u64;
        });
    }
}
