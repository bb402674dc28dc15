//! HQ's slow actions, carried out beside the engine: an ingest (a group commit, with the
//! routing of its ops when the protocol could decide it beforehand), a read of ops to route,
//! a routing write, a read of a store's down-log. Each runs in a task of its
//! own and reports back through one bounded channel, so the engine keeps taking up-batches
//! and acks while they run: an up-batch arriving during a down-log read is handed to the
//! writer at once instead of after it. The protocol allows at most one of each in flight
//! (one per store for down-log reads), which bounds the channel.

use super::persist;
use crate::domain::{ActorId, Op, StoreId};
use crate::store::{Ingested, Node, StoreError};
use crate::sync::probe::{Busy, Hop, Probe};
use crate::sync::protocol::hq::{IngestRoute, RouteRead};
use crate::sync::route::RouteAction;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// A slow action finished.
pub(super) enum Done {
    /// The `Ingest` of this many stores' up-batches, and what its routing wrote (`None`:
    /// it carried none, or none was written).
    Ingested {
        stores: usize,
        result: Result<(Ingested, Option<BTreeMap<StoreId, u64>>), StoreError>,
    },
    /// The `ReadToRoute`.
    RouteRead(Result<Vec<(RouteRead, Vec<Op>)>, StoreError>),
    /// The `Route` write: the last down-log index of every store that got entries.
    Routed(Result<BTreeMap<StoreId, u64>, StoreError>),
    /// The `ReadDown` of `store` after `after` (empty on a failed read, logged).
    Down {
        store: StoreId,
        after: u64,
        ops: Vec<Op>,
    },
}

/// Most results waiting for the engine: one ingest, one route read, one route write and one
/// down-log read per store can be out at once.
pub(super) fn cap(stores: usize) -> usize {
    stores + 3
}

/// Spawns the slow actions of one engine.
#[derive(Clone)]
pub(super) struct Work {
    pub(super) node: Node,
    pub(super) done: mpsc::Sender<Done>,
    pub(super) probe: Option<Arc<Probe>>,
}

impl Work {
    fn spawn(&self, work: impl std::future::Future<Output = Done> + Send + 'static) {
        let done = self.done.clone();
        tokio::spawn(async move {
            let _ = done.send(work.await).await;
        });
    }

    /// `Node::ingest` of `stores` up-batches' ops, with their routing if the protocol
    /// decided it (`IngestRoute`): one commit for both.
    pub(super) fn ingest(&self, stores: usize, ops: Vec<Op>, route: Option<IngestRoute>) {
        let w = self.clone();
        self.spawn(async move {
            let started = Instant::now();
            let stamped = w.probe.as_ref().filter(|p| p.marks_hops()).map(|p| {
                p.mark(Hop::HqIngestStart, &ops);
                (ops.clone(), route.as_ref().map(|r| appended(&r.actions)))
            });
            let result = match route {
                Some(route) => {
                    w.node
                        .ingest_then(ops, move |tx, ingested| {
                            persist::apply_ingest_route(tx, ingested, &route)
                        })
                        .await
                }
                None => w.node.ingest(ops).await.map(|ingested| (ingested, None)),
            };
            if let (Some(p), Ok((_, routed))) = (&w.probe, &result) {
                p.busy(Busy::HqIngest, started.elapsed());
                if let Some((ops, routes)) = stamped {
                    p.mark(Hop::HqIngestDone, &ops);
                    // Routed with the ingest: in hand for routing and routed at its commit.
                    for (actor, seq) in routes.filter(|_| routed.is_some()).unwrap_or_default() {
                        p.mark_range(Hop::HqRouteRead, &actor, seq..=seq);
                        p.mark_range(Hop::HqRouted, &actor, seq..=seq);
                    }
                }
            }
            Done::Ingested { stores, result }
        });
    }

    /// Read the ops each `RouteRead` asks for.
    pub(super) fn read_to_route(&self, reads: Vec<RouteRead>) {
        let w = self.clone();
        self.spawn(async move {
            let started = Instant::now();
            let result = w.node.query(move |c| read_to_route(c, reads)).await;
            if let (Some(p), Ok(reads)) = (&w.probe, &result) {
                p.busy(Busy::HqRouteRead, started.elapsed());
                p.mark(Hop::HqRouteRead, reads.iter().flat_map(|r| &r.1));
            }
            Done::RouteRead(result)
        });
    }

    /// Persist routing decisions and cursors in one transaction.
    pub(super) fn route(&self, actions: Vec<RouteAction>, cursors: Vec<(ActorId, u64)>) {
        let w = self.clone();
        self.spawn(async move {
            let started = Instant::now();
            let stamped = w
                .probe
                .as_ref()
                .filter(|p| p.marks_hops())
                .map(|_| appended(&actions));
            let result = w
                .node
                .write(move |tx| persist::apply_routes(tx, &actions, &cursors))
                .await;
            if let (Some(p), true) = (&w.probe, result.is_ok()) {
                p.busy(Busy::HqRouteWrite, started.elapsed());
                for (actor, seq) in stamped.unwrap_or_default() {
                    p.mark_range(Hop::HqRouted, &actor, seq..=seq);
                }
            }
            Done::Routed(result)
        });
    }

    /// Read `store`'s down-log after `after`, at most `limit` entries.
    pub(super) fn read_down(&self, store: StoreId, after: u64, limit: usize) {
        let w = self.clone();
        self.spawn(async move {
            let started = Instant::now();
            let who = store.clone();
            let ops = w
                .node
                .query(move |c| persist::downlog_ops(c, &who, after, limit))
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(store = %store, error = %e, "cannot read the down-log");
                    Vec::new()
                });
            if let Some(p) = &w.probe {
                p.busy(Busy::HqReadDown, started.elapsed());
                p.mark(Hop::HqDownRead, &ops);
            }
            Done::Down { store, after, ops }
        });
    }
}

/// The ops a routing write appends to down-logs (for the probe).
fn appended(actions: &[RouteAction]) -> Vec<(ActorId, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            RouteAction::Append { op, .. } => Some((op.actor.clone(), op.seq)),
            _ => None,
        })
        .collect()
}

/// The ops each read asks for, in order.
fn read_to_route(
    conn: &rusqlite::Connection,
    reads: Vec<RouteRead>,
) -> rusqlite::Result<Vec<(RouteRead, Vec<Op>)>> {
    reads
        .into_iter()
        .map(|read| {
            let ops = Node::ops_since(conn, &read.actor, read.since(), read.limit())?;
            Ok((read, ops))
        })
        .collect()
}
