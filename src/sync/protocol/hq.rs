//! HQ's side of the sync protocol, without I/O: fan-in of every store's ops, one down-log per
//! store.
//!
//! Up-batches are checked before anything is applied (the topic's store must be known, the
//! signature good when store keys are configured, and the store the author of every op),
//! become one `Ingest` per round for every store waiting (one commit for all), and are acked with the store's contiguous seq once
//! the caller reported the commit. Every op HQ holds is routed once, in seq order per actor,
//! into the down-logs of the stores that need it (`route::Router`); the routing position is
//! persisted with the entries (`Route`). A store's down-log is streamed from the index it
//! acked, and resent from there on its hello ack, on a gap, or after the retransmit timeout.
//!
//! Over 500 lines on purpose: the state machine's one `poll` and its handlers share every
//! field (links, leases, windows, the router); its inbound decoding already lives in `inbound`.

pub use super::config::{HqLoaded, HqSyncConfig, StoreLink, LOOKUP_RATE_DEFAULT};
use super::{AckDue, Carries, GapTimer, Publish, Window};
use crate::domain::{ActorId, Effect, Op, Replica, StoreId};
use crate::sync::metrics::SyncMetrics;
use crate::sync::route::{RouteAction, Router};
use crate::sync::topic::{TopicError, TopicKind, Topics};
use crate::sync::wire::lookup::SignedLookup;
use crate::sync::wire::{self, Ack, Message};
use inbound::in_order;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Ops of one actor routed per step, so one busy actor cannot starve the loop.
pub const ROUTE_OPS_MAX: usize = 2_000;
/// With leases, how often the requests for rights back are looked at again even when no
/// event called for it: a request a dead holder ingested may reach this process's file after
/// it took the store's lease (`returns::answer_shared` reads PostgreSQL's marks each time).
pub const RETURNS_RESCAN_MS: u64 = 5_000;
/// Most ops of one `Ingest` once it holds a store's batches: the checked up-batches of every
/// store waiting go to the writer together (one commit), up to this many.
pub const INGEST_OPS_MAX: usize = 4_096;

/// One actor's ops to read for routing: seqs `after+1..=upto`, at most `ROUTE_OPS_MAX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRead {
    pub actor: ActorId,
    pub after: u64,
    pub upto: u64,
    /// Also read the op at `after`, routed before a start or reload: the router learns from
    /// it again a `SalePriced` whose sale is the next op (`Router::remember`), so a sale
    /// split from its pricing by a restart still travels with it.
    pub prime: bool,
}

impl RouteRead {
    /// Read the ops after this seq (one earlier when priming).
    pub fn since(&self) -> u64 {
        if self.prime {
            self.after.saturating_sub(1)
        } else {
            self.after
        }
    }

    /// At most this many ops (one more when priming).
    pub fn limit(&self) -> usize {
        ROUTE_OPS_MAX + usize::from(self.prime)
    }
}

/// What HQ's caller must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum HqAction {
    /// Publish (report failure with `handle_deferred`).
    Publish(Publish),
    /// Apply the ops of these stores (each store's in seq order), in one writer request so
    /// they share one commit; answer with `handle_ingested`. With `route`, persist it in the
    /// same transaction if every op was applied or already held (none rejected).
    Ingest {
        stores: Vec<StoreId>,
        ops: Vec<Op>,
        route: Option<IngestRoute>,
    },
    /// Read ops to route; answer with `handle_route_reads` (same order, empty on failure).
    ReadToRoute(Vec<RouteRead>),
    /// Persist routing decisions and cursors in one transaction; answer with `handle_routed`.
    Route {
        actions: Vec<RouteAction>,
        cursors: Vec<(ActorId, u64)>,
    },
    /// Routing state in memory may be ahead of the database: load it; answer `handle_loaded`.
    Reload,
    /// Read `store`'s down-log after `after`, at most `limit`; answer with `handle_down`.
    ReadDown {
        store: StoreId,
        after: u64,
        limit: usize,
    },
    /// Answer every return request in the log not answered yet (`returns::answer_pending`).
    AnswerReturns,
    /// Answer a customer lookup that arrived on `store`'s topic (`lookup::answer`).
    Lookup {
        store: StoreId,
        lookup: SignedLookup,
    },
    /// Find where lease `epoch`'s stream to `store` starts: the last index of `store`'s
    /// down-log such that every entry up to it is covered by `vv` (what the store reported);
    /// answer with `handle_down_start` (`persist::downlog_start`).
    FindDownStart {
        store: StoreId,
        epoch: u64,
        vv: BTreeMap<ActorId, u64>,
    },
}

