//! Inventory in motion (DESIGN.md section 19): shipments HQ announces to a store and transfers
//! between stores, both received by the destination store.
//!
//! A `Movement` merges its two halves independently (the send and the receipt), so either may
//! arrive first. Units leave the sender's rights at dispatch and enter the receiver's rights at
//! receipt; in between they are *in transit*. Per line, `received + in_transit + lost = sent`
//! always holds (an over-delivery, which must be declared, makes `lost` negative). Only the
//! destination store may receive, once.
//!
//! A ship-to-store transfer (`Sent::awaits_dispatch`) is created when HQ takes the order, while
//! the units are still on the sender's shelf: it is *awaiting dispatch* until the sender scans
//! the units out (`ShipDispatch`: now in transit) or keeps them because the order was cancelled
//! first (`ShipWithdraw`: withdrawn, never received). Per line `received + in_transit + lost =
//! dispatched`, and `dispatched + awaiting_dispatch + withdrawn = sent`.

use super::error::DomainError;
use super::hlc::Hlc;
use super::ids::{MotionId, Sku, StoreId};
use super::op::{OrderLine, ReceiptLine};
use super::state::State;
use super::validate::{QTY_MAX, TEXT_LEN_MAX};
use std::collections::BTreeMap;

/// Which kind of movement, for messages and the API.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum MotionKind {
    Shipment,
    Transfer,
}

impl MotionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            MotionKind::Shipment => "shipment",
            MotionKind::Transfer => "transfer",
        }
    }
}

/// The send half: what left (HQ's notice or the sending store's dispatch).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sent {
    /// `None` for a shipment from HQ's warehouse.
    pub from: Option<StoreId>,
    pub to: StoreId,
    pub reference: String,
    pub lines: Vec<OrderLine>,
    pub at: Hlc,
    /// Set for a ship-to-store transfer: the units leave the sender only at its `ShipDispatch`.
    pub awaits_dispatch: bool,
}

/// What the sender of a ship-to-store transfer did with the units: scanned them out, or kept
/// them (the order was cancelled before they left).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dispatch {
    pub withdrawn: bool,
    pub at: Hlc,
}

/// The receipt half, authored by the destination store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Received {
    pub store: StoreId,
    pub lines: Vec<ReceiptLine>,
    pub over_delivery: bool,
    pub at: Hlc,
}

/// A shipment or a transfer as this replica knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Movement {
    pub id: MotionId,
    pub kind: MotionKind,
    pub sent: Option<Sent>,
    pub received: Option<Received>,
    /// The sender's dispatch or withdrawal of a ship-to-store transfer.
    pub dispatch: Option<Dispatch>,
}

/// One sku of a movement, reconciled: what was sent against what arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineBalance {
    pub sku: Sku,
    pub sent: u32,
    pub received: u32,
    pub damaged: u32,
    /// Units that left the sender (all of `sent` once dispatched or received, else 0).
    pub dispatched: u32,
    /// Units of a ship-to-store transfer still on the sender's shelf, set aside.
    pub awaiting_dispatch: u32,
    /// Units still on their way (all of `dispatched` until the receipt).
    pub in_transit: u32,
    /// `sent - received` once received: positive short, negative over-delivered.
    pub lost: i64,
}

impl Movement {
    fn new(id: MotionId, kind: MotionKind) -> Movement {
        Movement {
            id,
            kind,
            sent: None,
            received: None,
            dispatch: None,
        }
    }

    /// Units of a ship-to-store transfer still on the sender's shelf: not dispatched, not
    /// withdrawn, and not received (a receipt proves the units left).
    pub fn awaiting_dispatch(&self) -> bool {
        self.received.is_none()
            && self.dispatch.is_none()
            && self.sent.as_ref().is_some_and(|s| s.awaits_dispatch)
    }

    /// The sender kept the units (the order was cancelled before they left).
    pub fn withdrawn(&self) -> bool {
        self.received.is_none() && self.dispatch.as_ref().is_some_and(|d| d.withdrawn)
    }

