//! What a node does on its own because of the state it reached (pure decisions, run by the
//! sync protocol in `crate::sync::protocol`).
//!
//! Reactions are computed from state, not remembered from events: a missed or duplicated event
//! (a lagging subscriber, a restart) only delays a reaction, it never loses or doubles one.
//! The store releases units of orders cancelled elsewhere, covers open shortfalls from rights
//! that came back, and tops up HQ's allocation; HQ hands back rights a store asked for.

use super::inventory::AllocationPolicy;
use super::op::{ConsumeReason, Payload};
use super::order::OrderStatus;
use super::{ActorId, Sku, State, StoreId};
use std::collections::BTreeSet;

/// The skus of `store` a payload touches (their rights or shortfall may have changed).
pub fn skus_touched(payload: &Payload, store: &StoreId, out: &mut BTreeSet<Sku>) {
    if let Payload::OrderShipToStore { from, lines, .. } = payload {
        if from == store {
            // HQ spent rights it held here: its allocation may need a top-up.
            out.extend(lines.iter().map(|l| l.sku.clone()));
        }
        return;
    }
    if payload.store() != Some(store) {
        return;
    }
    match payload {
        Payload::StockReceive { sku, .. }
        | Payload::StockTransfer { sku, .. }
        | Payload::StockConsume { sku, .. }
        | Payload::CountRecorded { sku, .. }
        | Payload::RightsReturnRequested { sku, .. } => {
            out.insert(sku.clone());
        }
        Payload::Sale { lines, .. } => out.extend(lines.iter().map(|l| l.sku.clone())),
        Payload::OrderPlace { lines, .. } => out.extend(lines.iter().map(|l| l.sku.clone())),
        Payload::Return { lines, .. } => out.extend(lines.iter().map(|l| l.sku.clone())),
        _ => {}
    }
}

/// Every sku with a counter at `store`.
pub fn all_skus(state: &State, store: &StoreId) -> BTreeSet<Sku> {
    state
        .stock
        .keys()
        .filter(|(s, _)| s == store)
        .map(|(_, sku)| sku.clone())
        .collect()
}

/// `OrderRelease` for every order of `store` cancelled or expired elsewhere and not released,
/// and `ShipWithdraw` for every such ship-to-store order `store` was to send and has not
/// dispatched (`ship_to_store::plan_withdrawals`).
pub fn plan_releases(state: &State, store: &StoreId) -> Vec<Payload> {
    let withdrawals = super::ship_to_store::plan_withdrawals(state, store);
    state
        .orders
        .values()
        .filter(|o| &o.store == store && !o.released)
        .filter(|o| matches!(o.status, OrderStatus::Cancelled | OrderStatus::Expired))
        .map(|o| Payload::OrderRelease {
            order_id: o.id.clone(),
            store: store.clone(),
        })
        .chain(withdrawals)
        .collect()
}

/// For each sku: cover the open shortfall from the store's rights, then (when `policy` is
/// given, i.e. the link is up) top up HQ's allocation from what is left.
pub fn plan_stock(
    state: &State,
    store: &StoreId,
    skus: &BTreeSet<Sku>,
    policy: Option<&AllocationPolicy>,
) -> Vec<Payload> {
    let me = store.actor();
    let hq = ActorId::hq();
    let mut out = Vec::new();
    for sku in skus {
        let Some(counter) = state.counter(store, sku) else {
            continue;
        };
        let mut counter = counter.clone();
        let open = state
            .shortfall
            .get(&(store.clone(), sku.clone()))
            .copied()
            .unwrap_or(0);
        let cover = open.min(counter.rights(&me).max(0) as u64);
        if let Ok(qty) = u32::try_from(cover) {
            if qty > 0 {
                counter.consume(&me, qty);
                out.push(Payload::StockConsume {
                    store: store.clone(),
                    sku: sku.clone(),
                    qty,
                    reason: ConsumeReason::ShrinkageCovered,
                });
            }
        }
        if let Some(qty) = policy.and_then(|p| p.top_up(&counter, &me, &hq)) {
            out.push(Payload::StockTransfer {
                store: store.clone(),
                sku: sku.clone(),
                to: hq.clone(),
                qty,
            });
        }
    }
    out
}