/// The routing of an ingest's ops, decided before the ingest: when routing has caught up
/// with an actor, its next ops are routed from the up-batch itself, not read back from the
/// log after the commit, and their down-log entries share the ingest's commit (one durable
/// commit per up-batch instead of two, and no read in between).
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRoute {
    pub actions: Vec<RouteAction>,
    pub cursors: Vec<(ActorId, u64)>,
}

/// HQ's sync state for one store.
pub(super) struct Peer {
    online: bool,
    /// The store answered since HQ or the store (re)connected: the window's ack is current.
    synced: bool,
    last_seen_ms: Option<u64>,
    outbox: u64,
    version: Option<String>,
    acked_vv: BTreeMap<ActorId, u64>,
    down: Window,
    down_last: u64,
    ack_due: Option<AckDue>,
    gap: GapTimer,
    /// This process holds the store's lease (always, without leases).
    served: bool,
    /// The lease epoch numbering the down stream (0 without leases).
    epoch: u64,
    /// Down-log index the epoch's stream starts after (wire index `i` is entry `base + i`);
    /// `None` until found from the store's first ack of the epoch.
    base: Option<u64>,
    /// A `FindDownStart` is out with the caller.
    finding: bool,
}

impl Peer {
    pub(super) fn seen(&mut self, now_ms: u64) {
        self.online = true;
        self.last_seen_ms = Some(now_ms);
    }
}

/// HQ's sync protocol state.
pub struct HqProtocol {
    cfg: HqSyncConfig,
    topics: Topics,
    metrics: Arc<SyncMetrics>,
    online: bool,
    router: Router,
    routed: BTreeMap<ActorId, u64>,
    peers: BTreeMap<StoreId, Peer>,
    route_due: bool,
    route_reading: bool,
    /// The router learnt where ship-to-store units wait from the replica (after a start or
    /// reload; from then on from the ops it routes).
    ships_seeded: bool,
    /// Actors whose last routed op the router has seen since the start or last reload
    /// (`RouteRead::prime`).
    primed: BTreeSet<ActorId>,
    /// Cursors of the routing write out with the caller.
    routing: Option<Vec<(ActorId, u64)>>,
    /// That routing write is the one carried by the ingest out with the caller.
    routing_with_ingest: bool,
    /// Checked up-batches by store, not yet ingested.
    pending_up: BTreeMap<StoreId, Vec<Op>>,
    /// The stores whose ingest is out with the caller, and whether each one's ops left a gap
    /// (empty: none out).
    ingesting: Vec<(StoreId, bool)>,
    stalled: bool,
    queue: VecDeque<HqAction>,
    /// With leases: when the next `AnswerReturns` is due without an event.
    returns_rescan_ms: u64,
}

impl HqProtocol {
    /// Start from the persisted state; the first action answers return requests applied
    /// before a crash and never answered.
    pub fn new(
        cfg: HqSyncConfig,
        loaded: HqLoaded,
        metrics: Arc<SyncMetrics>,
        now_ms: u64,
    ) -> Result<HqProtocol, TopicError> {
        let peers = cfg
            .stores
            .iter()
            .map(|s| {
                let peer = Peer {
                    online: false,
                    synced: false,
                    last_seen_ms: None,
                    outbox: 0,
                    version: None,
                    acked_vv: BTreeMap::new(),
                    down: Window::new(0, now_ms),
                    down_last: loaded.downlog_last.get(s).copied().unwrap_or(0),
                    ack_due: None,
                    gap: GapTimer::default(),
                    served: cfg.leases.is_none(),
                    epoch: 0,
                    base: cfg.leases.is_none().then_some(0),
                    finding: false,
                };
                (s.clone(), peer)
            })
            .collect();
        let cfg_leased = cfg.leases.is_some();
        Ok(HqProtocol {
            topics: Topics::new(&cfg.chain)?,
            router: Router::new(cfg.stores.clone(), loaded.scope),
            routed: loaded.routed,
            cfg,
            metrics,
            online: false,
            peers,
            route_due: true,
            ships_seeded: false,
            primed: BTreeSet::new(),
            route_reading: false,
            routing: None,
            routing_with_ingest: false,
            pending_up: BTreeMap::new(),
            ingesting: Vec::new(),
            stalled: false,
            // With leases the rescan waits for the first stores served (`handle_leases`).
            queue: match cfg_leased {
                false => VecDeque::from([HqAction::AnswerReturns]),
                true => VecDeque::new(),
            },
            returns_rescan_ms: now_ms + RETURNS_RESCAN_MS,
        })
    }