    /// `expected` (or `in_transit` for a transfer) until received, then `received`; a
    /// ship-to-store transfer is `awaiting_dispatch` until its sender scans it out, and
    /// `withdrawn` when the sender kept the units.
    pub fn status(&self) -> &'static str {
        if self.awaiting_dispatch() {
            return "awaiting_dispatch";
        }
        if self.withdrawn() {
            return "withdrawn";
        }
        match (&self.received, self.kind) {
            (Some(_), _) => "received",
            (None, MotionKind::Shipment) => "expected",
            (None, MotionKind::Transfer) => "in_transit",
        }
    }

    /// Per sku, sent against received, in sku order; skus received but never sent appear with
    /// `sent` 0 (a declared over-delivery).
    pub fn balance(&self) -> Vec<LineBalance> {
        let mut by_sku: BTreeMap<&Sku, (u32, u32, u32)> = BTreeMap::new();
        for l in self.sent.iter().flat_map(|s| &s.lines) {
            by_sku.entry(&l.sku).or_default().0 += l.qty;
        }
        for l in self.received.iter().flat_map(|r| &r.lines) {
            let e = by_sku.entry(&l.sku).or_default();
            e.1 += l.received;
            e.2 += l.damaged;
        }
        let done = self.received.is_some();
        let (awaiting, withdrawn) = (self.awaiting_dispatch(), self.withdrawn());
        by_sku
            .into_iter()
            .map(|(sku, (sent, received, damaged))| LineBalance {
                sku: sku.clone(),
                sent,
                received,
                damaged,
                dispatched: if awaiting || withdrawn { 0 } else { sent },
                awaiting_dispatch: if awaiting { sent } else { 0 },
                in_transit: if done || awaiting || withdrawn {
                    0
                } else {
                    sent
                },
                lost: if done {
                    i64::from(sent) - i64::from(received)
                } else {
                    0
                },
            })
            .collect()
    }

    /// Lines whose receipt differs from what was sent (shorts, overs): data for the conflict
    /// inbox and for HQ.
    pub fn discrepancies(&self) -> Vec<LineBalance> {
        if self.received.is_none() {
            return Vec::new();
        }
        self.balance().into_iter().filter(|b| b.lost != 0).collect()
    }

    /// The destination store, from whichever half is known.
    pub fn to(&self) -> Option<&StoreId> {
        self.sent
            .as_ref()
            .map(|s| &s.to)
            .or(self.received.as_ref().map(|r| &r.store))
    }
}

/// Merge the send half. Total: a repeated id keeps the first send it saw by HLC.
pub(crate) fn merge_sent(
    map: &mut BTreeMap<MotionId, Movement>,
    kind: MotionKind,
    id: &MotionId,
    sent: Sent,
) {
    let m = map
        .entry(id.clone())
        .or_insert_with(|| Movement::new(id.clone(), kind));
    if m.sent.as_ref().is_none_or(|old| sent.at < old.at) {
        m.sent = Some(sent);
    }
}

/// Merge the sender's dispatch or withdrawal (authored once, by the sender; the earliest by
/// HLC wins should two ever meet).
pub(crate) fn merge_dispatch(
    map: &mut BTreeMap<MotionId, Movement>,
    id: &MotionId,
    dispatch: Dispatch,
) {
    let m = map
        .entry(id.clone())
        .or_insert_with(|| Movement::new(id.clone(), MotionKind::Transfer));
    if m.dispatch.as_ref().is_none_or(|old| dispatch.at < old.at) {
        m.dispatch = Some(dispatch);
    }
}

/// Merge the receipt half (authored once, by the destination store).
pub(crate) fn merge_received(
    map: &mut BTreeMap<MotionId, Movement>,
    kind: MotionKind,
    id: &MotionId,
    received: Received,
) {
    let m = map
        .entry(id.clone())
        .or_insert_with(|| Movement::new(id.clone(), kind));
    if m.received.as_ref().is_none_or(|old| received.at < old.at) {
        m.received = Some(received);
    }
}

/// Units on their way to `store` for `sku`: transfers dispatched and expected shipments, not
/// yet received (a ship-to-store transfer counts from its sender's dispatch).
pub fn in_transit(state: &State, store: &StoreId, sku: &Sku) -> u64 {
    state
        .shipments
        .values()
        .chain(state.transfers.values())
        .filter(|m| m.received.is_none() && !m.awaiting_dispatch() && !m.withdrawn())
        .filter_map(|m| m.sent.as_ref())
        .filter(|s| &s.to == store)
        .flat_map(|s| &s.lines)
        .filter(|l| &l.sku == sku)
        .map(|l| u64::from(l.qty))
        .sum()
}