/// HQ's answer to a store asking for rights back: transfer `min(qty, HQ's rights)`.
pub fn plan_return(state: &State, store: &StoreId, sku: &Sku, qty: u32) -> Option<Payload> {
    let held = state.rights(store, sku, &ActorId::hq()).max(0) as u64;
    let give = u32::try_from(held.min(u64::from(qty))).ok()?;
    (give > 0).then(|| Payload::StockTransfer {
        store: store.clone(),
        sku: sku.clone(),
        to: store.actor(),
        qty: give,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::op::{CancelKind, OrderLine, ReceiveReason};
    use crate::domain::{CustomerId, OrderId, Replica};

    fn store() -> StoreId {
        StoreId::parse("norte").unwrap()
    }
    fn sku() -> Sku {
        Sku::parse("SKU-1").unwrap()
    }

    /// A store with `qty` units received, its ops replayed at HQ.
    fn pair(qty: u32) -> (Replica, Replica) {
        let mut st = Replica::new(store().actor());
        let mut hq = Replica::new(ActorId::hq());
        let (put, _) = hq
            .prepare(
                1,
                Payload::CatalogPut {
                    sku: sku(),
                    ean: crate::domain::Ean13::parse("4006381333931").unwrap(),
                    name: "Tea".into(),
                    price_cents: 250,
                    vat_bp: 1000,
                },
            )
            .unwrap();
        st.apply(&put).unwrap();
        let (op, _) = st
            .prepare(
                1,
                Payload::StockReceive {
                    store: store(),
                    sku: sku(),
                    qty,
                    reason: ReceiveReason::Delivery,
                },
            )
            .unwrap();
        hq.apply(&op).unwrap();
        (st, hq)
    }

    #[test]
    fn the_store_tops_up_hq_only_when_the_link_is_up() {
        let (st, _) = pair(10);
        let skus = all_skus(st.state(), &store());
        assert!(plan_stock(st.state(), &store(), &skus, None).is_empty());
        let plan = plan_stock(
            st.state(),
            &store(),
            &skus,
            Some(&AllocationPolicy::default()),
        );
        assert_eq!(
            plan,
            vec![Payload::StockTransfer {
                store: store(),
                sku: sku(),
                to: ActorId::hq(),
                qty: 3
            }]
        );
    }

    #[test]
    fn an_order_cancelled_at_hq_is_released_by_its_store_once() {
        let (mut st, mut hq) = pair(10);
        let (t, _) = st
            .prepare(
                2,
                Payload::StockTransfer {
                    store: store(),
                    sku: sku(),
                    to: ActorId::hq(),
                    qty: 3,
                },
            )
            .unwrap();
        hq.apply(&t).unwrap();
        let order_id = OrderId::parse("o1").unwrap();
        let (place, _) = hq
            .prepare(
                3,
                Payload::OrderPlace {
                    order_id: order_id.clone(),
                    store: store(),
                    customer: CustomerId::parse("c1").unwrap(),
                    lines: vec![OrderLine { sku: sku(), qty: 2 }],
                    pickup_code: "ABCDEF".into(),
                    placed_at_ms: 3,
                },
            )
            .unwrap();
        let (cancel, _) = hq
            .prepare(
                4,
                Payload::OrderCancel {
                    order_id: order_id.clone(),
                    store: store(),
                    kind: CancelKind::Cancelled,
                },
            )
            .unwrap();
        st.apply(&place).unwrap();
        st.apply(&cancel).unwrap();
        let plan = plan_releases(st.state(), &store());
        assert_eq!(plan.len(), 1);
        st.prepare(5, plan[0].clone()).unwrap();
        assert!(plan_releases(st.state(), &store()).is_empty());
    }

    #[test]
    fn hq_returns_at_most_the_rights_it_holds() {
        let (_, hq) = pair(10);
        assert_eq!(plan_return(hq.state(), &store(), &sku(), 4), None);
    }
}
