//! A store added to HQ's configuration after HQ already routed ops gets its down-log built
//! once from the op log: every op up to the current routing position is routed for the new
//! stores alone. Ops after that position are routed for every store as usual.

use super::{HqEngine, ROUTE_OPS_MAX};
use crate::domain::{ActorId, StoreId};
use crate::store::Node;
use crate::sync::persist;
use crate::sync::route::Router;

impl HqEngine {
    /// Build the down-logs of stores HQ has not served before. `known` comes from
    /// `sync_stores`; on a fresh database nothing was routed yet and nothing is backfilled.
    pub(super) async fn backfill(&mut self, known: &std::collections::BTreeSet<StoreId>) {
        let new: Vec<StoreId> = self
            .cfg
            .stores
            .iter()
            .filter(|s| !known.contains(*s))
            .cloned()
            .collect();
        if new.is_empty() {
            return;
        }
        if !self.routed.is_empty() {
            tracing::info!(stores = ?new, "building down-logs for new stores");
            let mut router = Router::new(new.clone(), Default::default());
            let cursors: Vec<(ActorId, u64)> =
                self.routed.iter().map(|(a, s)| (a.clone(), *s)).collect();
            for (actor, upto) in cursors {
                if let Err(e) = self.backfill_actor(&mut router, &actor, upto).await {
                    tracing::error!(actor = %actor, error = %e, "cannot backfill new stores");
                    return;
                }
            }
        }
        if let Err(e) = self
            .node
            .write(move |tx| persist::add_stores(tx, &new))
            .await
        {
            tracing::error!(error = %e, "cannot record new stores");
        }
        self.load().await;
    }

    async fn backfill_actor(
        &mut self,
        router: &mut Router,
        actor: &ActorId,
        upto: u64,
    ) -> Result<(), crate::store::StoreError> {
        let mut after = 0;
        while after < upto {
            let who = actor.clone();
            let ops = self
                .node
                .query(move |c| Node::ops_since(c, &who, after, ROUTE_OPS_MAX))
                .await?;
            let ops: Vec<_> = ops.into_iter().filter(|op| op.seq <= upto).collect();
            let Some(last) = ops.last().map(|op| op.seq) else {
                return Ok(());
            };
            let actions: Vec<_> = ops.iter().flat_map(|op| router.route(op)).collect();
            let cursor = vec![(actor.clone(), self.routed.get(actor).copied().unwrap_or(0))];
            self.node
                .write(move |tx| persist::apply_routes(tx, &actions, &cursor))
                .await?;
            after = last;
        }
        Ok(())
    }
}