/// Checks for a notice or dispatch: 1-`LINES_MAX` lines of known skus, quantities 1-`QTY_MAX`,
/// each sku once, a fresh id, a short reference.
pub(crate) fn validate_sent(
    state: &State,
    kind: MotionKind,
    id: &MotionId,
    reference: &str,
    lines: &[OrderLine],
) -> Result<(), DomainError> {
    let map = movements(state, kind);
    if map.get(id).is_some_and(|m| m.sent.is_some()) {
        return Err(DomainError::DuplicateMovement {
            kind: kind.as_str(),
            id: id.clone(),
        });
    }
    if reference.chars().count() > TEXT_LEN_MAX || reference.chars().any(char::is_control) {
        return Err(DomainError::InvalidField {
            field: "reference",
            reason: format!("must be at most {TEXT_LEN_MAX} printable characters"),
        });
    }
    lines_shape(lines.len())?;
    let mut seen = Vec::with_capacity(lines.len());
    for l in lines {
        if !(1..=QTY_MAX).contains(&l.qty) {
            return Err(DomainError::InvalidQty {
                field: "qty",
                qty: u64::from(l.qty),
                reason: "must be 1-100000",
            });
        }
        if !state.catalog.contains(&l.sku) {
            return Err(DomainError::UnknownSku(l.sku.clone()));
        }
        duplicate_sku(&mut seen, &l.sku)?;
    }
    Ok(())
}

/// Checks for a receipt by `store`: the movement was sent to `store`, is not received yet,
/// lines name each sku once with `damaged <= received`, and nothing beyond what was sent
/// unless `over_delivery` says so.
pub(crate) fn validate_received(
    state: &State,
    kind: MotionKind,
    id: &MotionId,
    store: &StoreId,
    lines: &[ReceiptLine],
    over_delivery: bool,
) -> Result<(), DomainError> {
    let unknown = || DomainError::UnknownMovement {
        kind: kind.as_str(),
        id: id.clone(),
    };
    let m = movements(state, kind).get(id).ok_or_else(unknown)?;
    let sent = m.sent.as_ref().ok_or_else(unknown)?;
    if &sent.to != store {
        return Err(DomainError::WrongStore {
            kind: kind.as_str(),
            id: id.clone(),
            to: sent.to.clone(),
            store: store.clone(),
        });
    }
    if m.received.is_some() {
        return Err(DomainError::AlreadyReceived {
            kind: kind.as_str(),
            id: id.clone(),
        });
    }
    if m.withdrawn() {
        return Err(DomainError::Withdrawn(id.clone()));
    }
    if lines.len() > super::validate::LINES_MAX {
        lines_shape(lines.len())?;
    }
    let mut seen = Vec::with_capacity(lines.len());
    for l in lines {
        if l.received > QTY_MAX {
            return Err(DomainError::InvalidQty {
                field: "received",
                qty: u64::from(l.received),
                reason: "must be 0-100000",
            });
        }
        if l.damaged > l.received {
            return Err(DomainError::InvalidQty {
                field: "damaged",
                qty: u64::from(l.damaged),
                reason: "must not exceed received",
            });
        }
        if !state.catalog.contains(&l.sku) {
            return Err(DomainError::UnknownSku(l.sku.clone()));
        }
        duplicate_sku(&mut seen, &l.sku)?;
        let sent_qty: u32 = sent
            .lines
            .iter()
            .filter(|s| s.sku == l.sku)
            .map(|s| s.qty)
            .sum();
        if l.received > sent_qty && !over_delivery {
            return Err(DomainError::OverDelivery {
                sku: l.sku.clone(),
                sent: sent_qty,
                received: l.received,
            });
        }
    }
    Ok(())
}

fn movements(state: &State, kind: MotionKind) -> &BTreeMap<MotionId, Movement> {
    match kind {
        MotionKind::Shipment => &state.shipments,
        MotionKind::Transfer => &state.transfers,
    }
}

fn lines_shape(count: usize) -> Result<(), DomainError> {
    let max = super::validate::LINES_MAX;
    if count == 0 || count > max {
        return Err(DomainError::InvalidField {
            field: "lines",
            reason: format!("must hold 1-{max} lines, got {count}"),
        });
    }
    Ok(())
}

fn duplicate_sku<'a>(seen: &mut Vec<&'a Sku>, sku: &'a Sku) -> Result<(), DomainError> {
    if seen.contains(&sku) {
        return Err(DomainError::InvalidField {
            field: "lines",
            reason: format!("{sku} appears twice"),
        });
    }
    seen.push(sku);
    Ok(())
}
