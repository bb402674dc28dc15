//! A store's sync daemon: the thin loop that carries out `protocol::store::StoreProtocol`.
//!
//! One task `select!`s over the MQTT link's events (`link`), the node's commits, a timer and
//! shutdown; it feeds each to the protocol, then drains the protocol's actions: publish
//! (never waiting on the MQTT request queue), read the outbox, ingest, persist a cursor,
//! submit a reaction. No protocol decision lives here.

use super::link::{run_link, LinkConfig, LinkEvent};
use super::lookup::StoreLookups;
use super::metrics::SyncMetrics;
use super::persist;
use super::probe::{self, Busy, Hop, Probe};
use super::protocol::store::{StoreAction, StoreCursors, StoreProtocol};
use super::protocol::{note_sent, Carries, Publish};
use crate::domain::Op;
use crate::store::{now_ms, Ingested, Node, NodeEvent, StoreError};
use rumqttc::{AsyncClient, QoS};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use super::protocol::store::{LinkStatus, StoreSyncConfig};

/// Interval of the housekeeping tick (deferred publishes, retransmits).
const TICK_MS: u64 = 50;
/// Link events buffered between the MQTT task and the engine.
const LINK_EVENTS_CAP: usize = 256;

struct Shared {
    status: Mutex<LinkStatus>,
    metrics: Arc<SyncMetrics>,
    link: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    lookups: Arc<StoreLookups>,
}

/// Handle to a running store sync engine (cheap to clone).
#[derive(Clone)]
pub struct StoreSyncHandle {
    shared: Arc<Shared>,
}

impl StoreSyncHandle {
    pub fn status(&self) -> LinkStatus {
        self.shared
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Cut (`false`) or restore (`true`) the uplink. While cut the store works locally.
    pub fn set_link(&self, online: bool) {
        self.shared.link.send_replace(online);
    }

    pub fn metrics(&self) -> Arc<SyncMetrics> {
        self.shared.metrics.clone()
    }

    /// Customer lookups at HQ through this engine's connection (`super::lookup`).
    pub fn lookups(&self) -> Arc<StoreLookups> {
        self.shared.lookups.clone()
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

/// Start the store's sync engine; it runs until `shutdown` turns true.
pub fn spawn_store_sync(
    node: Node,
    cfg: StoreSyncConfig,
    shutdown: watch::Receiver<bool>,
) -> StoreSyncHandle {
    let (link_tx, link_rx) = watch::channel(true);
    let shared = Arc::new(Shared {
        status: Mutex::new(LinkStatus {
            online: false,
            since_ms: now_ms(),
            outbox: 0,
            last_sync_ms: None,
        }),
        metrics: Arc::new(SyncMetrics::new()),
        lookups: Arc::new(StoreLookups::new(
            &cfg.chain,
            cfg.store.clone(),
            cfg.signing_key.clone(),
            link_tx.subscribe(),
        )),
        link: link_tx,
        tasks: Mutex::new(Vec::new()),
    });
    let cursors = match node.query_blocking(persist::load_store) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot read sync state; starting from zero");
            StoreCursors::default()
        }
    };
    let proto = match StoreProtocol::new(cfg.clone(), cursors, shared.metrics.clone(), now_ms()) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "store sync not started");
            return StoreSyncHandle { shared };
        }
    };
    let (ev_tx, ev_rx) = mpsc::channel(LINK_EVENTS_CAP);
    let link_cfg = LinkConfig {
        host: cfg.broker_host.clone(),
        port: cfg.broker_port,
        client_id: cfg.client_id.clone(),
        keepalive_s: cfg.keepalive_s,
        will: Some(proto.will(now_ms())),
        subscriptions: proto.subscriptions(),
    };
    let link_task = tokio::spawn(run_link(link_cfg, link_rx, shutdown.clone(), ev_tx));
    let events = node.subscribe();
    let driver = Driver {
        node,
        proto,
        shared: shared.clone(),
        client: None,
        probe: cfg.probe.clone(),
    };
    let engine_task = tokio::spawn(driver.run(ev_rx, events, shutdown));
    if let Ok(mut t) = shared.tasks.lock() {
        t.push(link_task);
        t.push(engine_task);
    }
    StoreSyncHandle { shared }
}

struct Driver {
    node: Node,
    proto: StoreProtocol,
    shared: Arc<Shared>,
    client: Option<AsyncClient>,
    probe: Option<Arc<Probe>>,
}

impl Driver {
    async fn run(
        mut self,
        mut link: mpsc::Receiver<LinkEvent>,
        mut events: broadcast::Receiver<NodeEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut events_open = true;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                ev = link.recv() => match ev {
                    Some(ev) => {
                        // Take what is already queued too, so consecutive down-batches
                        // become one ingest (one commit).
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
                ev = events.recv(), if events_open => events_open = self.on_node_event(ev, &mut events),
                _ = tick.tick() => self.proto.handle_tick(now_ms()),
            }
            self.carry_out().await;
            let (status, outbox) = self.node.read(|r| {
                let s = self.proto.link_status(r);
                let o = s.outbox;
                (s, o)
            });
            self.shared
                .metrics
                .outbox
                .store(outbox, std::sync::atomic::Ordering::Relaxed);
            match self.shared.status.lock() {
                Ok(mut s) => *s = status,
                Err(p) => *p.into_inner() = status,
            }
        }
    }

