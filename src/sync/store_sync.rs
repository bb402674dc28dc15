//! A store's sync engine: publishes its own ops until HQ's ack covers them, applies HQ's
//! down-log in order, and reacts to the state it reaches (releases, shortfall cover, HQ
//! allocation top-ups).
//!
//! Protocol per connection: on ConnAck publish the retained online status and a hello ack
//! (`resend` + `reply`), so HQ resends its down-log after our `down_idx` and tells us its view
//! of our seqs; we resend our outbox from there. A down-batch is acked only after `ingest`
//! returned, i.e. after it is on disk. Lost messages are repaired by gap requests and a
//! retransmit timer; duplicates are harmless because ingest is idempotent.

use super::link::{run_link, LinkConfig, LinkEvent};
use super::lookup::StoreLookups;
use super::metrics::SyncMetrics;
use super::persist::{self, KEY_DOWN_IDX, KEY_HQ_ACKED_SEQ};
use super::reaction::skus_touched;
use super::topic::{TopicKind, Topics};
use super::wire::{self, Ack, DownBatch, Message, Status};
use crate::domain::inventory::AllocationPolicy;
use crate::domain::{ActorId, Effect, Payload, Sku, StoreId};
use crate::signing::{KeyError, StoreKey};
use crate::store::{now_ms, Node, NodeEvent};
use rumqttc::AsyncClient;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

/// Interval of the engine's housekeeping tick (deferred publishes, retransmits).
const TICK_MS: u64 = 50;
/// Link events buffered between the MQTT task and the engine.
const LINK_EVENTS_CAP: usize = 256;
/// Minimum time between two gap requests.
const GAP_REQUEST_MS: u64 = 1_000;

/// How a store reaches HQ.
#[derive(Debug, Clone)]
pub struct StoreSyncConfig {
    pub chain: String,
    pub store: StoreId,
    pub broker_host: String,
    pub broker_port: u16,
    pub client_id: String,
    pub keepalive_s: u64,
    pub batch_ops_max: usize,
    pub allocation: AllocationPolicy,
    /// Reported in the retained status.
    pub version: String,
    /// Resend unacked ops after this long without ack progress.
    pub retransmit_ms: u64,
    /// Most own ops published and not yet acked.
    pub inflight_ops_max: u64,
    /// The store's ed25519 key: when set, every up-batch is signed (`SignedUp`).
    pub signing_key: Option<Arc<StoreKey>>,
}

impl StoreSyncConfig {
    /// Defaults for everything but the names and the broker.
    pub fn new(chain: &str, store: StoreId, broker_host: &str, broker_port: u16) -> Self {
        StoreSyncConfig {
            chain: chain.to_string(),
            client_id: format!("storenode-{chain}-{store}"),
            store,
            broker_host: broker_host.to_string(),
            broker_port,
            keepalive_s: 15,
            batch_ops_max: 500,
            allocation: AllocationPolicy::default(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            retransmit_ms: 3_000,
            inflight_ops_max: 5_000,
            signing_key: None,
        }
    }

    /// Sign up-batches with the key kept beside the store's database at `db`, created on
    /// first start (register its public key at HQ: `storenode key --db ...`).
    pub fn with_key_beside(mut self, db: &std::path::Path) -> Result<Self, KeyError> {
        let key = StoreKey::load_or_create(db, self.store.clone())?;
        self.signing_key = Some(Arc::new(key));
        Ok(self)
    }
}

/// The store's view of its uplink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    pub online: bool,
    /// When the current state (online or offline) began, ms.
    pub since_ms: u64,
    /// Own ops not yet acknowledged by HQ.
    pub outbox: u64,
    /// Last ack or batch from HQ, ms.
    pub last_sync_ms: Option<u64>,
}

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
    let topics = match Topics::new(&cfg.chain) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "store sync not started");
            return StoreSyncHandle { shared };
        }
    };
    let (ev_tx, ev_rx) = mpsc::channel(LINK_EVENTS_CAP);
    let offline = wire::encode(&Message::Status(Status {
        online: false,
        version: cfg.version.clone(),
        outbox: 0,
        at_ms: now_ms(),
    }))
    .unwrap_or_default();
    let link_cfg = LinkConfig {
        host: cfg.broker_host.clone(),
        port: cfg.broker_port,
        client_id: cfg.client_id.clone(),
        keepalive_s: cfg.keepalive_s,
        will: Some((topics.topic(&cfg.store, TopicKind::Status), offline)),
        subscriptions: vec![
            topics.topic(&cfg.store, TopicKind::Down),
            topics.topic(&cfg.store, TopicKind::Ack),
        ],
    };
    let link_task = tokio::spawn(run_link(link_cfg, link_rx, shutdown.clone(), ev_tx));
    let events = node.subscribe();
    let engine = StoreEngine::new(node, cfg, topics, shared.clone());
    let engine_task = tokio::spawn(engine.run(ev_rx, events, shutdown));
    if let Ok(mut t) = shared.tasks.lock() {
        t.push(link_task);
        t.push(engine_task);
    }
    StoreSyncHandle { shared }
}

