//! Inventory in motion in the simulation (DESIGN.md §19): HQ announces deliveries and takes
//! pickup orders that ship from another store when the pickup store lacks HQ's rights; stores
//! receive deliveries and transfers (short, damaged, now and then a declared over-delivery),
//! setting aside what a ship-to-store order awaits, scan out the units of ship-to-store orders
//! they send (only then can they arrive), and send transfers to each other. All of
//! it through the shipped domain planners (`plan_order`, `plan_arrivals`), under the same
//! partitions and crashes as everything else. `check_motion` holds at the end of every seed.

use super::World;
use storenode::domain::motion::MotionKind;
use storenode::domain::op::{OrderLine, ReceiptLine};
use storenode::domain::ship_to_store::{dispatch_of, plan_arrivals, plan_order, OrderRequest};
use storenode::domain::{MotionId, OrderId, Payload, Sku, StoreId};

/// How long HQ tells the customer a shipped order takes (simulated time is short).
const LEAD_MS: u64 = 60_000;

fn lines(w: &mut World, sku: fn(u64) -> Sku, qty_max: u64) -> Vec<OrderLine> {
    let first = w.rng.below(4);
    let n = w.rng.range(1, 2);
    (0..n)
        .map(|i| OrderLine {
            sku: sku((first + i) % 4),
            qty: w.rng.range(1, qty_max) as u32,
        })
        .collect()
}

fn motion_id(w: &mut World, prefix: &str) -> MotionId {
    w.next_id += 1;
    MotionId::parse(&format!("{prefix}-{}", w.next_id)).expect("motion id")
}

/// HQ's advance shipping notice to `store`.
pub fn notice(w: &mut World, store: StoreId, sku: fn(u64) -> Sku) -> Payload {
    Payload::ShipmentNotice {
        shipment: motion_id(w, "S"),
        store,
        reference: "ASN".into(),
        lines: lines(w, sku, 8),
    }
}

/// HQ's pickup order as its API plans it: from its rights at `placed`'s store, else shipped
/// from another store; when neither can, the plain order (refused and counted).
pub fn hq_order(w: &mut World, placed: Payload) -> Payload {
    let Payload::OrderPlace {
        order_id,
        store,
        customer,
        lines,
        pickup_code,
        ..
    } = placed.clone()
    else {
        return placed;
    };
    let req = OrderRequest {
        order_id,
        store,
        customer,
        lines,
        pickup_code,
        transfer: motion_id(w, "T"),
    };
    let sources: Vec<StoreId> = w
        .stores()
        .map(|s| w.nodes[s].actor.store().expect("store"))
        .collect();
    let now = w.now_ms;
    w.nodes[0]
        .backend
        .read(|r| plan_order(r.state(), r.actor(), &sources, req, now, LEAD_MS))
        .unwrap_or(placed)
}

/// Store `who` scans out the units of a ship-to-store order it sends (an open order's, as the
/// sending screen offers them), when one waits; otherwise it sends a transfer of its own to
/// another store (refused beyond its rights).
pub fn dispatch(w: &mut World, who: usize, sku: fn(u64) -> Sku) -> Option<Vec<Payload>> {
    let store = w.nodes[who].actor.store().expect("store");
    let waiting = w.nodes[who].backend.read(|r| {
        let s = r.state();
        s.awaiting_dispatch().find_map(|m| {
            let order = OrderId::parse(&m.sent.as_ref()?.reference).ok()?;
            let open = s.orders.get(&order)?.status.is_open();
            open.then(|| dispatch_of(s, &m.id, &store)).flatten()
        })
    });
    if let Some(p) = waiting {
        return Some(vec![p]);
    }
    let others: Vec<StoreId> = w
        .stores()
        .filter(|s| *s != who)
        .map(|s| w.nodes[s].actor.store().expect("store"))
        .collect();
    let to = w.rng.pick(&others)?.clone();
    Some(vec![Payload::TransferDispatch {
        transfer: motion_id(w, "T"),
        store,
        to,
        lines: lines(w, sku, 3),
    }])
}

/// Store `who` receives a delivery or transfer it sees on its way: some units short or
/// damaged, now and then one more than sent (declared). A transfer that brings units for a
/// ship-to-store order sets them aside in the same submit, as the terminal does.
pub fn receive(w: &mut World, who: usize) -> Option<Vec<Payload>> {
    let store = w.nodes[who].actor.store().expect("store");
    let open: Vec<(MotionKind, MotionId, Option<StoreId>, Vec<OrderLine>)> =
        w.nodes[who].backend.read(|r| {
            let s = r.state();
            s.shipments
                .values()
                .chain(s.transfers.values())
                .filter(|m| m.received.is_none() && !m.withdrawn())
                .filter_map(|m| m.sent.as_ref().map(|x| (m, x)))
                .filter(|(_, x)| x.to == store)
                .map(|(m, x)| (m.kind, m.id.clone(), x.from.clone(), x.lines.clone()))
                .collect()
        });
    // Units arrive only once they physically left: a ship-to-store transfer when its sender
    // dispatched it (as the sender's own state says, whether or not that reached us).
    let open: Vec<_> = open
        .into_iter()
        .filter(|m| m.0 == MotionKind::Shipment || left_sender(w, &m.1, m.2.as_ref()))
        .collect();
    // Transfers for a ship-to-store order first, more often than not: their orders wait.
    let for_order = open.iter().find(|m| {
        w.nodes[who].backend.read(|r| {
            r.state()
                .orders
                .values()
                .any(|o| o.ship.as_ref().is_some_and(|s| s.transfer == m.1))
        })
    });
    let (kind, id, from, sent) = match for_order {
        Some(m) if w.rng.chance(60) => m.clone(),
        _ => w.rng.pick(&open)?.clone(),
    };
    let over = w.rng.chance(5);
    let receipt: Vec<ReceiptLine> = sent
        .iter()
        .map(|l| {
            let received = if over {
                l.qty + 1
            } else {
                l.qty.saturating_sub(w.rng.below(2) as u32)
            };
            let damaged = (w.rng.below(4) == 0) as u32;
            ReceiptLine {
                sku: l.sku.clone(),
                received,
                damaged: damaged.min(received),
            }
        })
        .collect();
    Some(match (kind, from) {
        (MotionKind::Transfer, Some(from)) => {
            let arrived = w.nodes[who]
                .backend
                .read(|r| plan_arrivals(r.state(), &id, &store, &receipt));
            std::iter::once(Payload::TransferReceive {
                transfer: id,
                store,
                from,
                lines: receipt,
                over_delivery: over,
            })
            .chain(arrived)
            .collect()
        }
        _ => vec![Payload::ShipmentReceive {
            shipment: id,
            store,
            lines: receipt,
            over_delivery: over,
        }],
    })
}

/// Whether transfer `id`'s units physically left `from`: a plain transfer at once (its
/// dispatch is its send), a ship-to-store one once `from`'s own state says it dispatched it.
fn left_sender(w: &World, id: &MotionId, from: Option<&StoreId>) -> bool {
    let Some(from) = from else {
        return true;
    };
    let Some(node) = w
        .stores()
        .find(|s| w.nodes[*s].actor.store().as_ref() == Some(from))
    else {
        return false;
    };
    w.nodes[node].backend.read(|r| {
        r.state().transfers.get(id).is_some_and(|m| {
            let sent = m.sent.as_ref();
            !sent.is_some_and(|x| x.awaits_dispatch)
                || m.dispatch.as_ref().is_some_and(|d| !d.withdrawn)
        })
    })
}
