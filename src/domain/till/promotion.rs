//! Promotions: authored at HQ, replicated to every store ahead of time, one last-writer-wins
//! register per promotion (as the catalog). A promotion is percent off some skus, "N for M"
//! (3x2) or the second unit at a percent off, valid in `[starts_ms, ends_ms)` with a priority.
//! It reaches the skus it names and every sku of the categories it names (the catalog's
//! category of the sku when the ticket is priced; the sale records what was applied).
//!
//! `Promotion::check` is the single validation: HQ runs it before issuing a `PromotionPut`
//! and every replica runs it again in `validate`, so a malformed promotion never exists.

use crate::domain::catalog::Marker;
use crate::domain::ids::{Category, PromotionId, Sku};
use crdts::{CvRDT, LWWReg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most skus one promotion names.
pub const SKUS_MAX: usize = 500;
/// Longest promotion name.
pub const NAME_LEN_MAX: usize = 80;
/// 100 % in basis points.
pub const BP_FULL: u32 = 10_000;

/// What a promotion gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromotionKind {
    /// `bp` basis points off every unit.
    Percent { bp: u32 },
    /// Take `n`, pay `m` (`m < n`): in every full group of `n` units, `n - m` are free.
    NForM { n: u32, m: u32 },
    /// Every second unit (the 2nd, 4th, ...) at `bp` basis points off.
    SecondUnit { bp: u32 },
}

/// One promotion as HQ authored it (`PromotionSet`). `ends_ms` is exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub id: PromotionId,
    pub name: String,
    pub kind: PromotionKind,
    pub skus: Vec<Sku>,
    pub starts_ms: u64,
    pub ends_ms: u64,
    /// Higher wins when several promotions fit the same line.
    pub priority: u32,
    /// Every sku of these categories is covered too.
    pub categories: Vec<Category>,
}

/// A promotion as `PromotionPut` encodes it: skus only, the shape before categories. Kept so
/// the ops already in logs decode; HQ now issues `PromotionSet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuPromotion {
    pub id: PromotionId,
    pub name: String,
    pub kind: PromotionKind,
    pub skus: Vec<Sku>,
    pub starts_ms: u64,
    pub ends_ms: u64,
    pub priority: u32,
}

impl From<SkuPromotion> for Promotion {
    fn from(p: SkuPromotion) -> Promotion {
        Promotion {
            id: p.id,
            name: p.name,
            kind: p.kind,
            skus: p.skus,
            starts_ms: p.starts_ms,
            ends_ms: p.ends_ms,
            priority: p.priority,
            categories: Vec::new(),
        }
    }
}

/// Why a promotion was refused; `field()` names the API field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromotionError {
    /// `skus` and `categories` together name none or more than `SKUS_MAX`.
    #[error("skus and categories must name 1-{SKUS_MAX} between them, got {0}")]
    Skus(usize),
    /// A percent outside 0-100 (exclusive of 0).
    #[error("percent must be over 0 and at most 100, got {0} basis points")]
    Percent(u32),
    /// "N for M" needs `n >= 2` and `1 <= m < n`.
    #[error("n for m needs n >= 2 and 1 <= m < n, got n {n} m {m}")]
    NForM { n: u32, m: u32 },
    /// The date range is empty or inverted.
    #[error("ends {ends_ms} must be after starts {starts_ms}")]
    Range { starts_ms: u64, ends_ms: u64 },
    /// The name is longer than `NAME_LEN_MAX`.
    #[error("name must be at most {NAME_LEN_MAX} characters")]
    Name,
}

impl PromotionError {
    /// The API field this error is about.
    pub fn field(&self) -> &'static str {
        match self {
            PromotionError::Skus(_) => "skus",
            PromotionError::Percent(_) => "percent",
            PromotionError::NForM { .. } => "n",
            PromotionError::Range { .. } => "ends",
            PromotionError::Name => "name",
        }
    }
}

impl Promotion {
    /// Every rule a promotion must hold.
    pub fn check(&self) -> Result<(), PromotionError> {
        let targets = self.skus.len() + self.categories.len();
        if targets == 0 || targets > SKUS_MAX {
            return Err(PromotionError::Skus(targets));
        }
        if self.name.chars().count() > NAME_LEN_MAX {
            return Err(PromotionError::Name);
        }
        match self.kind {
            PromotionKind::Percent { bp } | PromotionKind::SecondUnit { bp }
                if bp == 0 || bp > BP_FULL =>
            {
                return Err(PromotionError::Percent(bp))
            }
            PromotionKind::NForM { n, m } if n < 2 || m == 0 || m >= n => {
                return Err(PromotionError::NForM { n, m })
            }
            _ => {}
        }
        if self.ends_ms <= self.starts_ms {
            return Err(PromotionError::Range {
                starts_ms: self.starts_ms,
                ends_ms: self.ends_ms,
            });
        }
        Ok(())
    }

    /// Valid at `now_ms` (`starts_ms <= now_ms < ends_ms`).
    pub fn active_at(&self, now_ms: u64) -> bool {
        self.starts_ms <= now_ms && now_ms < self.ends_ms
    }

    /// Applies to `sku`, named or through its `category`.
    pub fn covers(&self, sku: &Sku, category: Option<&Category>) -> bool {
        self.skus.contains(sku) || category.is_some_and(|c| self.categories.contains(c))
    }

    /// Cents off a line of `qty` units at `unit_cents` each (VAT included), never more than the
    /// line. Percentages round half up on the cent.
    pub fn discount_cents(&self, qty: u32, unit_cents: i64) -> i64 {
        let unit = unit_cents.max(0);
        let off = match self.kind {
            PromotionKind::Percent { bp } => percent_of(unit * i64::from(qty), bp),
            PromotionKind::NForM { n, m } => i64::from(qty / n) * i64::from(n - m) * unit,
            PromotionKind::SecondUnit { bp } => i64::from(qty / 2) * percent_of(unit, bp),
        };
        off.clamp(0, unit * i64::from(qty))
    }
}

/// `bp` basis points of `cents` (non-negative), rounded half up.
pub fn percent_of(cents: i64, bp: u32) -> i64 {
    let v = i128::from(cents.max(0)) * i128::from(bp);
    i64::try_from((v + 5_000) / 10_000).unwrap_or(i64::MAX)
}

/// Every promotion a replica knows, each a last-writer-wins register.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Promotions {
    regs: BTreeMap<PromotionId, LWWReg<Promotion, Marker>>,
}

impl Promotions {
    /// Merge a write; an older write changes nothing.
    pub fn put(&mut self, promotion: Promotion, marker: Marker) {
        let incoming = LWWReg {
            val: promotion,
            marker,
        };
        match self.regs.get_mut(&incoming.val.id) {
            Some(reg) => reg.merge(incoming),
            None => {
                self.regs.insert(incoming.val.id.clone(), incoming);
            }
        }
    }

    pub fn get(&self, id: &PromotionId) -> Option<&Promotion> {
        self.regs.get(id).map(|r| &r.val)
    }

    /// Every promotion, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Promotion> {
        self.regs.values().map(|r| &r.val)
    }

    /// Promotions valid at `now_ms` that cover `sku` (in `category`), in id order.
    pub fn eligible<'a>(
        &'a self,
        sku: &'a Sku,
        category: Option<&'a Category>,
        now_ms: u64,
    ) -> impl Iterator<Item = &'a Promotion> + 'a {
        self.iter()
            .filter(move |p| p.active_at(now_ms) && p.covers(sku, category))
    }
}
