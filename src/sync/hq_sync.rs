//! HQ's sync daemon: the thin loop that carries out `protocol::hq::HqProtocol`.
//!
//! At start it loads the routing state and builds the down-logs of stores new to HQ
//! (`backfill`); then one task `select!`s over the MQTT link's events, the node's commits, the
//! routing write in flight, a timer and shutdown, feeds each to the protocol and carries out
//! its actions. The routing write runs in the background so ingest goes on while it commits
//! (the writer may group both into one commit). No protocol decision lives here.

use super::link::{run_link, LinkConfig, LinkEvent};
use super::metrics::SyncMetrics;
use super::persist;
use super::probe::{self, Hop, Probe};
use super::protocol::hq::{HqAction, HqLoaded, HqProtocol};
use super::protocol::{note_sent, Publish};
use crate::store::{now_ms, Node, NodeEvent};
use rumqttc::{AsyncClient, QoS};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use work::{Done, Work};

pub use super::protocol::hq::{HqSyncConfig, StoreLink};

const TICK_MS: u64 = 50;
const LINK_EVENTS_CAP: usize = 1_024;

struct Shared {
    links: Mutex<Vec<StoreLink>>,
    metrics: Arc<SyncMetrics>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Handle to HQ's running sync engine (cheap to clone).
#[derive(Clone)]
pub struct HqSyncHandle {
    shared: Arc<Shared>,
}

impl HqSyncHandle {
    pub fn stores(&self) -> Vec<StoreLink> {
        match self.shared.links.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn metrics(&self) -> Arc<SyncMetrics> {
        self.shared.metrics.clone()
    }

    /// Wait for the engine's tasks to finish (after shutdown).
    pub async fn join(&self) {
        let tasks: Vec<_> = match self.shared.tasks.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        };
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Start HQ's sync engine; it runs until `shutdown` turns true.
pub fn spawn_hq_sync(
    node: Node,
    cfg: HqSyncConfig,
    shutdown: watch::Receiver<bool>,
) -> HqSyncHandle {
    let shared = Arc::new(Shared {
        links: Mutex::new(Vec::new()),
        metrics: Arc::new(SyncMetrics::new()),
        tasks: Mutex::new(Vec::new()),
    });
    let subscriptions =
        match HqProtocol::new(cfg.clone(), HqLoaded::default(), shared.metrics.clone(), 0) {
            Ok(p) => p.subscriptions(),
            Err(e) => {
                tracing::error!(error = %e, "hq sync not started");
                return HqSyncHandle { shared };
            }
        };
    let (ev_tx, ev_rx) = mpsc::channel(LINK_EVENTS_CAP);
    let link_cfg = LinkConfig {
        host: cfg.broker_host.clone(),
        port: cfg.broker_port,
        client_id: cfg.client_id.clone(),
        keepalive_s: cfg.keepalive_s,
        will: None,
        subscriptions,
    };
    // The link's `wanted` sender lives in the engine task so the link stays up until shutdown.
    let (wanted_tx, wanted_rx) = watch::channel(true);
    let link_task = tokio::spawn(run_link(link_cfg, wanted_rx, shutdown.clone(), ev_tx));
    let (leases, lease_task, answers) = match &cfg.leases {
        Some(l) => {
            let leases =
                crate::store::pg::lease::Leases::new(&l.url, &l.holder, cfg.stores.clone());
            let answers = crate::store::pg::rights::Answers::new(&l.url);
            match leases.and_then(|l| Ok((l, answers?))) {
                Ok((leases, answers)) => {
                    let (rx, task) = super::lease::spawn_leases(leases, shutdown.clone());
                    (Some(rx), Some(task), Some(answers))
                }
                Err(e) => {
                    tracing::error!(error = %e, "hq sync not started");
                    return HqSyncHandle { shared };
                }
            }
        }
        None => (None, None, None),
    };
    let shared2 = shared.clone();
    let engine_task = tokio::spawn(async move {
        let loaded = load(&node).await;
        let loaded = backfill::run(&node, &cfg.stores, loaded).await;
        let topics = super::topic::Topics::new(&cfg.chain);
        let proto = HqProtocol::new(cfg.clone(), loaded, shared2.metrics.clone(), now_ms());
        match (proto, topics) {
            (Ok(proto), Ok(topics)) => {
                let lookups = super::lookup::HqLookups::new(&cfg, topics);
                let events = node.subscribe();
                let driver = Driver {
                    node,
                    proto,
                    shared: shared2,
                    client: None,
                    lookups,
                    answers,
                    probe: cfg.probe.clone(),
                };
                driver.run(ev_rx, events, leases, shutdown).await;
            }
            (Err(e), _) | (_, Err(e)) => tracing::error!(error = %e, "hq sync not started"),
        }
        drop(wanted_tx);
    });
    if let Ok(mut t) = shared.tasks.lock() {
        t.push(link_task);
        t.push(engine_task);
        t.extend(lease_task);
    }
    HqSyncHandle { shared }
}

/// HQ's persisted routing state (empty, logged, when it cannot be read).
async fn load(node: &Node) -> HqLoaded {
    node.query(persist::load_hq).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read hq sync state");
        HqLoaded::default()
    })
}

struct Driver {
    node: Node,
    proto: HqProtocol,
    shared: Arc<Shared>,
    client: Option<AsyncClient>,
    lookups: super::lookup::HqLookups,
    /// With leases: which requests for rights back some process answered (PostgreSQL).
    answers: Option<crate::store::pg::rights::Answers>,
    probe: Option<Arc<Probe>>,
}

impl Driver {
    async fn run(
        mut self,
        mut link: mpsc::Receiver<LinkEvent>,
        mut events: broadcast::Receiver<NodeEvent>,
        leases: Option<watch::Receiver<super::lease::Held>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let leased = leases.is_some();
        // Without leases the channel never changes: this process serves every store.
        let mut leases = leases.unwrap_or_else(|| watch::channel(Default::default()).1);
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut events_open = true;
        let (done_tx, mut done_rx) = mpsc::channel::<Done>(work::cap(self.proto.links().len()));
        let work = Work {
            node: self.node.clone(),
            done: done_tx,
            probe: self.probe.clone(),
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(done) = done_rx.recv() => {
                    self.on_done(done);
                    while let Ok(done) = done_rx.try_recv() {
                        self.on_done(done);
                    }
                }
                ev = link.recv() => match ev {
                    Some(ev) => {
                        // Take everything already queued: each store's up-batches are then
                        // ingested together, one commit per round.
                        self.on_link(ev);
                        for _ in 1..LINK_EVENTS_CAP {
                            match link.try_recv() {
                                Ok(ev) => self.on_link(ev),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                ev = events.recv(), if events_open => match ev {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.proto.handle_committed();
                        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = events.try_recv() {}
                    }
                    Err(broadcast::error::RecvError::Closed) => events_open = false,
                },
                _ = tick.tick() => self.proto.handle_tick(now_ms()),
                Ok(()) = leases.changed(), if leased => {
                    let held = leases.borrow_and_update().clone();
                    self.proto.handle_leases(now_ms(), &held);
                }
            }
            self.carry_out(&work).await;
            let links = self.proto.links();
            let pending: u64 = links.iter().map(|l| l.down_pending).sum();
            self.shared.metrics.outbox.store(pending, Ordering::Relaxed);
            match self.shared.links.lock() {
                Ok(mut l) => *l = links,
                Err(p) => *p.into_inner() = links,
            }
        }
    }

    fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Connected(client) => {
                tracing::info!("hq connected to the broker");
                self.client = Some(client);
                self.proto.handle_link(true);
            }
            LinkEvent::Disconnected => {
                tracing::info!("hq disconnected from the broker");
                self.client = None;
                self.proto.handle_link(false);
            }
            LinkEvent::Publish { topic, payload } => {
                if let Some(probe) = self.probe.as_ref().filter(|p| p.marks_hops()) {
                    probe.mark(Hop::HqReceived, &probe::ops_carried(&payload, None));
                }
                self.proto.handle_message(now_ms(), &topic, &payload)
            }
        }
    }