    /// Topics to subscribe to on every connection.
    pub fn subscriptions(&self) -> Vec<String> {
        [
            TopicKind::Up,
            TopicKind::Ack,
            TopicKind::Status,
            TopicKind::Lookup,
        ]
        .into_iter()
        .map(|k| self.topics.wildcard(k))
        .collect()
    }

    /// The link to the broker came up (connected and subscribed) or went down.
    pub fn handle_link(&mut self, up: bool) {
        self.online = up;
        self.stalled = false;
        self.queue.retain(|a| !matches!(a, HqAction::Publish(_)));
        if up {
            SyncMetrics::add(&self.metrics.connects, 1);
            for peer in self.peers.values_mut().filter(|p| p.served) {
                peer.synced = false;
                peer.ack_due = Some(AckDue::HELLO);
            }
        }
    }

    /// Ops were committed to HQ's node (routing is then due).
    pub fn handle_committed(&mut self) {
        self.route_due = true;
    }

    /// The `Ingest` came back: committed with these effects (`Some`), or failed (`None`: the
    /// store resends); `routed` is what its `route` wrote, as `handle_routed` takes it (`None`
    /// when it carried none, or its routing was not written).
    pub fn handle_ingested(
        &mut self,
        now_ms: u64,
        effects: Option<&[Effect]>,
        routed: Option<BTreeMap<StoreId, u64>>,
    ) {
        let stores = std::mem::take(&mut self.ingesting);
        if std::mem::take(&mut self.routing_with_ingest) {
            self.handle_routed(routed);
        }
        let Some(effects) = effects else {
            return;
        };
        self.route_due = true;
        if effects
            .iter()
            .any(|e| matches!(e, Effect::ReturnRequested { .. }))
        {
            self.answer_returns();
        }
        for (store, gap) in stores {
            self.answer_up(now_ms, &store, gap);
        }
    }

    /// Ack a store's up-batches once handled; a gap (ops held back, see `in_order`) asks the
    /// store to resend from what HQ holds.
    fn answer_up(&mut self, now_ms: u64, store: &StoreId, gap: bool) {
        let Some(peer) = self.peers.get_mut(store) else {
            return;
        };
        peer.seen(now_ms);
        let resend = gap && peer.gap.request(now_ms);
        AckDue::merge(
            &mut peer.ack_due,
            AckDue {
                resend,
                reply: false,
            },
        );
    }

    /// The `ReadToRoute` came back: each read's ops (same order; empty when it failed).
    pub fn handle_route_reads(&mut self, reads: Vec<(RouteRead, Vec<Op>)>) {
        self.route_reading = false;
        let mut actions = Vec::new();
        let mut cursors = Vec::new();
        for (read, ops) in reads {
            // A read short of `upto` that did not hit its limit met ops held in memory but not
            // committed yet (an ingest or submit in the writer): their commit calls for routing
            // again (`handle_committed`, `handle_ingested`), so reading again now would only
            // spin on the reader until it lands.
            let more_committed = ops.len() >= read.limit();
            let mut last = read.after;
            if read.prime && !ops.is_empty() {
                self.primed.insert(read.actor.clone());
            }
            for op in ops.iter().take_while(|op| op.seq <= read.upto) {
                if read.prime && op.seq == read.after {
                    self.router.remember(op);
                    continue;
                }
                if op.seq != last + 1 {
                    break;
                }
                actions.extend(self.router.route(op));
                last = op.seq;
            }
            if last < read.upto && more_committed {
                self.route_due = true;
            }
            if last > read.after {
                // The router saw this actor's last routed op itself.
                self.primed.insert(read.actor.clone());
                cursors.push((read.actor, last));
            }
        }
        if cursors.is_empty() {
            return;
        }
        self.routing = Some(cursors.clone());
        self.queue.push_back(HqAction::Route { actions, cursors });
    }

