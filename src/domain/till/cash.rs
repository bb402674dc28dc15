//! Cash sessions: a till's drawer opened with a float, cash in and out with a reason, closed
//! with a blind count; the X report (any time) and the Z report (at close) are derived here.
//!
//! A store has one or more tills, each with its own drawer: at most one open session per
//! (store, till). Only the store itself authors its session ops, and a session counts only
//! that store's own sales, returns and invoices taken at its till while it is open (a
//! `TakenAt` op names the till of a sale or return; none means `DEFAULT_TILL`, as every
//! sale before tills existed). Every replica applies a store's ops in that store's seq order,
//! so HQ attributes each sale to the same session as the store did: the reports are equal
//! everywhere, and a crash loses nothing the op log holds.

use super::pricing::SalePricing;
use crate::domain::error::DomainError;
use crate::domain::fiscal::record::vat_lines;
use crate::domain::fiscal::VatLine;
use crate::domain::ids::{CashSessionId, ReturnId, SaleId, StoreId, TillId};
use crate::domain::op::{SaleLine, Tender};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest float, movement or count (one million euros in cents).
pub const CASH_CENTS_MAX: i64 = 100_000_000;
/// Longest movement reason.
pub const REASON_LEN_MAX: usize = 200;
/// The till of a session opened with `CashOpen` and of a sale or return without `TakenAt`:
/// the one drawer every store had before it could have several.
pub const DEFAULT_TILL: &str = "T1";

/// `DEFAULT_TILL` as an id.
pub fn default_till() -> TillId {
    TillId::parse(DEFAULT_TILL).unwrap_or_else(|_| unreachable!("T1 is a valid till id"))
}

/// A document taken at a till: what a `TakenAt` op attributes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TillDoc {
    Sale(SaleId),
    Return(ReturnId),
}

/// Cash put into the drawer or taken out of it outside a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CashMoveKind {
    In,
    Out,
}

/// A movement as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashMovement {
    pub kind: CashMoveKind,
    pub cents: i64,
    pub reason: String,
    pub staff: String,
}

/// The close as recorded: the blind count and what the store expected then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CashClosed {
    pub counted_cents: i64,
    pub expected_cents: i64,
    pub closed_ms: u64,
    pub staff: String,
}

/// What a session took, accumulated as the store's ops are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SessionTotals {
    pub sales: u32,
    /// Paid for sales (after discounts) per tender.
    pub sales_by_tender: BTreeMap<Tender, i64>,
    pub returns: u32,
    /// Refunded per tender.
    pub refunds_by_tender: BTreeMap<Tender, i64>,
    pub discounts_cents: i64,
    /// Net VAT base and quota per rate: sales minus returns.
    pub vat: BTreeMap<u32, (i64, i64)>,
    pub first_invoice: Option<String>,
    pub last_invoice: Option<String>,
}

/// One drawer session of a store's till.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CashSession {
    pub id: CashSessionId,
    pub store: StoreId,
    pub till: TillId,
    pub float_cents: i64,
    pub opened_ms: u64,
    pub opened_by: String,
    pub movements: Vec<CashMovement>,
    pub totals: SessionTotals,
    pub closed: Option<CashClosed>,
}

impl CashSession {
    /// Cash that should be in the drawer: float + cash taken - cash refunded + in - out.
    pub fn expected_cents(&self) -> i64 {
        let t = &self.totals;
        let moved: i64 = self
            .movements
            .iter()
            .map(|m| match m.kind {
                CashMoveKind::In => m.cents,
                CashMoveKind::Out => -m.cents,
            })
            .sum();
        self.float_cents + t.sales_by_tender.get(&Tender::Cash).copied().unwrap_or(0)
            - t.refunds_by_tender.get(&Tender::Cash).copied().unwrap_or(0)
            + moved
    }

    /// The X report (open) or the Z report (closed).
    pub fn report(&self) -> CashReport {
        let t = &self.totals;
        let mut by_tender = BTreeMap::new();
        for (tender, cents) in &t.sales_by_tender {
            *by_tender.entry(*tender).or_insert(0) += cents;
        }
        for (tender, cents) in &t.refunds_by_tender {
            *by_tender.entry(*tender).or_insert(0) -= cents;
        }
        let sum = |kind| {
            self.movements
                .iter()
                .filter(|m| m.kind == kind)
                .map(|m| m.cents)
                .sum()
        };
        let expected_cents = self
            .closed
            .as_ref()
            .map_or_else(|| self.expected_cents(), |c| c.expected_cents);
        CashReport {
            id: self.id.clone(),
            store: self.store.clone(),
            till: self.till.clone(),
            opened_ms: self.opened_ms,
            closed_ms: self.closed.as_ref().map(|c| c.closed_ms),
            float_cents: self.float_cents,
            cash_in_cents: sum(CashMoveKind::In),
            cash_out_cents: sum(CashMoveKind::Out),
            sales: t.sales,
            sales_cents: t.sales_by_tender.values().sum(),
            returns: t.returns,
            returns_cents: t.refunds_by_tender.values().sum(),
            discounts_cents: t.discounts_cents,
            by_tender,
            vat: t
                .vat
                .iter()
                .map(|(bp, (base, cuota))| VatLine {
                    vat_bp: *bp,
                    base_cents: *base,
                    cuota_cents: *cuota,
                })
                .collect(),
            first_invoice: t.first_invoice.clone(),
            last_invoice: t.last_invoice.clone(),
            expected_cents,
            counted_cents: self.closed.as_ref().map(|c| c.counted_cents),
        }
    }
}

