//! Planning a return before it exists: the lines checked against what was sold and returned,
//! verified or unverified by who holds the rights, and the rights requests and grants a
//! replica issues so the holder can follow a sale around the chain.

use super::{sale_id_time_ms, ReturnAsk, ReturnPolicy};
use crate::domain::error::DomainError;
use crate::domain::ids::{SaleId, Sku, StoreId};
use crate::domain::op::{Payload, ReturnLine};
use crate::domain::state::State;
use crate::domain::validate::{LINES_MAX, QTY_MAX};
use std::collections::BTreeMap;

fn check_lines(lines: &[ReturnLine]) -> Result<(), DomainError> {
    if lines.is_empty() || lines.len() > LINES_MAX {
        return Err(DomainError::InvalidField {
            field: "lines",
            reason: format!("must hold 1-{LINES_MAX} lines, got {}", lines.len()),
        });
    }
    for l in lines {
        if l.qty == 0 || l.qty > QTY_MAX {
            return Err(DomainError::InvalidQty {
                field: "qty",
                qty: u64::from(l.qty),
                reason: "must be between 1 and 100000",
            });
        }
        if l.refund_cents < 0 {
            return Err(DomainError::InvalidField {
                field: "refund_cents",
                reason: format!("must not be negative, got {}", l.refund_cents),
            });
        }
    }
    Ok(())
}

/// Units per sku of a list of return lines.
fn per_sku(lines: &[ReturnLine]) -> BTreeMap<&Sku, (u64, i64)> {
    let mut out: BTreeMap<&Sku, (u64, i64)> = BTreeMap::new();
    for l in lines {
        let e = out.entry(&l.sku).or_default();
        e.0 += u64::from(l.qty);
        e.1 += l.refund_cents;
    }
    out
}

/// The checks a replica runs before issuing a return-related op as `store`.
pub(crate) fn validate(
    state: &State,
    store: &StoreId,
    payload: &Payload,
) -> Result<(), DomainError> {
    match payload {
        Payload::Return {
            return_id,
            sale,
            lines,
            verified,
            ..
        } => {
            if state.returns.returns.contains_key(return_id) {
                return Err(DomainError::DuplicateReturn(return_id.clone()));
            }
            check_lines(lines)?;
            if *verified && state.return_holder(sale).as_ref() != Some(store) {
                return Err(DomainError::NotReturnHolder(sale.clone()));
            }
            let Some(sold) = state.sold(sale) else {
                if *verified {
                    return Err(DomainError::UnknownSale(sale.clone()));
                }
                return Ok(());
            };
            for (sku, (qty, refund)) in per_sku(lines) {
                let line = sold.lines.iter().find(|l| &l.sku == sku).ok_or_else(|| {
                    DomainError::NotInSale {
                        sale: sale.clone(),
                        sku: sku.clone(),
                    }
                })?;
                let returnable = state.returnable(sale, sku).unwrap_or(0);
                if qty > u64::from(returnable) {
                    return Err(DomainError::AlreadyReturned {
                        sale: sale.clone(),
                        sku: sku.clone(),
                        returnable,
                    });
                }
                let paid = u32::try_from(qty)
                    .ok()
                    .and_then(|q| state.discounted_refund(sale, sku, q))
                    .unwrap_or(line.unit_cents * qty as i64);
                if refund > paid {
                    return Err(DomainError::InvalidField {
                        field: "refund_cents",
                        reason: format!("refund {refund} exceeds what was paid for {qty} {sku}"),
                    });
                }
            }
        }
        Payload::ReturnRightsRequested { sale, holder, .. }
            if holder.as_ref() == Some(store)
                || state.return_holder(sale).as_ref() == Some(store) =>
        {
            return Err(DomainError::InvalidField {
                field: "sale",
                reason: format!("{store} already holds the return rights of {sale}"),
            });
        }
        Payload::ReturnRightsGranted {
            sale, to, epoch, ..
        } => {
            if state.return_holder(sale).as_ref() != Some(store) {
                return Err(DomainError::NotReturnHolder(sale.clone()));
            }
            if to == store || *epoch != state.return_epoch(sale) + 1 {
                return Err(DomainError::InvalidField {
                    field: "epoch",
                    reason: format!("grant {epoch} of {sale} to {to} does not follow"),
                });
            }
        }
        _ => {}
    }
    Ok(())
}

