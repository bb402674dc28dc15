//! Returns anywhere (DESIGN.md §12): who may return a sale's units, how much is left to return,
//! and the record of what came back.
//!
//! Exactly one replica at a time holds a sale's (or handed-over order's) *return rights*: first
//! the store that sold it, then whoever it handed them to (`ReturnRightsGranted`, numbered by
//! `epoch`, so the latest grant names the holder whatever order ops arrive in). Only the holder
//! issues *verified* returns, checked against its own state, which knows every return it
//! issued and the floor handed over with the rights: verified returns never exceed what was
//! sold. Anyone else may take an *unverified* return (a manager, within limits). When ops meet
//! and a sale's returned units exceed its sold units, a `double_return` is recorded as data,
//! derived from the set of ops, so every replica holding them records the same.

use super::hlc::Hlc;
use super::ids::{CustomerId, OrderId, ReturnId, SaleId, Sku, StoreId};
use super::op::{Op, Payload, ReturnLine, SaleLine, SoldSnapshot, Tender};
use super::order::OrderStatus;
use super::state::{Effect, State};
use serde::Serialize;
use std::collections::BTreeMap;

mod plan;
pub(crate) use plan::validate;
pub use plan::{plan_grants, plan_return, plan_rights_request};

/// A return as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReturnRecord {
    pub id: ReturnId,
    /// The receiving store.
    pub store: StoreId,
    pub sale: SaleId,
    pub sale_store: Option<StoreId>,
    pub lines: Vec<ReturnLine>,
    pub tender: Tender,
    pub verified: bool,
    pub customer: Option<CustomerId>,
    pub at: Hlc,
}

impl ReturnRecord {
    pub fn refund_cents(&self) -> i64 {
        self.lines.iter().map(|l| l.refund_cents).sum()
    }
}

/// The latest handover of a sale's return rights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RightsRecord {
    pub holder: StoreId,
    pub epoch: u32,
    pub sold: SoldSnapshot,
    /// Units returned before the handover, as the previous holder knew them.
    pub floor: BTreeMap<Sku, u32>,
}

/// More units of a sale's sku came back than were sold: a manager must be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DoubleReturn {
    pub sale: SaleId,
    pub sku: Sku,
    pub sold: u32,
    pub returned: u64,
    /// Every return of this sale naming the sku, in id order.
    pub returns: Vec<ReturnId>,
}

/// Everything a replica knows about returns.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ReturnBook {
    pub returns: BTreeMap<ReturnId, ReturnRecord>,
    by_sale: BTreeMap<SaleId, Vec<ReturnId>>,
    pub rights: BTreeMap<SaleId, RightsRecord>,
    /// Open requests for a sale's rights: asking store -> the epoch it knew.
    requests: BTreeMap<SaleId, BTreeMap<StoreId, u32>>,
    pub double_returns: BTreeMap<(SaleId, Sku), DoubleReturn>,
    /// Units written off per (store, sku): damaged returns and damaged stock.
    pub written_off: BTreeMap<(StoreId, Sku), u64>,
}

impl ReturnBook {
    /// Returns of a sale, in id order.
    pub fn of_sale(&self, sale: &SaleId) -> Vec<&ReturnRecord> {
        let mut out: Vec<&ReturnRecord> = self
            .by_sale
            .get(sale)
            .into_iter()
            .flatten()
            .filter_map(|id| self.returns.get(id))
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// The handover count `by` knew when it last asked for the sale's rights.
    pub fn requested(&self, sale: &SaleId, by: &StoreId) -> Option<u32> {
        self.requests.get(sale)?.get(by).copied()
    }

    pub fn write_off(&mut self, store: &StoreId, sku: &Sku, qty: u32) {
        *self
            .written_off
            .entry((store.clone(), sku.clone()))
            .or_default() += u64::from(qty);
    }
}

/// Limits on returns from the store's config (`[returns]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReturnPolicy {
    /// A sale may be returned this long after it was made.
    pub window_ms: u64,
    /// Largest refund of one unverified return (taken by a manager).
    pub unverified_max_cents: i64,
}

impl Default for ReturnPolicy {
    fn default() -> Self {
        ReturnPolicy {
            window_ms: 30 * 86_400_000,
            unverified_max_cents: 10_000,
        }
    }
}

/// A return as the counter asks for it.
#[derive(Debug, Clone)]
pub struct ReturnAsk {
    pub return_id: ReturnId,
    pub sale: SaleId,
    /// The selling store when the counter knows it (a receipt scan, a history line).
    pub sale_store: Option<StoreId>,
    /// (sku, qty, restock).
    pub lines: Vec<(Sku, u32, bool)>,
    pub tender: Tender,
    /// The session has the manager role.
    pub manager: bool,
    pub now_ms: u64,
}

