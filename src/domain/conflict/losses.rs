//! Inbox items for units that went missing on the way: a sale returned more often than it
//! sold (`double_return`), and a delivery or transfer that arrived short or over
//! (`delivery_discrepancy`, `transfer_discrepancy`).
//!
//! Both are read from data the merge already keeps as a function of the ops held
//! (`ReturnBook::double_returns`, `Movement::discrepancies`), so every replica holding the
//! same ops raises the same item under the same id. A double return belongs to the store
//! that sold (every return of its sales is routed there); a movement's item to the store that
//! received it.

use super::{Conflict, ConflictKind, Facts};
use crate::domain::hlc::Hlc;
use crate::domain::ids::{MotionId, ReturnId, SaleId, Sku, StoreId};
use crate::domain::motion::{MotionKind, Movement};
use crate::domain::returns::DoubleReturn;
use crate::domain::state::State;
use serde::Serialize;

/// One return naming the doubly returned sku.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReturnTaken {
    pub id: ReturnId,
    /// The store that took it back.
    pub store: StoreId,
    pub qty: u32,
    pub verified: bool,
    pub refund_cents: i64,
}

/// One sku of a movement whose receipt differs from what was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingLine {
    pub sku: Sku,
    pub sent: u32,
    pub received: u32,
    pub damaged: u32,
    /// `sent - received`: positive short, negative over-delivered.
    pub lost: i64,
}

/// Items for every double return and every movement received with a discrepancy.
pub(super) fn raise(state: &State, mine: &dyn Fn(&StoreId) -> bool, out: &mut Vec<Conflict>) {
    for d in state.returns.double_returns.values() {
        if let Some(item) = double_return(state, d).filter(|c| mine(&c.store)) {
            out.push(item);
        }
    }
    for m in state.shipments.values().chain(state.transfers.values()) {
        if let Some(item) = discrepancy(m).filter(|c| mine(&c.store)) {
            out.push(item);
        }
    }
}

/// The store that sold the sale (or whose pickup order it is), as known here.
fn seller(state: &State, sale: &SaleId) -> Option<StoreId> {
    if let Some(s) = state.sales.get(sale) {
        return Some(s.store.clone());
    }
    let order = crate::domain::OrderId::parse(sale.as_str()).ok();
    if let Some(o) = order.and_then(|id| state.orders.get(&id)) {
        return Some(o.store.clone());
    }
    state.returns.rights.get(sale).map(|r| r.sold.store.clone())
}

fn double_return(state: &State, d: &DoubleReturn) -> Option<Conflict> {
    let store = seller(state, &d.sale)?;
    let taken: Vec<ReturnTaken> = d
        .returns
        .iter()
        .filter_map(|id| state.returns.returns.get(id))
        .map(|r| {
            let lines = r.lines.iter().filter(|l| l.sku == d.sku);
            ReturnTaken {
                id: r.id.clone(),
                store: r.store.clone(),
                qty: lines.clone().map(|l| l.qty).sum(),
                verified: r.verified,
                refund_cents: lines.map(|l| l.refund_cents).sum(),
            }
        })
        .collect();
    // When the excess happened: the latest of the returns that make it up.
    let at = d
        .returns
        .iter()
        .filter_map(|id| state.returns.returns.get(id))
        .map(|r| r.at)
        .max()
        .unwrap_or(Hlc::new(0, 0));
    Some(Conflict {
        id: format!("return:{}:{}", d.sale, d.sku),
        kind: ConflictKind::DoubleReturn,
        store,
        at,
        facts: Facts::DoubleReturn {
            sale: d.sale.clone(),
            sku: d.sku.clone(),
            sold: d.sold,
            returned: d.returned,
            returns: taken,
        },
        actions: vec!["accept_loss".into(), "note_recovery".into()],
        resolution: None,
    })
}

fn discrepancy(m: &Movement) -> Option<Conflict> {
    let received = m.received.as_ref()?;
    let lines: Vec<MissingLine> = m
        .discrepancies()
        .into_iter()
        .map(|b| MissingLine {
            sku: b.sku,
            sent: b.sent,
            received: b.received,
            damaged: b.damaged,
            lost: b.lost,
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    let short = lines.iter().any(|l| l.lost > 0);
    let (kind, prefix) = match m.kind {
        MotionKind::Shipment => (ConflictKind::DeliveryDiscrepancy, "shipment"),
        MotionKind::Transfer => (ConflictKind::TransferDiscrepancy, "transfer"),
    };
    let sent = m.sent.as_ref();
    Some(Conflict {
        id: format!("{prefix}:{}", m.id),
        kind,
        store: received.store.clone(),
        at: received.at,
        facts: Facts::Movement {
            movement: m.id.clone(),
            from: sent.and_then(|s| s.from.clone()),
            reference: sent.map(|s| s.reference.clone()).unwrap_or_default(),
            received_by: received.store.actor(),
            sent_at_ms: sent.map_or(0, |s| s.at.wall_ms()),
            lines,
        },
        actions: if short {
            vec!["confirm_loss".into(), "note_found".into()]
        } else {
            vec!["acknowledge".into()]
        },
        resolution: None,
    })
}

/// Units short (positive) and over (negative) summed over the lines.
fn short_and_over(lines: &[MissingLine]) -> (i64, i64) {
    let short = lines.iter().map(|l| l.lost.max(0)).sum();
    let over = lines.iter().map(|l| (-l.lost).max(0)).sum();
    (short, over)
}

/// The English summary of a movement item.
pub(super) fn movement_en(kind: ConflictKind, id: &MotionId, lines: &[MissingLine]) -> String {
    let what = match kind {
        ConflictKind::TransferDiscrepancy => "Transfer",
        _ => "Delivery",
    };
    match short_and_over(lines) {
        (short, 0) => format!("{what} {id} arrived {short} unit(s) short."),
        (0, over) => format!("{what} {id} arrived with {over} unit(s) more than sent."),
        (short, over) => {
            format!("{what} {id} arrived {short} unit(s) short and {over} unit(s) over.")
        }
    }
}

/// The Spanish summary of a movement item.
pub(super) fn movement_es(kind: ConflictKind, id: &MotionId, lines: &[MissingLine]) -> String {
    let what = match kind {
        ConflictKind::TransferDiscrepancy => "El traspaso",
        _ => "La entrega",
    };
    match short_and_over(lines) {
        (short, 0) => format!("{what} {id} llegó con {short} unidad(es) de menos."),
        (0, over) => format!("{what} {id} llegó con {over} unidad(es) de más."),
        (short, over) => {
            format!("{what} {id} llegó con {short} unidad(es) de menos y {over} de más.")
        }
    }
}

/// Who took the returns, for the summaries: `madrid-centro, sevilla-nervion`.
pub(super) fn return_stores(returns: &[ReturnTaken]) -> String {
    let mut stores: Vec<&str> = returns.iter().map(|r| r.store.as_str()).collect();
    stores.sort_unstable();
    stores.dedup();
    stores.join(", ")
}

#[cfg(test)]
mod tests;