/// An X or Z report: the same figures, a Z has the count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CashReport {
    pub id: CashSessionId,
    pub store: StoreId,
    pub till: TillId,
    pub opened_ms: u64,
    pub closed_ms: Option<u64>,
    pub float_cents: i64,
    pub cash_in_cents: i64,
    pub cash_out_cents: i64,
    pub sales: u32,
    pub sales_cents: i64,
    pub returns: u32,
    pub returns_cents: i64,
    pub discounts_cents: i64,
    /// Net per tender: sales minus refunds.
    pub by_tender: BTreeMap<Tender, i64>,
    pub vat: Vec<VatLine>,
    pub first_invoice: Option<String>,
    pub last_invoice: Option<String>,
    pub expected_cents: i64,
    pub counted_cents: Option<i64>,
}

impl CashReport {
    /// Counted minus expected (negative: cash missing), once counted.
    pub fn difference_cents(&self) -> Option<i64> {
        self.counted_cents.map(|c| c - self.expected_cents)
    }
}

/// Every store's sessions, which one is open at each till, and where documents were taken.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CashBook {
    pub sessions: BTreeMap<CashSessionId, CashSession>,
    open: BTreeMap<(StoreId, TillId), CashSessionId>,
    /// Tills named by `TakenAt` for documents not applied yet (the op precedes its document).
    taken_at: BTreeMap<TillDoc, TillId>,
    /// The session the store's latest sale or return was counted in: its invoice follows it
    /// in the same transaction, so it is counted there too.
    last_doc: BTreeMap<StoreId, CashSessionId>,
}

impl CashBook {
    /// The till's open session, if any.
    pub fn current(&self, store: &StoreId, till: &TillId) -> Option<&CashSession> {
        self.open
            .get(&(store.clone(), till.clone()))
            .and_then(|id| self.sessions.get(id))
    }

    /// Every open session of the store, by till.
    pub fn open_of_store<'a>(
        &'a self,
        store: &'a StoreId,
    ) -> impl Iterator<Item = &'a CashSession> + 'a {
        self.open
            .iter()
            .filter(move |((s, _), _)| s == store)
            .filter_map(|(_, id)| self.sessions.get(id))
    }

    /// The store's sessions, oldest first.
    pub fn of_store<'a>(&'a self, store: &'a StoreId) -> impl Iterator<Item = &'a CashSession> {
        let mut v: Vec<&CashSession> = self
            .sessions
            .values()
            .filter(|s| &s.store == store)
            .collect();
        v.sort_by(|a, b| a.opened_ms.cmp(&b.opened_ms).then(a.id.cmp(&b.id)));
        v.into_iter()
    }

    /// Whether `id` is the open session of its till at `store`.
    pub fn is_open(&self, store: &StoreId, id: &CashSessionId) -> bool {
        self.sessions.get(id).is_some_and(|s| {
            &s.store == store && self.open.get(&(store.clone(), s.till.clone())) == Some(id)
        })
    }

    pub fn open(&mut self, store: &StoreId, till: &TillId, id: &CashSessionId, opening: Opening) {
        if self.sessions.contains_key(id) {
            return;
        }
        self.sessions.insert(
            id.clone(),
            CashSession {
                id: id.clone(),
                store: store.clone(),
                till: till.clone(),
                float_cents: opening.float_cents,
                opened_ms: opening.opened_ms,
                opened_by: opening.staff,
                movements: Vec::new(),
                totals: SessionTotals::default(),
                closed: None,
            },
        );
        self.open.insert((store.clone(), till.clone()), id.clone());
    }

    pub fn movement(&mut self, id: &CashSessionId, movement: CashMovement) {
        if let Some(s) = self.sessions.get_mut(id) {
            s.movements.push(movement);
        }
    }

    pub fn close(
        &mut self,
        store: &StoreId,
        id: &CashSessionId,
        counted_cents: i64,
        closed_ms: u64,
        staff: &str,
    ) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let expected_cents = s.expected_cents();
        s.closed.get_or_insert(CashClosed {
            counted_cents,
            expected_cents,
            closed_ms,
            staff: staff.to_string(),
        });
        let key = (store.clone(), s.till.clone());
        if self.open.get(&key) == Some(id) {
            self.open.remove(&key);
        }
    }

    /// A `TakenAt` op: `doc`, applied next, was taken at `till`.
    pub fn taken_at(&mut self, doc: TillDoc, till: &TillId) {
        self.taken_at.insert(doc, till.clone());
    }

    /// The open session at the till `doc` was taken at; remembered for its invoice.
    fn session_for(&mut self, store: &StoreId, doc: TillDoc) -> Option<&mut CashSession> {
        let till = self.taken_at.remove(&doc).unwrap_or_else(default_till);
        match self.open.get(&(store.clone(), till)) {
            Some(id) => {
                self.last_doc.insert(store.clone(), id.clone());
                self.sessions.get_mut(id)
            }
            None => {
                self.last_doc.remove(store);
                None
            }
        }
    }

    /// A sale of the store itself: counted in the open session of its till, if any.
    pub fn on_sale(&mut self, store: &StoreId, sale: &SaleId, taken: TakenSale<'_>) {
        let Some(s) = self.session_for(store, TillDoc::Sale(sale.clone())) else {
            return;
        };
        let t = &mut s.totals;
        t.sales += 1;
        *t.sales_by_tender.entry(taken.tender).or_insert(0) += taken.nets.iter().sum::<i64>();
        t.discounts_cents += taken.pricing.map_or(0, SalePricing::discount_cents);
        add_vat(
            &mut t.vat,
            taken
                .lines
                .iter()
                .zip(taken.nets)
                .map(|(l, n)| (*n, l.vat_bp)),
        );
    }

    /// A return taken by the store itself: `refunds` are `(cents, vat_bp)` per line.
    pub fn on_return(
        &mut self,
        store: &StoreId,
        id: &ReturnId,
        tender: Tender,
        refunds: &[(i64, u32)],
    ) {
        let Some(s) = self.session_for(store, TillDoc::Return(id.clone())) else {
            return;
        };
        let t = &mut s.totals;
        t.returns += 1;
        *t.refunds_by_tender.entry(tender).or_insert(0) += refunds.iter().map(|r| r.0).sum::<i64>();
        add_vat(&mut t.vat, refunds.iter().map(|(c, bp)| (-c, *bp)));
    }

    /// An invoice of the store itself: the first and last numbers of the session its sale or
    /// return was counted in.
    pub fn on_invoice(&mut self, store: &StoreId, numserie: String) {
        let Some(s) = self
            .last_doc
            .get(store)
            .and_then(|id| self.sessions.get_mut(id))
        else {
            return;
        };
        let t = &mut s.totals;
        if t.first_invoice.is_none() {
            t.first_invoice = Some(numserie.clone());
        }
        t.last_invoice = Some(numserie);
    }
}

