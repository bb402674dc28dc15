//! The till as shops run it (DESIGN.md §18): promotions authored at HQ, the pricing of a
//! ticket with promotions and manual discounts, and cash sessions with their X and Z reports.
//! Pure like the rest of `domain`: time comes in as arguments.

pub mod cash;
pub mod pricing;
pub mod promotion;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tills_tests;

pub use cash::{
    default_till, CashBook, CashMoveKind, CashMovement, CashReport, CashSession, TillDoc,
    DEFAULT_TILL,
};
pub use pricing::{price, LineDiscount, SalePricing, TillLine};
pub use promotion::{Promotion, PromotionError, PromotionKind, Promotions, SkuPromotion};

use super::error::DomainError;
use super::op::Payload;
use super::state::State;

fn check_promotion(promotion: &Promotion) -> Result<(), DomainError> {
    promotion.check().map_err(|e| DomainError::InvalidField {
        field: e.field(),
        reason: e.to_string(),
    })
}

/// The checks run before a till op is issued (promotions at HQ, the rest at the store).
pub fn check(state: &State, payload: &Payload) -> Result<(), DomainError> {
    match payload {
        Payload::PromotionPut { promotion } => check_promotion(&promotion.clone().into()),
        Payload::PromotionSet { promotion } => check_promotion(promotion),
        Payload::SalePriced {
            sale_id, pricing, ..
        } => {
            if state.sales.contains_key(sale_id) {
                return Err(DomainError::DuplicateSale(sale_id.clone()));
            }
            let bad = pricing.ticket_bp > promotion::BP_FULL
                || pricing.lines.iter().any(|l| {
                    l.manual_bp > promotion::BP_FULL
                        || l.promotion_cents < 0
                        || l.manual_cents < 0
                        || l.ticket_cents < 0
                });
            if bad {
                return Err(DomainError::InvalidField {
                    field: "discount_pct",
                    reason: "discounts must be 0-100 % and never negative".into(),
                });
            }
            Ok(())
        }
        Payload::CashOpen {
            store,
            session,
            float_cents,
            ..
        } => cash::check_open(&state.cash, store, &default_till(), session, *float_cents),
        Payload::CashOpenTill {
            store,
            till,
            session,
            float_cents,
            ..
        } => cash::check_open(&state.cash, store, till, session, *float_cents),
        Payload::CashMove {
            store,
            session,
            cents,
            reason,
            ..
        } => {
            cash::check_current(&state.cash, store, session)?;
            cash::check_movement(*cents, reason)
        }
        Payload::CashClose {
            store,
            session,
            counted_cents,
            ..
        } => {
            cash::check_current(&state.cash, store, session)?;
            cash::cents("counted_cents", *counted_cents, 0)
        }
        _ => Ok(()),
    }
}
