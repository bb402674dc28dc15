//! A store added to HQ's configuration after HQ already routed ops gets its down-log built
//! once from the op log: every op up to the current routing position is routed for the new
//! stores alone. Ops after that position are routed for every store as usual.

use super::load;
use crate::domain::{ActorId, StoreId};
use crate::store::{Node, StoreError};
use crate::sync::persist;
use crate::sync::protocol::hq::{HqLoaded, ROUTE_OPS_MAX};
use crate::sync::route::Router;

/// Build the down-logs of stores HQ has not served before, and return the state reloaded.
/// On a fresh database nothing was routed yet and nothing is backfilled.
pub(super) async fn run(node: &Node, stores: &[StoreId], loaded: HqLoaded) -> HqLoaded {
    let new: Vec<StoreId> = stores
        .iter()
        .filter(|s| !loaded.stores.contains(*s))
        .cloned()
        .collect();
    if new.is_empty() {
        return loaded;
    }
    if !loaded.routed.is_empty() {
        tracing::info!(stores = ?new, "building down-logs for new stores");
        let mut router = Router::new(new.clone(), Default::default());
        for (actor, upto) in &loaded.routed {
            if let Err(e) = backfill_actor(node, &mut router, actor, *upto).await {
                tracing::error!(actor = %actor, error = %e, "cannot backfill new stores");
                return loaded;
            }
        }
    }
    if let Err(e) = node.write(move |tx| persist::add_stores(tx, &new)).await {
        tracing::error!(error = %e, "cannot record new stores");
    }
    load(node).await
}

async fn backfill_actor(
    node: &Node,
    router: &mut Router,
    actor: &ActorId,
    upto: u64,
) -> Result<(), StoreError> {
    let mut after = 0;
    while after < upto {
        let who = actor.clone();
        let ops = node
            .query(move |c| Node::ops_since(c, &who, after, ROUTE_OPS_MAX))
            .await?;
        let ops: Vec<_> = ops.into_iter().filter(|op| op.seq <= upto).collect();
        let Some(last) = ops.last().map(|op| op.seq) else {
            return Ok(());
        };
        let actions: Vec<_> = ops.iter().flat_map(|op| router.route(op)).collect();
        let cursor = vec![(actor.clone(), upto)];
        node.write(move |tx| persist::apply_routes(tx, &actions, &cursor))
            .await?;
        after = last;
    }
    Ok(())
}
