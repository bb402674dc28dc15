//! Pricing a till ticket: promotions, manual line discounts and a ticket discount, applied in
//! a fixed order with cent-exact rounding, so the same ticket gives the same cents everywhere.
//!
//! Per line, all amounts VAT included, in integer cents:
//! 1. `gross = unit_cents * qty`.
//! 2. The promotion: of those valid now that cover the sku (by name or by its category), the
//!    one with the highest priority; among equal priorities the largest discount; then the
//!    smallest id. One promotion per line, never stacked: a sku promotion and a category
//!    promotion compete on the same terms. Percentages round half up on the cent.
//! 3. The manual line discount: `discount_pct` of what is left, rounded half up.
//! 4. The ticket discount: `ticket_discount_pct` of the ticket after steps 1-3, rounded half up,
//!    spread over the lines in proportion to what each has left: each line takes the floor of
//!    its share, and the cents still missing go one each to the lines with the largest
//!    remainders (ties to the earlier line). No cent is lost or invented: the lines' nets add
//!    up to the ticket's total exactly, and no line goes below zero.
//!
//! VAT is computed on each line's net (`fiscal::vat_lines`), so base + VAT = total per rate.

use super::promotion::{percent_of, Promotions, BP_FULL};
use crate::domain::ids::{Category, PromotionId, Sku};
use crate::domain::op::SaleLine;
use serde::{Deserialize, Serialize};

/// A ticket line as scanned: catalog price and the associate's discount, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TillLine {
    pub sku: Sku,
    pub qty: u32,
    pub unit_cents: i64,
    pub vat_bp: u32,
    /// Manual line discount in basis points (0-10,000).
    pub manual_bp: u32,
    /// The sku's category in the catalog, if any.
    pub category: Option<Category>,
}

/// What was taken off one line, as the sale records it (same order as the sale's lines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineDiscount {
    pub sku: Sku,
    pub promotion: Option<PromotionId>,
    pub promotion_cents: i64,
    pub manual_bp: u32,
    pub manual_cents: i64,
    pub ticket_cents: i64,
}

impl LineDiscount {
    /// Everything taken off this line.
    pub fn cents(&self) -> i64 {
        self.promotion_cents + self.manual_cents + self.ticket_cents
    }
}

/// The prices and discounts of a sale as applied at the till; a later change to a promotion
/// never changes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalePricing {
    pub lines: Vec<LineDiscount>,
    /// Ticket discount in basis points.
    pub ticket_bp: u32,
    /// The manager who approved discounts over the associate's limit.
    pub approved_by: Option<String>,
}

impl SalePricing {
    /// Every cent taken off the ticket.
    pub fn discount_cents(&self) -> i64 {
        self.lines.iter().map(LineDiscount::cents).sum()
    }

    /// Whether anything was taken off at all.
    pub fn is_empty(&self) -> bool {
        self.discount_cents() == 0 && self.lines.iter().all(|l| l.manual_bp == 0)
    }

    /// The largest manual percent given (line or ticket), in basis points.
    pub fn manual_bp_max(&self) -> u32 {
        self.lines
            .iter()
            .map(|l| l.manual_bp)
            .chain(std::iter::once(self.ticket_bp))
            .max()
            .unwrap_or(0)
    }
}

/// Price a ticket at `now_ms` (see the module doc for the order and the rounding).
pub fn price(
    promotions: &Promotions,
    now_ms: u64,
    lines: &[TillLine],
    ticket_bp: u32,
) -> SalePricing {
    let mut out: Vec<LineDiscount> = lines
        .iter()
        .map(|l| {
            let gross = l.unit_cents.max(0) * i64::from(l.qty);
            let best = promotions
                .eligible(&l.sku, l.category.as_ref(), now_ms)
                .map(|p| (p, p.discount_cents(l.qty, l.unit_cents)))
                .max_by(|(a, da), (b, db)| {
                    a.priority
                        .cmp(&b.priority)
                        .then(da.cmp(db))
                        .then(b.id.cmp(&a.id))
                });
            let (promotion, promotion_cents) = match best {
                Some((p, d)) if d > 0 => (Some(p.id.clone()), d),
                _ => (None, 0),
            };
            let manual_bp = l.manual_bp.min(BP_FULL);
            let manual_cents = percent_of(gross - promotion_cents, manual_bp);
            LineDiscount {
                sku: l.sku.clone(),
                promotion,
                promotion_cents,
                manual_bp,
                manual_cents,
                ticket_cents: 0,
            }
        })
        .collect();
    let nets: Vec<i64> = lines
        .iter()
        .zip(&out)
        .map(|(l, d)| l.unit_cents.max(0) * i64::from(l.qty) - d.cents())
        .collect();
    let ticket_bp = ticket_bp.min(BP_FULL);
    for (d, share) in out.iter_mut().zip(spread(&nets, ticket_bp)) {
        d.ticket_cents = share;
    }
    SalePricing {
        lines: out,
        ticket_bp,
        approved_by: None,
    }
}

/// `bp` of the sum of `nets`, spread in proportion to each (largest remainder, ties to the
/// earlier line). The shares add up to exactly `percent_of(sum, bp)`, each at most its net.
fn spread(nets: &[i64], bp: u32) -> Vec<i64> {
    let total: i64 = nets.iter().map(|n| (*n).max(0)).sum();
    let off = percent_of(total, bp).min(total);
    if off == 0 || total == 0 {
        return vec![0; nets.len()];
    }
    let mut shares = Vec::with_capacity(nets.len());
    let mut remainders = Vec::with_capacity(nets.len());
    for (i, n) in nets.iter().enumerate() {
        let exact = i128::from(off) * i128::from((*n).max(0));
        shares.push(i64::try_from(exact / i128::from(total)).unwrap_or(0));
        remainders.push((exact % i128::from(total), i));
    }
    let missing = off - shares.iter().sum::<i64>();
    remainders.sort_by(|(ra, ia), (rb, ib)| rb.cmp(ra).then(ia.cmp(ib)));
    for (_, i) in remainders
        .into_iter()
        .take(usize::try_from(missing).unwrap_or(0))
    {
        shares[i] += 1;
    }
    shares
}

/// Each sale line's net cents (what was paid for it), given the pricing recorded with it.
/// Pricing that does not match a line (another sku at that place) takes nothing off it, and no
/// line goes below zero.
pub fn net_lines(lines: &[SaleLine], pricing: Option<&SalePricing>) -> Vec<i64> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let gross = l.unit_cents * i64::from(l.qty);
            let Some(p) = pricing else {
                return gross;
            };
            let off = Some(p)
                .and_then(|p| p.lines.get(i))
                .filter(|d| d.sku == l.sku)
                .map_or(0, LineDiscount::cents);
            (gross - off.clamp(0, gross.max(0))).max(0)
        })
        .collect()
}