    /// Carry out every action the protocol has for now; the slow ones run beside the engine
    /// (`work`) and come back through `on_done`.
    async fn carry_out(&mut self, work: &Work) {
        loop {
            let now = now_ms();
            let Some(action) = self.node.read(|r| self.proto.poll(now, r)) else {
                return;
            };
            match action {
                HqAction::Publish(p) => self.publish(p),
                HqAction::Ingest { stores, ops, route } => work.ingest(stores.len(), ops, route),
                HqAction::ReadToRoute(reads) => work.read_to_route(reads),
                HqAction::Route { actions, cursors } => work.route(actions, cursors),
                HqAction::Reload => {
                    let loaded = load(&self.node).await;
                    self.proto.handle_loaded(loaded);
                }
                HqAction::ReadDown {
                    store,
                    after,
                    limit,
                } => work.read_down(store, after, limit),
                HqAction::FindDownStart { store, epoch, vv } => {
                    let who = store.clone();
                    let start = self
                        .node
                        .query(move |c| persist::downlog_start(c, &who, &vv))
                        .await
                        .map_err(|e| tracing::error!(store = %store, error = %e, "cannot read the down-log"))
                        .ok();
                    self.proto.handle_down_start(now_ms(), &store, epoch, start);
                }
                HqAction::AnswerReturns => {
                    let proto = &self.proto;
                    let serves = |s: &crate::domain::StoreId| proto.serves(s);
                    let answered = match &mut self.answers {
                        Some(a) => super::returns::answer_shared(&self.node, a, serves).await,
                        None => super::returns::answer_pending_for(&self.node, serves).await,
                    };
                    if let Err(e) = answered {
                        tracing::warn!(error = %e, "cannot return rights; retried on the next request or restart");
                    }
                }
                HqAction::Lookup { store, lookup } => self.lookups.answer_on_down(
                    &self.node,
                    self.client.as_ref(),
                    &self.shared.metrics,
                    &store,
                    &lookup,
                ),
            }
        }
    }