/// What to send in the next ack.
#[derive(Debug, Default, Clone, Copy)]
struct AckDue {
    resend: bool,
    reply: bool,
}

struct StoreEngine {
    node: Node,
    cfg: StoreSyncConfig,
    topics: Topics,
    me: ActorId,
    shared: Arc<Shared>,
    metrics: Arc<SyncMetrics>,
    client: Option<AsyncClient>,
    since_ms: u64,
    last_sync_ms: Option<u64>,
    /// Highest own seq HQ acknowledged (persisted).
    hq_acked: u64,
    /// Highest own seq published on this connection.
    sent_seq: u64,
    last_progress: Instant,
    /// Last down-log index applied (persisted).
    down_idx: u64,
    ack_due: Option<AckDue>,
    status_due: bool,
    status_sent: (Instant, u64),
    gap_requested: Option<Instant>,
    dirty_skus: BTreeSet<Sku>,
    sweep_all: bool,
    releases_due: bool,
}

impl StoreEngine {
    fn new(node: Node, cfg: StoreSyncConfig, topics: Topics, shared: Arc<Shared>) -> Self {
        StoreEngine {
            me: cfg.store.actor(),
            metrics: shared.metrics.clone(),
            node,
            cfg,
            topics,
            shared,
            client: None,
            since_ms: now_ms(),
            last_sync_ms: None,
            hq_acked: 0,
            sent_seq: 0,
            last_progress: Instant::now(),
            down_idx: 0,
            ack_due: None,
            status_due: false,
            status_sent: (Instant::now(), u64::MAX),
            gap_requested: None,
            dirty_skus: BTreeSet::new(),
            sweep_all: true,
            releases_due: true,
        }
    }