    /// The `Route` write finished: the last down-log index of every store that got entries,
    /// or a failure (the router's memory is then ahead of the database: reload).
    pub fn handle_routed(&mut self, result: Option<BTreeMap<StoreId, u64>>) {
        let Some(cursors) = self.routing.take() else {
            return;
        };
        match result {
            Some(lasts) => {
                self.routed.extend(cursors);
                for (store, idx) in lasts {
                    if let Some(peer) = self.peers.get_mut(&store) {
                        peer.down_last = idx;
                    }
                }
            }
            None => self.queue.push_back(HqAction::Reload),
        }
    }

    /// The `Reload` came back with the persisted routing state.
    pub fn handle_loaded(&mut self, loaded: HqLoaded) {
        self.routed = loaded.routed;
        self.router = Router::new(self.cfg.stores.clone(), loaded.scope);
        self.ships_seeded = false;
        self.primed.clear();
        for (store, peer) in &mut self.peers {
            peer.down_last = loaded.downlog_last.get(store).copied().unwrap_or(0);
        }
        self.route_due = true;
    }

    /// The `ReadDown { store, after, .. }` came back with the entries after `after`, in
    /// order without holes (empty on a failed read).
    pub fn handle_down(&mut self, store: &StoreId, after: u64, ops: Vec<Op>) {
        let Some(peer) = self.peers.get_mut(store) else {
            return;
        };
        peer.down.read_done();
        let Some(base) = peer.base.filter(|b| *b <= after) else {
            return;
        };
        if ops.is_empty() || !self.online || !peer.served {
            return;
        }
        let encoded = wire::encode_epoch_down(
            self.cfg.hq_key.as_deref(),
            store,
            peer.epoch,
            after + 1 - base,
            &ops,
            self.cfg.batch_ops_max,
        );
        let batches = match encoded {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(store = %store, error = %e, "cannot encode the down-log");
                return;
            }
        };
        let topic = self.topics.topic(store, TopicKind::Down);
        let mut prev = after;
        for batch in batches {
            self.queue.push_back(HqAction::Publish(Publish {
                topic: topic.clone(),
                payload: batch.bytes,
                retain: false,
                carries: Carries::Ops {
                    store: store.clone(),
                    after: prev,
                    ops: batch.ops,
                },
            }));
            prev += batch.ops as u64;
            peer.down.sent(prev);
        }
    }

    /// The transport could not queue `publish`: send it again after the next tick.
    pub fn handle_deferred(&mut self, publish: &Publish) {
        SyncMetrics::add(&self.metrics.publish_deferred, 1);
        self.stalled = true;
        match &publish.carries {
            Carries::Ack { store, due } => {
                if let Some(peer) = self.peers.get_mut(store) {
                    AckDue::merge(&mut peer.ack_due, *due);
                }
            }
            Carries::Ops { store, after, .. } => {
                if let Some(peer) = self.peers.get_mut(store) {
                    peer.down.deferred(*after);
                }
            }
            Carries::Status | Carries::LookupReply => {}
        }
    }

    /// Housekeeping at `now_ms`: lift a publish stall, resend down-logs after silence.
    pub fn handle_tick(&mut self, now_ms: u64) {
        self.stalled = false;
        if self.cfg.leases.is_some() && now_ms >= self.returns_rescan_ms {
            self.returns_rescan_ms = now_ms + RETURNS_RESCAN_MS;
            self.answer_returns();
        }
        for (store, peer) in &mut self.peers {
            let streaming = peer.served && peer.base.is_some();
            if streaming
                && peer.online
                && peer.synced
                && peer.down.retransmit(now_ms, self.cfg.retransmit_ms)
            {
                tracing::debug!(store = %store, from = peer.down.acked() + 1, "no ack progress; resending the down-log");
            }
        }
    }

    /// The next action, given HQ's replica as it is now; `None` when nothing is due.
    pub fn poll(&mut self, now_ms: u64, replica: &Replica) -> Option<HqAction> {
        if let Some(a) = self.queue.pop_front() {
            return Some(a);
        }
        if let Some(ingest) = self.next_ingest(now_ms, replica) {
            return Some(ingest);
        }
        if let Some(a) = self.route_step(replica) {
            return Some(a);
        }
        if !self.online || self.stalled {
            return None;
        }
        let window = self.cfg.inflight_ops_max;
        for (store, peer) in &mut self.peers {
            if let Some(due) = peer.ack_due.take() {
                let actor = store.actor();
                let seq = replica.version().contiguous(&actor);
                let ack = Message::Ack(Ack {
                    from: ActorId::hq(),
                    vv: BTreeMap::from([(actor, seq)]),
                    down_idx: 0,
                    resend: due.resend,
                    reply: due.reply,
                });
                let payload = match &self.cfg.hq_key {
                    Some(key) => wire::encode_signed_reply(key, store, &ack),
                    None => wire::encode(&ack),
                };
                let Ok(payload) = payload else {
                    continue;
                };
                return Some(HqAction::Publish(Publish {
                    topic: self.topics.topic(store, TopicKind::Ack),
                    payload,
                    retain: false,
                    carries: Carries::Ack {
                        store: store.clone(),
                        due,
                    },
                }));
            }
            if !peer.online || !peer.synced || !peer.served || peer.base.is_none() {
                continue;
            }
            if let Some(after) = peer.down.next_read(peer.down_last, window) {
                return Some(HqAction::ReadDown {
                    store: store.clone(),
                    after,
                    limit: self.cfg.batch_ops_max,
                });
            }
        }
        None
    }

    /// One `Ingest` for the checked up-batches of as many stores as fit `INGEST_OPS_MAX`
    /// (at least one store), so many stores' batches share one durable commit instead of
    /// paying one each; stores whose ops all wait behind a hole are answered at once.
    fn next_ingest(&mut self, now_ms: u64, replica: &Replica) -> Option<HqAction> {
        if !self.ingesting.is_empty() {
            return None;
        }
        let mut stores = Vec::new();
        let mut all = Vec::new();
        // Each ingested store's contiguous seq before its ops.
        let mut fronts = Vec::new();
        while let Some(store) = self.pending_up.keys().next().cloned() {
            let next = self.pending_up.get(&store).map_or(0, Vec::len);
            if !all.is_empty() && all.len() + next > INGEST_OPS_MAX {
                break;
            }
            let ops = self.pending_up.remove(&store).unwrap_or_default();
            let before = replica.version().contiguous(&store.actor());
            let (ops, gap) = in_order(ops, before);
            if ops.is_empty() {
                self.answer_up(now_ms, &store, gap);
                continue;
            }
            all.extend(ops);
            fronts.push((store.actor(), before));
            self.ingesting.push((store.clone(), gap));
            stores.push(store);
        }
        if stores.is_empty() {
            return None;
        }
        let route = self.route_with_ingest(&fronts, &all, replica);
        Some(HqAction::Ingest {
            stores,
            ops: all,
            route,
        })
    }

    /// Route an ingest's ops from the up-batch itself (`IngestRoute`), for the actors whose
    /// every op before them is routed already (and, after a start or reload, primed), while
    /// no other routing is out: each actor's ops still enter the down-logs once and in seq
    /// order, as when read back. Actors routing lags behind are left to `route_step`.
    fn route_with_ingest(
        &mut self,
        fronts: &[(ActorId, u64)],
        ops: &[Op],
        replica: &Replica,
    ) -> Option<IngestRoute> {
        if self.routing.is_some() || self.route_reading {
            return None;
        }
        let ready: BTreeSet<&ActorId> = fronts
            .iter()
            .filter(|(actor, before)| {
                let routed = self.routed.get(actor).copied().unwrap_or(0);
                routed == *before && (routed == 0 || self.primed.contains(actor))
            })
            .map(|(actor, _)| actor)
            .collect();
        if ready.is_empty() {
            return None;
        }
        self.seed_ships(replica);
        let mut actions = Vec::new();
        let mut last = BTreeMap::new();
        for op in ops.iter().filter(|op| ready.contains(&op.actor)) {
            actions.extend(self.router.route(op));
            last.insert(op.actor.clone(), op.seq);
        }
        let cursors: Vec<(ActorId, u64)> = last.into_iter().collect();
        // The router saw each actor's last routed op itself: no priming read is needed.
        self.primed
            .extend(cursors.iter().map(|(actor, _)| actor.clone()));
        self.routing = Some(cursors.clone());
        self.routing_with_ingest = true;
        Some(IngestRoute { actions, cursors })
    }

    /// Teach the router, once after a start or reload, where ship-to-store units wait (from
    /// the replica; from then on it learns from the ops it routes).
    fn seed_ships(&mut self, replica: &Replica) {
        if self.ships_seeded {
            return;
        }
        self.ships_seeded = true;
        self.router
            .seed_ships(replica.state().awaiting_dispatch().filter_map(|m| {
                let sent = m.sent.as_ref()?;
                let order = crate::domain::OrderId::parse(&sent.reference).ok()?;
                Some((order, sent.from.clone()?))
            }));
    }

    /// Route every op HQ holds contiguously and has not routed yet, one read per actor.
    fn route_step(&mut self, replica: &Replica) -> Option<HqAction> {
        if !self.route_due || self.routing.is_some() || self.route_reading {
            return None;
        }
        self.route_due = false;
        self.seed_ships(replica);
        let reads: Vec<RouteRead> = replica
            .version()
            .entries()
            .into_iter()
            .filter_map(|(actor, upto)| {
                let after = self.routed.get(&actor).copied().unwrap_or(0);
                let prime = after > 0 && !self.primed.contains(&actor);
                (upto > after).then_some(RouteRead {
                    actor,
                    after,
                    upto,
                    prime,
                })
            })
            .collect();
        if reads.is_empty() {
            return None;
        }
        self.route_reading = true;
        Some(HqAction::ReadToRoute(reads))
    }

    /// The stores this process holds the lease of, with their epochs (`sync::lease`): a
    /// store taken (or taken again under a higher epoch) is greeted with a hello and its
    /// stream starts over once the store answers; a store given back or lost is left alone
    /// (its up-batches ignored, its down-log no longer streamed). Only with leases.
    pub fn handle_leases(&mut self, now_ms: u64, held: &BTreeMap<StoreId, u64>) {
        if self.cfg.leases.is_none() {
            return;
        }
        let mut taken = false;
        for (store, peer) in &mut self.peers {
            match held.get(store) {
                Some(&epoch) if !peer.served || peer.epoch != epoch => {
                    tracing::info!(store = %store, epoch, "serving a store");
                    peer.served = true;
                    peer.epoch = epoch;
                    peer.base = None;
                    peer.finding = false;
                    peer.synced = false;
                    peer.down = Window::new(0, now_ms);
                    peer.gap = GapTimer::default();
                    peer.ack_due = Some(AckDue::HELLO);
                    taken = true;
                }
                Some(_) => {}
                None if peer.served => {
                    tracing::info!(store = %store, epoch = peer.epoch, "no longer serving a store");
                    peer.served = false;
                    peer.base = None;
                    peer.synced = false;
                    peer.ack_due = None;
                    self.pending_up.remove(store);
                }
                None => {}
            }
        }
        if taken {
            self.answer_returns();
        }
    }

    /// Queue an `AnswerReturns` unless one is already waiting (one pass answers them all).
    fn answer_returns(&mut self) {
        if !self.queue.contains(&HqAction::AnswerReturns) {
            self.queue.push_back(HqAction::AnswerReturns);
        }
    }

    /// Whether this process serves `store` now (holds its lease, or runs without leases).
    pub fn serves(&self, store: &StoreId) -> bool {
        self.peers.get(store).is_some_and(|p| p.served)
    }

    /// The `FindDownStart { store, epoch, .. }` came back: the index the stream starts
    /// after, or `None` when the read failed (asked again on the store's next ack).
    pub fn handle_down_start(
        &mut self,
        now_ms: u64,
        store: &StoreId,
        epoch: u64,
        start: Option<u64>,
    ) {
        let Some(peer) = self.peers.get_mut(store) else {
            return;
        };
        if !peer.served || peer.epoch != epoch || peer.base.is_some() {
            return;
        }
        peer.finding = false;
        let Some(start) = start else {
            return;
        };
        let start = start.min(peer.down_last);
        tracing::debug!(store = %store, epoch, start, "down stream of a new lease starts");
        peer.base = Some(start);
        peer.down = Window::new(start, now_ms);
    }

    /// Per-store view for the dashboard and the handle.
    pub fn links(&self) -> Vec<StoreLink> {
        self.peers
            .iter()
            .map(|(store, p)| StoreLink {
                store: store.clone(),
                online: p.online,
                last_seen_ms: p.last_seen_ms,
                outbox: p.outbox,
                acked_vv: p.acked_vv.clone(),
                down_pending: p.down_last.saturating_sub(p.down.acked()),
                down_acked: p.down.acked(),
                version: p.version.clone(),
                served: p.served,
            })
            .collect()
    }
}

mod inbound;
#[cfg(test)]
mod tests;