/// Milliseconds since the epoch in a till sale id (`S<ms>-<hex>`), if it has that form.
pub fn sale_id_time_ms(sale: &SaleId) -> Option<u64> {
    let rest = sale.as_str().strip_prefix('S')?;
    let (ms, _) = rest.split_once('-')?;
    ms.parse().ok()
}

impl State {
    /// What a sale (or handed-over order) sold, as this replica knows it. Order lines are
    /// priced from the catalog: orders record no price.
    pub fn sold(&self, sale: &SaleId) -> Option<SoldSnapshot> {
        if let Some(s) = self.sales.get(sale) {
            // A discounted line hands on what was paid per unit (rounded down), so a return
            // at another store never refunds more than was paid.
            let mut lines = s.lines.clone();
            if s.pricing.is_some() {
                for (l, net) in lines.iter_mut().zip(s.net_lines()) {
                    l.unit_cents = net / i64::from(l.qty.max(1));
                }
            }
            return Some(SoldSnapshot {
                store: s.store.clone(),
                lines,
                at_ms: s.at.wall_ms(),
                tender: s.tender,
                customer: s.customer.clone(),
                invoice: self.sold_invoice(sale),
            });
        }
        let order = OrderId::parse(sale.as_str())
            .ok()
            .and_then(|id| self.orders.get(&id))
            .filter(|o| o.status == OrderStatus::HandedOver);
        if let Some(o) = order {
            let lines = o
                .lines
                .iter()
                .map(|(sku, l)| {
                    let p = self.catalog.get(sku);
                    SaleLine {
                        sku: sku.clone(),
                        qty: l.qty,
                        unit_cents: p.map_or(0, |p| p.price_cents),
                        vat_bp: p.map_or(0, |p| p.vat_bp),
                    }
                })
                .collect();
            return Some(SoldSnapshot {
                store: o.store.clone(),
                lines,
                at_ms: o.placed_at_ms,
                tender: Tender::Card,
                customer: Some(o.customer.clone()),
                invoice: self.sold_invoice(sale),
            });
        }
        self.returns.rights.get(sale).map(|r| r.sold.clone())
    }

    /// The invoice issued for the sale in any fiscal chain held here.
    fn sold_invoice(&self, sale: &SaleId) -> Option<super::op::SoldInvoice> {
        self.fiscal
            .values()
            .find_map(|c| c.invoice_for(sale.as_str()))
            .map(super::op::SoldInvoice::of)
    }

    /// Units of `sku` the sale sold, from the op that created it (never changes).
    fn sold_qty(&self, sale: &SaleId, sku: &Sku) -> Option<u32> {
        if let Some(s) = self.sales.get(sale) {
            return Some(
                s.lines
                    .iter()
                    .filter(|l| &l.sku == sku)
                    .map(|l| l.qty)
                    .sum(),
            );
        }
        if let Some(o) = OrderId::parse(sale.as_str())
            .ok()
            .and_then(|id| self.orders.get(&id))
        {
            return Some(o.lines.get(sku).map_or(0, |l| l.qty));
        }
        let r = self.returns.rights.get(sale)?;
        Some(
            r.sold
                .lines
                .iter()
                .filter(|l| &l.sku == sku)
                .map(|l| l.qty)
                .sum(),
        )
    }

    /// The store holding the sale's return rights, if the sale is known here.
    pub fn return_holder(&self, sale: &SaleId) -> Option<StoreId> {
        if let Some(r) = self.returns.rights.get(sale) {
            return Some(r.holder.clone());
        }
        self.sold(sale).map(|s| s.store)
    }

    /// Another store asked for the sale's rights at the current epoch and was not granted
    /// them yet: the holder's `plan_grants` still needs the sale.
    pub(crate) fn rights_asked(&self, sale: &SaleId) -> bool {
        let epoch = self.return_epoch(sale);
        self.returns
            .requests
            .get(sale)
            .is_some_and(|askers| askers.values().any(|e| *e == epoch))
    }

    /// How many times the sale's rights were handed over, as known here.
    pub fn return_epoch(&self, sale: &SaleId) -> u32 {
        self.returns.rights.get(sale).map_or(0, |r| r.epoch)
    }

    /// Units of `sku` returned from the sale: every return seen here, and at least what the
    /// last handover said.
    pub fn returned_qty(&self, sale: &SaleId, sku: &Sku) -> u64 {
        let seen: u64 = self
            .returns
            .of_sale(sale)
            .iter()
            .flat_map(|r| r.lines.iter())
            .filter(|l| &l.sku == sku)
            .map(|l| u64::from(l.qty))
            .sum();
        let floor = self
            .returns
            .rights
            .get(sale)
            .and_then(|r| r.floor.get(sku))
            .map_or(0, |n| u64::from(*n));
        seen.max(floor)
    }