    fn on_link(&mut self, ev: LinkEvent) {
        let store = self.proto.store().clone();
        match ev {
            LinkEvent::Connected(client) => {
                tracing::info!(store = %store, "connected to the broker");
                self.shared.lookups.set_client(Some(client.clone()));
                self.client = Some(client);
                self.proto.handle_link(now_ms(), true);
            }
            LinkEvent::Disconnected => {
                tracing::info!(store = %store, "disconnected from the broker");
                self.shared.lookups.set_client(None);
                self.client = None;
                self.proto.handle_link(now_ms(), false);
            }
            LinkEvent::Publish { topic, payload } => {
                if let Some(probe) = self.probe.as_ref().filter(|p| p.marks_hops()) {
                    probe.mark(
                        Hop::StoreReceived,
                        &probe::ops_carried(&payload, Some(&store)),
                    );
                }
                self.proto.handle_message(now_ms(), &topic, &payload)
            }
        }
    }

    /// Feed a commit (and every one queued behind it); false once the node is gone.
    fn on_node_event(
        &mut self,
        first: Result<NodeEvent, broadcast::error::RecvError>,
        events: &mut broadcast::Receiver<NodeEvent>,
    ) -> bool {
        let mut next = Some(first);
        while let Some(ev) = next.take() {
            match ev {
                Ok(NodeEvent::Applied {
                    ops,
                    effects,
                    local,
                }) => {
                    if let (Some(probe), true) = (&self.probe, local) {
                        probe.mark(Hop::StoreSeen, ops.iter());
                    }
                    self.proto.handle_committed(&ops, &effects)
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.proto.handle_lagged(),
                Err(broadcast::error::RecvError::Closed) => return false,
            }
            next = match events.try_recv() {
                Ok(ev) => Some(Ok(ev)),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    Some(Err(broadcast::error::RecvError::Lagged(n)))
                }
                Err(_) => None,
            };
        }
        true
    }

    /// Carry out every action the protocol has for now.
    async fn carry_out(&mut self) {
        loop {
            let now = now_ms();
            let Some(action) = self.node.read(|r| self.proto.poll(now, r)) else {
                return;
            };
            match action {
                StoreAction::Publish(p) => self.publish(p),
                StoreAction::ReadOutbox { after, limit } => {
                    let me = self.node.actor().clone();
                    let ops = self
                        .node
                        .query(move |c| Node::ops_since(c, &me, after, limit))
                        .await
                        .unwrap_or_else(|e| {
                            tracing::error!(error = %e, "cannot read the outbox");
                            Vec::new()
                        });
                    self.proto.handle_outbox(after, ops);
                }
                StoreAction::Ingest { ops, .. } => match self.ingest(ops).await {
                    Ok(ingested) => {
                        let m = &self.shared.metrics;
                        SyncMetrics::add(&m.ops_applied, ingested.applied as u64);
                        SyncMetrics::add(&m.ops_duplicate, ingested.duplicates as u64);
                        SyncMetrics::add(&m.ops_rejected, ingested.rejected.len() as u64);
                        for (id, err) in &ingested.rejected {
                            tracing::warn!(actor = %id.actor, seq = id.seq, error = %err, "refused an op from HQ");
                        }
                        self.proto.handle_ingested(Some(&ingested.effects));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot apply a down-batch; HQ will resend");
                        self.proto.handle_ingested(None);
                    }
                },
                StoreAction::Persist { key, value } => {
                    persist::raise_in_background(&self.node, key, value)
                }
                StoreAction::Submit(payload) => {
                    let kind = payload.kind();
                    if let Err(e) = self.node.submit(vec![payload]).await {
                        tracing::debug!(kind, error = %e, "reaction not submitted");
                    }
                }
                StoreAction::LookupReply(reply) => self.shared.lookups.on_reply(reply),
            }
        }
    }

    /// `Node::ingest`, stamped when a probe is configured.
    async fn ingest(&self, ops: Vec<Op>) -> Result<Ingested, StoreError> {
        let Some(probe) = self.probe.clone() else {
            return self.node.ingest(ops).await;
        };
        probe.mark(Hop::StoreIngestStart, &ops);
        let stamped = probe.marks_hops().then(|| ops.clone());
        let started = Instant::now();
        let ingested = self.node.ingest(ops).await;
        probe.busy(Busy::StoreIngest, started.elapsed());
        if let (Some(stamped), true) = (stamped, ingested.is_ok()) {
            probe.mark(Hop::StoreIngestDone, &stamped);
        }
        ingested
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
            if let (Some(probe), Carries::Ops { after, ops, .. }) = (&self.probe, &p.carries) {
                let me = self.node.actor();
                probe.mark_range(Hop::StorePublished, me, after + 1..=after + *ops as u64);
            }
            note_sent(&self.shared.metrics, &p);
        } else {
            self.proto.handle_deferred(&p);
        }
    }
}