/// How a session was opened.
#[derive(Debug, Clone)]
pub struct Opening {
    pub float_cents: i64,
    pub opened_ms: u64,
    pub staff: String,
}

/// A sale as a session counts it.
#[derive(Debug, Clone, Copy)]
pub struct TakenSale<'a> {
    pub tender: Tender,
    pub lines: &'a [SaleLine],
    /// Each line's net after its discounts.
    pub nets: &'a [i64],
    pub pricing: Option<&'a SalePricing>,
}

/// VAT of one document, computed as its invoice does, added per rate.
fn add_vat(vat: &mut BTreeMap<u32, (i64, i64)>, gross: impl Iterator<Item = (i64, u32)>) {
    for line in vat_lines(gross) {
        let e = vat.entry(line.vat_bp).or_insert((0, 0));
        e.0 += line.base_cents;
        e.1 += line.cuota_cents;
    }
}

/// Checks for the store's own session ops, before they exist.
pub fn check_open(
    book: &CashBook,
    store: &StoreId,
    till: &TillId,
    id: &CashSessionId,
    float_cents: i64,
) -> Result<(), DomainError> {
    if let Some(open) = book.current(store, till) {
        return Err(DomainError::CashSessionOpen(open.id.clone()));
    }
    if book.sessions.contains_key(id) {
        return Err(DomainError::InvalidField {
            field: "session",
            reason: format!("cash session {id} already exists"),
        });
    }
    cents("float_cents", float_cents, 0)
}

/// A movement or a close must name an open session of the store.
pub fn check_current(
    book: &CashBook,
    store: &StoreId,
    id: &CashSessionId,
) -> Result<(), DomainError> {
    if book.is_open(store, id) {
        Ok(())
    } else {
        Err(DomainError::NoCashSession)
    }
}

/// A movement: positive cents and a reason.
pub fn check_movement(cents_moved: i64, reason: &str) -> Result<(), DomainError> {
    cents("cents", cents_moved, 1)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_LEN_MAX {
        return Err(DomainError::InvalidField {
            field: "reason",
            reason: format!("a cash movement needs a reason of 1-{REASON_LEN_MAX} characters"),
        });
    }
    Ok(())
}

/// Amounts within `min..=CASH_CENTS_MAX`.
pub fn cents(field: &'static str, value: i64, min: i64) -> Result<(), DomainError> {
    if (min..=CASH_CENTS_MAX).contains(&value) {
        Ok(())
    } else {
        Err(DomainError::InvalidField {
            field,
            reason: format!("{field} must be {min}-{CASH_CENTS_MAX} cents, got {value}"),
        })
    }
}