    /// Units of `sku` still returnable from the sale, as known here.
    /// The refund for `qty` more units of a discounted sale known here, cent-exact: the
    /// first `r` units returned are refunded `floor(net * r / sold)` in all, so returning
    /// every unit refunds exactly what the line was paid. `None` for sales without
    /// discounts or not known here (their unit price applies).
    pub fn discounted_refund(&self, sale: &SaleId, sku: &Sku, qty: u32) -> Option<i64> {
        let s = self.sales.get(sale).filter(|s| s.pricing.is_some())?;
        let (i, line) = s.lines.iter().enumerate().find(|(_, l)| &l.sku == sku)?;
        let net = i128::from(*s.net_lines().get(i)?);
        let sold = u64::from(line.qty.max(1));
        let before = self.returned_qty(sale, sku).min(sold);
        let after = (before + u64::from(qty)).min(sold);
        let paid = |n: u64| net * i128::from(n) / i128::from(sold);
        i64::try_from(paid(after) - paid(before)).ok()
    }

    pub fn returnable(&self, sale: &SaleId, sku: &Sku) -> Option<u32> {
        let sold = self.sold_qty(sale, sku)?;
        Some(sold.saturating_sub(self.returned_qty(sale, sku).min(u64::from(u32::MAX)) as u32))
    }

    pub(crate) fn merge_return(&mut self, op: &Op, effects: &mut Vec<Effect>) {
        let Payload::Return {
            store,
            return_id,
            sale,
            sale_store,
            lines,
            tender,
            verified,
            customer,
        } = &op.payload
        else {
            return;
        };
        for line in lines {
            if line.restock {
                self.create_units(store, &line.sku, &op.actor, line.qty, effects);
            } else {
                self.returns.write_off(store, &line.sku, line.qty);
            }
        }
        self.returns.returns.insert(
            return_id.clone(),
            ReturnRecord {
                id: return_id.clone(),
                store: store.clone(),
                sale: sale.clone(),
                sale_store: sale_store.clone(),
                lines: lines.clone(),
                tender: *tender,
                verified: *verified,
                customer: customer.clone(),
                at: op.hlc,
            },
        );
        self.returns
            .by_sale
            .entry(sale.clone())
            .or_default()
            .push(return_id.clone());
        self.recheck_double_returns(sale);
    }

    pub(crate) fn merge_rights_request(&mut self, sale: &SaleId, by: &StoreId, epoch: u32) {
        let seen = self
            .returns
            .requests
            .entry(sale.clone())
            .or_default()
            .entry(by.clone())
            .or_default();
        *seen = (*seen).max(epoch);
    }

    pub(crate) fn merge_rights_grant(&mut self, payload: &Payload) {
        let Payload::ReturnRightsGranted {
            sale,
            to,
            epoch,
            sold,
            returned,
            ..
        } = payload
        else {
            return;
        };
        if self.return_epoch(sale) >= *epoch && self.returns.rights.contains_key(sale) {
            return;
        }
        self.returns.rights.insert(
            sale.clone(),
            RightsRecord {
                holder: to.clone(),
                epoch: *epoch,
                sold: sold.clone(),
                floor: returned.iter().cloned().collect(),
            },
        );
        self.recheck_double_returns(sale);
    }

    /// Record (or refresh) a `double_return` for every sku of the sale returned more often
    /// than sold. A function of the ops held, so every replica holding them agrees.
    pub(crate) fn recheck_double_returns(&mut self, sale: &SaleId) {
        let records = self.returns.of_sale(sale);
        let mut by_sku: BTreeMap<Sku, (u64, Vec<ReturnId>)> = BTreeMap::new();
        for r in records {
            for l in &r.lines {
                let e = by_sku.entry(l.sku.clone()).or_default();
                e.0 += u64::from(l.qty);
                if !e.1.contains(&r.id) {
                    e.1.push(r.id.clone());
                }
            }
        }
        for (sku, (returned, returns)) in by_sku {
            let Some(sold) = self.sold_qty(sale, &sku) else {
                continue;
            };
            let key = (sale.clone(), sku.clone());
            if returned > u64::from(sold) {
                self.returns.double_returns.insert(
                    key,
                    DoubleReturn {
                        sale: sale.clone(),
                        sku,
                        sold,
                        returned,
                        returns,
                    },
                );
            } else {
                self.returns.double_returns.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests;
