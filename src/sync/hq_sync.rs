//! HQ's sync engine: fan-in of every store's ops, and one down-log per store.
//!
//! Up-batches are checked before anything is applied (the topic's store must be known and be
//! the author of every op), ingested, and acked with the store's contiguous seq. Every op HQ
//! holds is routed once, in seq order per actor, into the down-logs of the stores that need it
//! (`route`); the routing position is persisted with the entries. A store's down-log is
//! streamed from the index the store acked, and resent from there on its hello ack, on a gap,
//! or after a retransmit timeout.

use super::link::{run_link, LinkConfig, LinkEvent};
use super::metrics::SyncMetrics;
use super::persist::{self, HqLoaded};
use super::route::Router;
use super::topic::{TopicKind, Topics};
use super::wire::{self, Ack, Message, SignedUp, Status, UpBatch};
use crate::domain::{ActorId, Effect, Op, StoreId};
use crate::signing::StoreKeys;
use crate::store::{now_ms, Node, NodeEvent};
use rumqttc::AsyncClient;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

const TICK_MS: u64 = 50;
const LINK_EVENTS_CAP: usize = 1_024;
const GAP_REQUEST_MS: u64 = 1_000;
/// Ops of one actor routed per step, so one busy actor cannot starve the loop.
const ROUTE_OPS_MAX: usize = 2_000;

/// How HQ reaches the broker and which stores it serves.
#[derive(Debug, Clone)]
pub struct HqSyncConfig {
    pub chain: String,
    pub broker_host: String,
    pub broker_port: u16,
    pub client_id: String,
    pub keepalive_s: u64,
    /// Known stores; up-batches from any other store are refused.
    pub stores: Vec<StoreId>,
    pub batch_ops_max: usize,
    pub retransmit_ms: u64,
    /// Most down-log entries sent to one store and not yet acked.
    pub inflight_ops_max: u64,
    /// The stores' public keys. When set, every up-batch must be signed by the store of its
    /// topic (`SignedUp`); unsigned, wrongly signed and cross-store batches are refused,
    /// counted and logged. `None` accepts unsigned batches (demo, tests).
    pub store_keys: Option<Arc<StoreKeys>>,
    /// Customer lookups answered per store (`super::lookup`); more are refused and counted.
    pub lookup_rate: crate::http_security::RateLimit,
}

impl HqSyncConfig {
    pub fn new(chain: &str, stores: Vec<StoreId>, broker_host: &str, broker_port: u16) -> Self {
        HqSyncConfig {
            chain: chain.to_string(),
            broker_host: broker_host.to_string(),
            broker_port,
            client_id: format!("storenode-{chain}-hq"),
            keepalive_s: 15,
            stores,
            batch_ops_max: 500,
            retransmit_ms: 3_000,
            inflight_ops_max: 5_000,
            store_keys: None,
            lookup_rate: super::lookup::LOOKUP_RATE_DEFAULT,
        }
    }
}

/// HQ's view of one store's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreLink {
    pub store: StoreId,
    /// From the store's retained status (its Last Will turns it false) and its acks.
    pub online: bool,
    pub last_seen_ms: Option<u64>,
    /// The store's own ops not yet acked by HQ, as the store last reported.
    pub outbox: u64,
    /// What the store last reported as durably applied (contiguous seq per actor).
    pub acked_vv: BTreeMap<ActorId, u64>,
    /// Down-log entries not yet acked by the store.
    pub down_pending: u64,
    /// Last down-log index the store reported applied (0 until it acks after HQ starts).
    pub down_acked: u64,
    /// Software version the store reported.
    pub version: Option<String>,
}

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
    let topics = match Topics::new(&cfg.chain) {
        Ok(t) => t,
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
        subscriptions: vec![
            topics.wildcard(TopicKind::Up),
            topics.wildcard(TopicKind::Ack),
            topics.wildcard(TopicKind::Status),
            topics.wildcard(TopicKind::Lookup),
        ],
    };
    // The link's `wanted` sender lives in the engine task so the link stays up until shutdown.
    let (wanted_tx, wanted_rx) = watch::channel(true);
    let link_task = tokio::spawn(run_link(link_cfg, wanted_rx, shutdown.clone(), ev_tx));
    let events = node.subscribe();
    let engine = HqEngine::new(node, cfg, topics, shared.clone());
    let engine_task = tokio::spawn(async move {
        engine.run(ev_rx, events, shutdown).await;
        drop(wanted_tx);
    });
    if let Ok(mut t) = shared.tasks.lock() {
        t.push(link_task);
        t.push(engine_task);
    }
    HqSyncHandle { shared }
}

