//! A sale's return rights fetched from their holder on demand (DESIGN.md §12).
//!
//! A store taking back a sale it does not hold the rights of issues a
//! `ReturnRightsRequested` op. It travels the normal path (outbox, signed up-batch, HQ's
//! routing to the holder's down-log, or to every store when the holder is unknown); the
//! holder's engine answers with a `ReturnRightsGranted` op (`domain::returns::plan_grants`),
//! which HQ routes back. The asker waits, woken by its commits, until it holds the rights or the
//! deadline passes. Ops instead of a lookup message: the request and the grant are durable and
//! applied once, so a store offline when asked still answers when it comes back, and the rights
//! can never be held by two stores.

use crate::domain::returns::plan_rights_request;
use crate::domain::{SaleId, StoreId};
use crate::store::Node;
use std::time::Duration;
use tokio::sync::broadcast;

/// How a store came to hold (or not) a sale's return rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RightsFetch {
    /// This store already held them; nobody was asked.
    Held,
    /// The holder handed them over through HQ within the deadline.
    Granted,
    /// Not connected to HQ: the request waits in the outbox.
    Offline,
    /// Asked, but no grant arrived in time.
    Timeout,
}

impl RightsFetch {
    /// The `X-Storenode-Lookup` value for this outcome (as for customer searches).
    pub fn header(&self) -> &'static str {
        match self {
            RightsFetch::Held => "local",
            RightsFetch::Granted => "hq",
            RightsFetch::Offline => "local-only",
            RightsFetch::Timeout => "hq-timeout",
        }
    }
}

fn holds(node: &Node, store: &StoreId, sale: &SaleId) -> bool {
    node.read(|r| r.state().return_holder(sale).as_ref() == Some(store))
}

/// Make `store` the holder of `sale`'s return rights if its holder answers within `within`.
/// `hint` names the selling store when the counter knows it (receipt scan, history line).
pub async fn fetch_rights(
    node: &Node,
    online: bool,
    store: &StoreId,
    sale: &SaleId,
    hint: Option<StoreId>,
    within: Duration,
) -> RightsFetch {
    if holds(node, store, sale) {
        return RightsFetch::Held;
    }
    let deadline = tokio::time::Instant::now() + within;
    let mut events = node.subscribe();
    let request = node.read(|r| {
        let s = r.state();
        // One open request per handover is enough; asking again only repeats it.
        (s.returns.requested(sale, store) != Some(s.return_epoch(sale)))
            .then(|| plan_rights_request(s, store, sale, hint))
    });
    if let Some(request) = request {
        if let Err(e) = node.submit(vec![request]).await {
            tracing::warn!(error = %e, "cannot ask for return rights");
            return RightsFetch::Timeout;
        }
    }
    if !online {
        return RightsFetch::Offline;
    }
    loop {
        if holds(node, store, sale) {
            return RightsFetch::Granted;
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return RightsFetch::Timeout,
            },
            _ = tokio::time::sleep_until(deadline) => {
                return if holds(node, store, sale) { RightsFetch::Granted } else { RightsFetch::Timeout };
            }
        }
    }
}