    /// A slow action came back (`work`): hand its outcome to the protocol.
    fn on_done(&mut self, done: Done) {
        match done {
            Done::Ingested { stores, result } => match result {
                Ok((ingested, routed)) => {
                    let m = &self.shared.metrics;
                    SyncMetrics::add(&m.ops_applied, ingested.applied as u64);
                    SyncMetrics::add(&m.ops_duplicate, ingested.duplicates as u64);
                    SyncMetrics::add(&m.ops_rejected, ingested.rejected.len() as u64);
                    for (id, err) in &ingested.rejected {
                        tracing::warn!(actor = %id.actor, seq = id.seq, error = %err, "refused an op from a store");
                    }
                    self.proto
                        .handle_ingested(now_ms(), Some(&ingested.effects), routed);
                }
                Err(e) => {
                    tracing::error!(stores, error = %e, "cannot apply up-batches; the stores will resend");
                    self.proto.handle_ingested(now_ms(), None, None);
                }
            },
            Done::RouteRead(Ok(reads)) => self.proto.handle_route_reads(reads),
            Done::RouteRead(Err(e)) => {
                tracing::error!(error = %e, "cannot read ops to route");
                self.proto.handle_route_reads(Vec::new());
                self.proto.handle_committed();
            }
            Done::Routed(done) => {
                if let Err(e) = &done {
                    tracing::error!(error = %e, "cannot record routing; retrying");
                }
                self.proto.handle_routed(done.ok());
            }
            Done::Down { store, after, ops } => self.proto.handle_down(&store, after, ops),
        }
    }

    fn publish(&mut self, p: Publish) {
        let queued = self.client.as_ref().is_some_and(|c| {
            c.try_publish(
                p.topic.clone(),
                QoS::AtLeastOnce,
                p.retain,
                p.payload.clone(),
            )
            .is_ok()
        });
        if queued {
            note_sent(&self.shared.metrics, &p);
        } else {
            self.proto.handle_deferred(&p);
        }
    }
}

mod backfill;
mod work;