#[derive(Debug, Default, Clone, Copy)]
struct AckDue {
    resend: bool,
    reply: bool,
}

/// HQ's sync state for one store.
struct Peer {
    online: bool,
    /// The store answered since HQ or the store (re)connected: `down_acked` is current.
    synced: bool,
    last_seen_ms: Option<u64>,
    outbox: u64,
    version: Option<String>,
    acked_vv: BTreeMap<ActorId, u64>,
    down_acked: u64,
    down_sent: u64,
    down_last: u64,
    last_progress: Instant,
    ack_due: Option<AckDue>,
    gap_requested: Option<Instant>,
}

impl Peer {
    fn new(down_last: u64) -> Peer {
        Peer {
            online: false,
            synced: false,
            last_seen_ms: None,
            outbox: 0,
            version: None,
            acked_vv: BTreeMap::new(),
            down_acked: 0,
            down_sent: 0,
            down_last,
            last_progress: Instant::now(),
            ack_due: None,
            gap_requested: None,
        }
    }

    fn seen(&mut self) {
        self.online = true;
        self.last_seen_ms = Some(now_ms());
    }
}

struct HqEngine {
    node: Node,
    cfg: HqSyncConfig,
    topics: Topics,
    shared: Arc<Shared>,
    metrics: Arc<SyncMetrics>,
    client: Option<AsyncClient>,
    router: Router,
    routed: BTreeMap<ActorId, u64>,
    peers: BTreeMap<StoreId, Peer>,
    route_due: bool,
    /// Up-batches received in this round, by store, not yet ingested.
    pending_up: BTreeMap<StoreId, Vec<Op>>,
    /// Cursors of the routing write in flight, if any.
    routing: Option<Vec<(ActorId, u64)>>,
    /// Answers stores' customer lookups.
    lookups: super::lookup::HqLookups,
}

/// Outcome of a routing write: the last down-log index of every store that got entries.
type RouteDone = Result<BTreeMap<StoreId, u64>, crate::store::StoreError>;

impl HqEngine {
    fn new(node: Node, cfg: HqSyncConfig, topics: Topics, shared: Arc<Shared>) -> Self {
        HqEngine {
            lookups: super::lookup::HqLookups::new(&cfg, topics.clone()),
            metrics: shared.metrics.clone(),
            router: Router::new(cfg.stores.clone(), Default::default()),
            peers: cfg
                .stores
                .iter()
                .map(|s| (s.clone(), Peer::new(0)))
                .collect(),
            node,
            cfg,
            topics,
            shared,
            client: None,
            routed: BTreeMap::new(),
            route_due: true,
            pending_up: BTreeMap::new(),
            routing: None,
        }
    }

    /// Load routing state; returns the stores that already have a down-log.
    async fn load(&mut self) -> BTreeSet<StoreId> {
        match self.node.query(persist::load_hq).await {
            Ok(HqLoaded {
                routed,
                stores,
                scope,
                downlog_last,
            }) => {
                self.routed = routed;
                self.router = Router::new(self.cfg.stores.clone(), scope);
                for (store, peer) in &mut self.peers {
                    peer.down_last = downlog_last.get(store).copied().unwrap_or(0);
                }
                stores
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read hq sync state");
                BTreeSet::new()
            }
        }
    }