/// The return op for what the counter asks, or why it cannot be taken: verified at the
/// holder of the sale's rights; elsewhere unverified, by a manager, within the policy's limit.
pub fn plan_return(
    state: &State,
    store: &StoreId,
    policy: &ReturnPolicy,
    ask: ReturnAsk,
) -> Result<Payload, DomainError> {
    let sold = state.sold(&ask.sale);
    let sold_at = sold
        .as_ref()
        .map(|s| s.at_ms)
        .or_else(|| sale_id_time_ms(&ask.sale));
    if let Some(at) = sold_at {
        if ask.now_ms.saturating_sub(at) > policy.window_ms {
            return Err(DomainError::ReturnWindowClosed {
                sale: ask.sale.clone(),
                days: policy.window_ms / 86_400_000,
            });
        }
    }
    let mut lines = Vec::with_capacity(ask.lines.len());
    for (sku, qty, restock) in &ask.lines {
        let unit_cents = match &sold {
            Some(s) => s
                .lines
                .iter()
                .find(|l| &l.sku == sku)
                .map(|l| l.unit_cents)
                .ok_or_else(|| DomainError::NotInSale {
                    sale: ask.sale.clone(),
                    sku: sku.clone(),
                })?,
            None => state
                .product(sku)
                .map(|p| p.price_cents)
                .ok_or_else(|| DomainError::UnknownSku(sku.clone()))?,
        };
        lines.push(ReturnLine {
            sku: sku.clone(),
            qty: *qty,
            restock: *restock,
            refund_cents: state
                .discounted_refund(&ask.sale, sku, *qty)
                .unwrap_or(unit_cents * i64::from(*qty)),
        });
    }
    check_lines(&lines)?;
    let verified = state.return_holder(&ask.sale).as_ref() == Some(store);
    let payload = Payload::Return {
        store: store.clone(),
        return_id: ask.return_id,
        sale: ask.sale.clone(),
        sale_store: sold.as_ref().map(|s| s.store.clone()).or(ask.sale_store),
        lines,
        tender: ask.tender,
        verified,
        customer: sold.and_then(|s| s.customer),
    };
    // Exactness first: a known sale refuses what is not in it or already returned.
    validate(state, store, &payload)?;
    if !verified {
        let refund: i64 = match &payload {
            Payload::Return { lines, .. } => lines.iter().map(|l| l.refund_cents).sum(),
            _ => 0,
        };
        if !ask.manager {
            return Err(DomainError::ManagerRequired {
                reason: format!(
                    "{} is held by another store: an unverified return",
                    ask.sale
                ),
            });
        }
        if refund > policy.unverified_max_cents {
            return Err(DomainError::ManagerRequired {
                reason: format!(
                    "unverified refund {refund} is over the limit of {} cents",
                    policy.unverified_max_cents
                ),
            });
        }
    }
    Ok(payload)
}

/// The request `store` sends for a sale's return rights (it does not hold them).
pub fn plan_rights_request(
    state: &State,
    store: &StoreId,
    sale: &SaleId,
    holder_hint: Option<StoreId>,
) -> Payload {
    Payload::ReturnRightsRequested {
        sale: sale.clone(),
        by: store.clone(),
        holder: state.return_holder(sale).or(holder_hint),
        epoch: state.return_epoch(sale),
    }
}

/// Grants `store` owes: for each sale it holds with an open request made since the last
/// handover, hand the rights to one asker (the lowest store id, so the choice is stable).
pub fn plan_grants(state: &State, store: &StoreId) -> Vec<Payload> {
    let mut out = Vec::new();
    for (sale, askers) in &state.returns.requests {
        if state.return_holder(sale).as_ref() != Some(store) {
            continue;
        }
        let epoch = state.return_epoch(sale);
        let Some((to, _)) = askers.iter().find(|(by, e)| **e == epoch && *by != store) else {
            continue;
        };
        let Some(sold) = state.sold(sale) else {
            continue;
        };
        let returned = sold
            .lines
            .iter()
            .map(|l| {
                let n = state.returned_qty(sale, &l.sku).min(u64::from(u32::MAX)) as u32;
                (l.sku.clone(), n)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        out.push(Payload::ReturnRightsGranted {
            sale: sale.clone(),
            from: store.clone(),
            to: to.clone(),
            epoch: epoch + 1,
            sold,
            returned,
        });
    }
    out
}