    async fn run(
        mut self,
        mut link: mpsc::Receiver<LinkEvent>,
        mut events: broadcast::Receiver<NodeEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        match self
            .node
            .query(|c| {
                Ok((
                    persist::get_u64(c, KEY_HQ_ACKED_SEQ)?,
                    persist::get_u64(c, KEY_DOWN_IDX)?,
                ))
            })
            .await
        {
            Ok((acked, down)) => {
                self.hq_acked = acked;
                self.sent_seq = acked;
                self.down_idx = down;
            }
            Err(e) => tracing::error!(error = %e, "cannot read sync state; starting from zero"),
        }
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut events_open = true;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                ev = link.recv() => match ev {
                    Some(ev) => self.on_links(ev, &mut link).await,
                    None => break,
                },
                ev = events.recv(), if events_open => self.on_node_events(ev, &mut events, &mut events_open),
                _ = tick.tick() => {}
            }
            self.react().await;
            self.pump().await;
            self.publish_status_snapshot();
        }
    }

    /// Handle `first` and every link event already queued behind it, merging consecutive
    /// down-batches into one `ingest` (one commit), so a backlog costs one round, not one
    /// round per message.
    async fn on_links(&mut self, first: LinkEvent, link: &mut mpsc::Receiver<LinkEvent>) {
        let mut merged: Option<DownBatch> = None;
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(ev) = next.take() {
            handled += 1;
            match self.down_of(&ev) {
                Some(batch) => {
                    merged = match merged {
                        Some(mut m) if m.first_idx + m.ops.len() as u64 == batch.first_idx => {
                            m.ops.extend(batch.ops);
                            Some(m)
                        }
                        Some(m) => {
                            self.on_down(m).await;
                            Some(batch)
                        }
                        None => Some(batch),
                    };
                }
                None => {
                    if let Some(m) = merged.take() {
                        self.on_down(m).await;
                    }
                    self.on_link(ev).await;
                }
            }
            if handled < LINK_EVENTS_CAP {
                next = link.try_recv().ok();
            }
        }
        if let Some(m) = merged {
            self.on_down(m).await;
        }
    }

    /// The down-batch an event carries, if it is one for this store.
    fn down_of(&self, ev: &LinkEvent) -> Option<DownBatch> {
        let LinkEvent::Publish { topic, payload } = ev else {
            return None;
        };
        match self.topics.parse(topic) {
            Ok((store, TopicKind::Down)) if store == self.cfg.store => {}
            _ => return None,
        }
        match wire::decode(payload) {
            Ok(Message::Down(batch)) => {
                SyncMetrics::add(&self.metrics.bytes_received, payload.len() as u64);
                SyncMetrics::add(&self.metrics.batches_received, 1);
                Some(batch)
            }
            _ => None,
        }
    }

    /// Note `first` and every node event already queued behind it.
    fn on_node_events(
        &mut self,
        first: Result<NodeEvent, broadcast::error::RecvError>,
        events: &mut broadcast::Receiver<NodeEvent>,
        open: &mut bool,
    ) {
        let mut next = Some(first);
        while let Some(ev) = next.take() {
            match ev {
                Ok(ev) => self.on_node_event(ev),
                Err(broadcast::error::RecvError::Lagged(_)) => self.sweep_all = true,
                Err(broadcast::error::RecvError::Closed) => {
                    *open = false;
                    return;
                }
            }
            next = match events.try_recv() {
                Ok(ev) => Some(Ok(ev)),
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    Some(Err(broadcast::error::RecvError::Lagged(n)))
                }
                Err(_) => None,
            };
        }
    }

    async fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Connected(client) => {
                tracing::info!(store = %self.cfg.store, "connected to the broker");
                SyncMetrics::add(&self.metrics.connects, 1);
                self.shared.lookups.set_client(Some(client.clone()));
                self.client = Some(client);
                self.since_ms = now_ms();
                self.sent_seq = self.hq_acked;
                self.last_progress = Instant::now();
                self.status_due = true;
                self.ack_due = Some(AckDue {
                    resend: true,
                    reply: true,
                });
                self.sweep_all = true;
            }
            LinkEvent::Disconnected => {
                tracing::info!(store = %self.cfg.store, "disconnected from the broker");
                self.shared.lookups.set_client(None);
                self.client = None;
                self.since_ms = now_ms();
            }
            LinkEvent::Publish { topic, payload } => self.on_publish(&topic, &payload).await,
        }
    }

    async fn on_publish(&mut self, topic: &str, payload: &[u8]) {
        let kind = match self.topics.parse(topic) {
            Ok((store, kind)) if store == self.cfg.store => kind,
            _ => return,
        };
        SyncMetrics::add(&self.metrics.bytes_received, payload.len() as u64);
        let msg = match wire::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                self.metrics.reject(e.reason());
                tracing::warn!(topic, error = %e, "refused a sync payload");
                return;
            }
        };
        match (kind, msg) {
            (TopicKind::Down, Message::Down(batch)) => {
                SyncMetrics::add(&self.metrics.batches_received, 1);
                self.on_down(batch).await
            }
            (TopicKind::Ack, Message::Ack(ack)) if ack.from.is_hq() => self.on_ack(ack),
            (TopicKind::Ack, Message::Ack(_)) => {}
            (TopicKind::Down, Message::LookupReply(reply)) => self.shared.lookups.on_reply(reply),
            (kind, msg) => {
                self.metrics.reject("malformed");
                tracing::warn!(
                    topic,
                    kind = kind.as_str(),
                    message = msg.kind(),
                    "unexpected message on topic"
                );
            }
        }
    }

    async fn on_down(&mut self, batch: DownBatch) {
        self.touch_sync();
        let n = batch.ops.len() as u64;
        if n == 0 {
            return;
        }
        let last = batch.first_idx.saturating_add(n - 1);
        if last <= self.down_idx {
            self.ack_due.get_or_insert_with(AckDue::default);
            return;
        }
        if batch.first_idx > self.down_idx + 1 {
            let recent = self
                .gap_requested
                .is_some_and(|t| t.elapsed() < Duration::from_millis(GAP_REQUEST_MS));
            if !recent {
                tracing::debug!(
                    have = self.down_idx,
                    got = batch.first_idx,
                    "down-log gap; asking HQ to resend"
                );
                self.gap_requested = Some(Instant::now());
                self.ack_due = Some(AckDue {
                    resend: true,
                    reply: false,
                });
            }
            return;
        }
        self.gap_requested = None;
        let skip = (self.down_idx + 1 - batch.first_idx) as usize;
        let ops: Vec<_> = batch.ops.into_iter().skip(skip).collect();
        match self.node.ingest(ops).await {
            Ok(ingested) => {
                SyncMetrics::add(&self.metrics.ops_applied, ingested.applied as u64);
                SyncMetrics::add(&self.metrics.ops_duplicate, ingested.duplicates as u64);
                SyncMetrics::add(&self.metrics.ops_rejected, ingested.rejected.len() as u64);
                for (id, err) in &ingested.rejected {
                    tracing::warn!(actor = %id.actor, seq = id.seq, error = %err, "refused an op from HQ");
                }
                self.note_effects(&ingested.effects);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot apply a down-batch; HQ will resend");
                return;
            }
        }
        // The ops are durable (ingest returned), so they may be acked now; the cursor is
        // only where a restart resumes from.
        persist::raise_in_background(&self.node, KEY_DOWN_IDX, last);
        self.down_idx = last;
        self.ack_due.get_or_insert_with(AckDue::default);
    }

    fn on_ack(&mut self, ack: Ack) {
        SyncMetrics::add(&self.metrics.acks_received, 1);
        self.touch_sync();
        let acked = ack.vv.get(&self.me).copied().unwrap_or(0);
        if acked > self.hq_acked {
            self.hq_acked = acked;
            self.last_progress = Instant::now();
            persist::raise_in_background(&self.node, KEY_HQ_ACKED_SEQ, acked);
        }
        self.sent_seq = self.sent_seq.max(self.hq_acked);
        if ack.resend {
            self.sent_seq = acked;
            self.last_progress = Instant::now();
        }
        if ack.reply {
            self.ack_due = Some(AckDue {
                resend: true,
                reply: false,
            });
        }
    }

    fn touch_sync(&mut self) {
        let now = now_ms();
        self.last_sync_ms = Some(now);
        self.metrics.last_sync_ms.store(now, Ordering::Relaxed);
    }

    fn note_effects(&mut self, effects: &[Effect]) {
        for effect in effects {
            match effect {
                Effect::ReleaseNeeded { store, .. } if *store == self.cfg.store => {
                    self.releases_due = true
                }
                Effect::CoverShortfall { store, sku } if *store == self.cfg.store => {
                    self.dirty_skus.insert(sku.clone());
                }
                _ => {}
            }
        }
    }

    fn on_node_event(&mut self, ev: NodeEvent) {
        let NodeEvent::Applied { ops, effects, .. } = ev;
        for op in ops.iter() {
            skus_touched(&op.payload, &self.cfg.store, &mut self.dirty_skus);
            // Both call for a state-based plan: releases, and grants of return rights.
            if matches!(
                op.payload,
                Payload::OrderCancel { .. } | Payload::ReturnRightsRequested { .. }
            ) {
                self.releases_due = true;
            }
        }
        self.note_effects(&effects);
    }
}

mod pump;