    async fn run(
        mut self,
        mut link: mpsc::Receiver<LinkEvent>,
        mut events: broadcast::Receiver<NodeEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let known = self.load().await;
        self.backfill(&known).await;
        // Return requests applied before a crash and never answered.
        if let Err(e) = super::returns::answer_pending(&self.node).await {
            tracing::warn!(error = %e, "cannot answer pending return requests");
        }
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut events_open = true;
        let (route_tx, mut route_rx) = mpsc::channel(1);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(done) = route_rx.recv() => self.routed(done).await,
                ev = link.recv() => match ev {
                    Some(ev) => {
                        // Take everything already queued, then ingest each store's up-batches
                        // together: one commit per round however many messages arrived.
                        self.on_link(ev);
                        for _ in 1..LINK_EVENTS_CAP {
                            match link.try_recv() {
                                Ok(ev) => self.on_link(ev),
                                Err(_) => break,
                            }
                        }
                        self.flush_up().await;
                    }
                    None => break,
                },
                ev = events.recv(), if events_open => match ev {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.route_due = true;
                        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = events.try_recv() {}
                    }
                    Err(broadcast::error::RecvError::Closed) => events_open = false,
                },
                _ = tick.tick() => {}
            }
            self.route(&route_tx).await;
            self.pump().await;
            self.snapshot();
        }
    }

    fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Connected(client) => {
                tracing::info!("hq connected to the broker");
                SyncMetrics::add(&self.metrics.connects, 1);
                self.client = Some(client);
                for peer in self.peers.values_mut() {
                    peer.synced = false;
                    peer.ack_due = Some(AckDue {
                        resend: true,
                        reply: true,
                    });
                }
            }
            LinkEvent::Disconnected => {
                tracing::info!("hq disconnected from the broker");
                self.client = None;
            }
            LinkEvent::Publish { topic, payload } => self.on_publish(&topic, &payload),
        }
    }

    fn on_publish(&mut self, topic: &str, payload: &[u8]) {
        let Ok((store, kind)) = self.topics.parse(topic) else {
            return;
        };
        SyncMetrics::add(&self.metrics.bytes_received, payload.len() as u64);
        if kind == TopicKind::Down {
            return;
        }
        if !self.peers.contains_key(&store) {
            if matches!(kind, TopicKind::Up | TopicKind::Lookup) {
                self.metrics.reject("unknown_store");
                tracing::warn!(store = %store, "refused a batch from an unknown store");
            }
            return;
        }
        let msg = match wire::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                self.metrics.reject(e.reason());
                tracing::warn!(store = %store, topic, error = %e, "refused a sync payload");
                return;
            }
        };
        match (kind, msg) {
            (TopicKind::Up, Message::Up(batch)) => match &self.cfg.store_keys {
                Some(keys) => {
                    // Counted and logged by the verifier.
                    if let Err(e) = keys.verify(&store, &batch.store, &[], None) {
                        self.metrics.reject(e.reason());
                    }
                }
                None => self.on_up(store, batch),
            },
            (TopicKind::Up, Message::SignedUp(signed)) => self.on_signed_up(store, signed),
            (TopicKind::Ack, Message::Ack(ack)) => self.on_ack(store, ack),
            (TopicKind::Status, Message::Status(status)) => self.on_status(store, status),
            (TopicKind::Lookup, Message::Lookup(lookup)) => self.lookups.answer_on_down(
                &self.node,
                self.client.as_ref(),
                &self.metrics,
                &store,
                &lookup,
            ),
            (kind, msg) => {
                self.metrics.reject("malformed");
                tracing::warn!(store = %store, topic = kind.as_str(), message = msg.kind(), "unexpected message on topic");
            }
        }
    }

    /// Refuse the whole batch unless the topic's store authored every op in it.
    fn check_up(&self, store: &StoreId, batch: &UpBatch) -> Result<(), &'static str> {
        if batch.store != *store {
            tracing::warn!(store = %store, batch_store = %batch.store, "refused a batch naming another store");
            return Err("wrong_store");
        }
        let me = store.actor();
        if let Some(op) = batch.ops.iter().find(|op| op.actor != me) {
            tracing::warn!(store = %store, actor = %op.actor, seq = op.seq, "refused a batch with an op from another actor");
            return Err("wrong_actor");
        }
        Ok(())
    }

    /// Verify a signed batch's bytes (when keys are configured), then open and apply it.
    fn on_signed_up(&mut self, store: StoreId, signed: SignedUp) {
        if let Some(keys) = &self.cfg.store_keys {
            let checked = keys.verify(
                &store,
                &signed.store,
                &signed.batch,
                Some(&signed.signature),
            );
            if let Err(e) = checked {
                self.metrics.reject(e.reason());
                return;
            }
        }
        match wire::open_signed_up(&signed) {
            Ok(batch) => self.on_up(store, batch),
            Err(e) => {
                self.metrics.reject(e.reason());
                tracing::warn!(store = %store, error = %e, "refused a signed batch");
            }
        }
    }

    /// A checked up-batch waits in `pending_up` for `flush_up`.
    fn on_up(&mut self, store: StoreId, batch: UpBatch) {
        if let Err(reason) = self.check_up(&store, &batch) {
            self.metrics.reject(reason);
            return;
        }
        SyncMetrics::add(&self.metrics.batches_received, 1);
        self.pending_up.entry(store).or_default().extend(batch.ops);
    }

    /// Ingest every store's pending up-batches (one request per store, one group commit),
    /// then ack them.
    async fn flush_up(&mut self) {
        for (store, mut ops) in std::mem::take(&mut self.pending_up) {
            ops.sort_by_key(|op| op.seq);
            self.ingest_up(store, ops).await;
        }
    }

    async fn ingest_up(&mut self, store: StoreId, ops: Vec<Op>) {
        let actor = store.actor();
        let before = self.node.read(|r| r.version().contiguous(&actor));
        let gap = ops.first().is_some_and(|op| op.seq > before + 1);
        let ingested = match self.node.ingest(ops).await {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(store = %store, error = %e, "cannot apply an up-batch; the store will resend");
                return;
            }
        };
        SyncMetrics::add(&self.metrics.ops_applied, ingested.applied as u64);
        SyncMetrics::add(&self.metrics.ops_duplicate, ingested.duplicates as u64);
        SyncMetrics::add(&self.metrics.ops_rejected, ingested.rejected.len() as u64);
        for (id, err) in &ingested.rejected {
            tracing::warn!(store = %store, actor = %id.actor, seq = id.seq, error = %err, "refused an op from a store");
        }
        self.route_due = true;
        self.react(&ingested.effects).await;
        let Some(peer) = self.peers.get_mut(&store) else {
            return;
        };
        peer.seen();
        let recent = peer
            .gap_requested
            .is_some_and(|t| t.elapsed() < Duration::from_millis(GAP_REQUEST_MS));
        let resend = gap && !recent;
        if resend {
            peer.gap_requested = Some(Instant::now());
        }
        let due = peer.ack_due.get_or_insert_with(AckDue::default);
        due.resend |= resend;
    }

    /// HQ hands back rights a store asked for: answered from the log, exactly once
    /// (`returns::answer_pending`).
    async fn react(&mut self, effects: &[Effect]) {
        if effects
            .iter()
            .any(|e| matches!(e, Effect::ReturnRequested { .. }))
        {
            if let Err(e) = super::returns::answer_pending(&self.node).await {
                tracing::warn!(error = %e, "cannot return rights; retried on the next request or restart");
            }
        }
    }

    fn on_ack(&mut self, store: StoreId, ack: Ack) {
        if ack.from.is_hq() {
            return;
        }
        if ack.from != store.actor() {
            self.metrics.reject("wrong_actor");
            tracing::warn!(store = %store, from = %ack.from, "refused an ack from another actor");
            return;
        }
        SyncMetrics::add(&self.metrics.acks_received, 1);
        self.metrics.last_sync_ms.store(now_ms(), Ordering::Relaxed);
        let Some(peer) = self.peers.get_mut(&store) else {
            return;
        };
        peer.seen();
        peer.acked_vv = ack.vv;
        if ack.down_idx > peer.down_acked || ack.resend {
            peer.down_acked = ack.down_idx.min(peer.down_last);
            peer.last_progress = Instant::now();
        }
        peer.down_sent = peer.down_sent.max(peer.down_acked);
        if ack.resend {
            peer.down_sent = peer.down_acked;
            peer.synced = true;
        }
        if ack.reply {
            peer.ack_due = Some(AckDue {
                resend: true,
                reply: false,
            });
        }
    }

    fn on_status(&mut self, store: StoreId, status: Status) {
        let Some(peer) = self.peers.get_mut(&store) else {
            return;
        };
        tracing::info!(store = %store, online = status.online, "store status");
        peer.online = status.online;
        peer.outbox = status.outbox;
        peer.version = Some(status.version);
        if status.online {
            peer.last_seen_ms = Some(now_ms());
        } else {
            peer.synced = false;
        }
    }
}

mod backfill;
mod pump;
