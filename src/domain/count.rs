//! Planning a physical stock count: which ops a count turns into.
//!
//! A count is compared with what should be on the shelf (available plus reserved and not yet
//! collected). More than expected creates units at the store. Less consumes from the store's
//! rights; what the store's rights cannot cover is asked back from HQ and recorded as
//! shrinkage for a manager, who decides which online order to cancel. Nothing is cancelled here.

use super::ids::{ActorId, Sku, StoreId};
use super::op::{ConsumeReason, Payload, ReceiveReason};
use super::state::State;

/// The ops that record `counted` units of `sku` at `store`, issued by the store.
pub fn plan_count(state: &State, store: &StoreId, sku: &Sku, counted: u32) -> Vec<Payload> {
    let actor: ActorId = store.actor();
    let expected = state.on_hand(store, sku).max(0) as u64;
    let counted_u = u64::from(counted);
    let mut ops = Vec::new();
    let mut shrinkage = 0u64;
    if counted_u > expected {
        ops.push(Payload::StockReceive {
            store: store.clone(),
            sku: sku.clone(),
            qty: (counted_u - expected) as u32,
            reason: ReceiveReason::CountUp,
        });
    } else if counted_u < expected {
        let missing = expected - counted_u;
        let from_store = missing.min(state.rights(store, sku, &actor).max(0) as u64);
        if from_store > 0 {
            ops.push(Payload::StockConsume {
                store: store.clone(),
                sku: sku.clone(),
                qty: from_store as u32,
                reason: ConsumeReason::CountDown,
            });
        }
        shrinkage = missing - from_store;
        if shrinkage > 0 {
            ops.push(Payload::RightsReturnRequested {
                store: store.clone(),
                sku: sku.clone(),
                qty: shrinkage.min(u64::from(u32::MAX)) as u32,
            });
        }
    }
    ops.push(Payload::CountRecorded {
        store: store.clone(),
        sku: sku.clone(),
        counted,
        expected: expected.min(u64::from(u32::MAX)) as u32,
        shrinkage: shrinkage.min(u64::from(u32::MAX)) as u32,
    });
    ops
}
