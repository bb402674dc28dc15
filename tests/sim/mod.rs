//! Deterministic simulation of a chain: HQ and a few stores, each a real replica (in memory or
//! a real `store::Node` on SQLite) running the shipped sync protocol
//! (`storenode::sync::protocol`: the same `StoreProtocol` and `HqProtocol` the daemons run,
//! with signed up-batches, routing into per-store down-logs, acks, gap requests and
//! retransmits), driven by one seeded scheduler through local actions (deliveries, transfers
//! and ship-to-store orders among them), lossy and reordering links, partitions, crashes and
//! forged batches, acks and lookup replies. After healing (faults stop and every store
//! reconnects once, as after an outage), every store's shared digest must equal HQ's, and no
//! (store, sku) may have sold or reserved more than it received. A failing seed is printed and
//! replays exactly with `SIM_SEED=<n>`.

mod actions;
mod backend;
mod check;
mod forge;
mod motion;
mod net;
mod rng;

pub use backend::Backend;
use net::{Msg, Proto};
use rng::Rng;
use std::path::Path;
use std::sync::Arc;
use storenode::domain::op::Payload;
use storenode::domain::{ActorId, Op, StoreId};
use storenode::signing::{HqKey, HqPublicKey, StoreKey, StoreKeys};
use storenode::sync::metrics::SyncMetrics;
use storenode::sync::protocol::hq::{HqProtocol, HqSyncConfig};
use storenode::sync::protocol::store::{StoreProtocol, StoreSyncConfig};

/// The chain's name in topics.
pub const CHAIN: &str = "sim";
/// Most ops in one batch (small, so that batches split and arrive out of order).
pub const BATCH_OPS_MAX: usize = 16;
/// Most ops or down-log entries in flight per stream.
const INFLIGHT_OPS_MAX: u64 = 64;
/// Simulated time per healing round (above the gap throttle, below the retransmit timer).
const HEAL_ROUND_MS: u64 = 1_500;

/// Knobs of one run. Percentages are per delivery (loss, dup) or per scheduler step.
#[derive(Debug, Clone)]
pub struct Config {
    pub stores: usize,
    pub steps: usize,
    pub loss_pct: u64,
    pub dup_pct: u64,
    pub crash_pct: u64,
    pub partition_pct: u64,
}

impl Config {
    /// Random knobs from the seed, so seeds cover calm and hostile networks alike.
    pub fn from_rng(rng: &mut Rng, steps: usize) -> Config {
        Config {
            stores: rng.range(2, 3) as usize,
            steps,
            loss_pct: rng.range(0, 30),
            dup_pct: rng.range(0, 20),
            crash_pct: rng.range(0, 4),
            partition_pct: rng.range(0, 6),
        }
    }
}

/// Counters shown when a seed fails and summed over a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub local_ops: u64,
    pub refused: u64,
    pub refused_stock: u64,
    pub applied: u64,
    pub published: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub dropped: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub reactions: u64,
    pub heal_rounds: u64,
    pub forged_sent: u64,
    pub forged_rejected: u64,
    pub forged_down_sent: u64,
    pub forged_down_rejected: u64,
    /// Forged acks and lookup replies sent to stores, and the ones they refused.
    pub forged_reply_sent: u64,
    pub forged_reply_rejected: u64,
    pub returns_verified: u64,
    pub returns_unverified: u64,
    pub double_returns: u64,
    pub rights_granted: u64,
    /// Sales recorded with discounts (promotions or manual), and verified returns of them.
    pub discounted_sales: u64,
    /// Sale lines discounted by a promotion on their category.
    pub category_promoted_lines: u64,
    pub discounted_returns: u64,
    pub shipments_received: u64,
    pub transfers_received: u64,
    pub transfers_short: u64,
    pub ship_to_store_orders: u64,
    pub ship_to_store_arrived: u64,
    pub ship_to_store_ready: u64,
    /// Ship-to-store orders whose sender scanned the units out, or kept them (cancelled
    /// first); handed over to the customer; cancelled or expired.
    pub ship_to_store_dispatched: u64,
    pub ship_to_store_withdrawn: u64,
    pub ship_to_store_handed_over: u64,
    pub ship_to_store_cancelled: u64,
}

impl Stats {
    /// Add another run's counters to these.
    pub fn add(&mut self, o: &Stats) {
        self.local_ops += o.local_ops;
        self.refused += o.refused;
        self.refused_stock += o.refused_stock;
        self.applied += o.applied;
        self.published += o.published;
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.dropped += o.dropped;
        self.crashes += o.crashes;
        self.partitions += o.partitions;
        self.reactions += o.reactions;
        self.heal_rounds += o.heal_rounds;
        self.forged_sent += o.forged_sent;
        self.forged_rejected += o.forged_rejected;
        self.forged_down_sent += o.forged_down_sent;
        self.forged_down_rejected += o.forged_down_rejected;
        self.forged_reply_sent += o.forged_reply_sent;
        self.forged_reply_rejected += o.forged_reply_rejected;
        self.returns_verified += o.returns_verified;
        self.returns_unverified += o.returns_unverified;
        self.double_returns += o.double_returns;
        self.rights_granted += o.rights_granted;
        self.discounted_sales += o.discounted_sales;
        self.category_promoted_lines += o.category_promoted_lines;
        self.discounted_returns += o.discounted_returns;
        self.shipments_received += o.shipments_received;
        self.transfers_received += o.transfers_received;
        self.transfers_short += o.transfers_short;
        self.ship_to_store_orders += o.ship_to_store_orders;
        self.ship_to_store_arrived += o.ship_to_store_arrived;
        self.ship_to_store_ready += o.ship_to_store_ready;
        self.ship_to_store_dispatched += o.ship_to_store_dispatched;
        self.ship_to_store_withdrawn += o.ship_to_store_withdrawn;
        self.ship_to_store_handed_over += o.ship_to_store_handed_over;
        self.ship_to_store_cancelled += o.ship_to_store_cancelled;
    }
}

/// One simulated node: its storage and the protocol it runs.
pub struct SimNode {
    pub actor: ActorId,
    pub backend: Backend,
    pub proto: Proto,
}

pub struct World {
    pub cfg: Config,
    pub rng: Rng,
    pub now_ms: u64,
    /// Index 0 is HQ, 1.. are stores.
    pub nodes: Vec<SimNode>,
    pub net: Vec<Msg>,
    /// Per store index: whether its link to the broker is up (index 0: HQ's, always up).
    pub link_up: Vec<bool>,
    pub stats: Stats,
    /// Source of unique order and sale ids.
    pub next_id: u64,
    /// Each store's signing key (index = store index - 1).
    pub keys: Vec<Arc<StoreKey>>,
    /// HQ's registry of store public keys.
    pub hq_keys: Arc<StoreKeys>,
    /// HQ's sync counters (refused batches by reason), kept across HQ crashes.
    pub hq_metrics: Arc<SyncMetrics>,
    /// HQ's key: it signs every down-batch, and every store holds its public half.
    pub hq_key: Arc<HqKey>,
    /// Each store's sync counters (refused down-batches by reason), kept across crashes.
    pub store_metrics: Vec<Arc<SyncMetrics>>,
}

pub const STORES: [&str; 3] = ["madrid-centro", "sevilla-nervion", "bilbao-abando"];

/// What a finished run reports: per-store digests at HQ and at the store, and the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub digests: Vec<(String, String, String)>,
    pub stats: Stats,
}

impl World {
    /// A chain with its catalog provisioned on every node. `dir` set: real SQLite nodes.
    pub fn new(seed: u64, steps: usize, dir: Option<&Path>) -> World {
        let mut rng = Rng::new(seed);
        let cfg = Config::from_rng(&mut rng, steps);
        let stores: Vec<StoreId> = STORES
            .iter()
            .take(cfg.stores)
            .map(|s| StoreId::parse(s).expect("store id"))
            .collect();
        let keys: Vec<Arc<StoreKey>> = stores
            .iter()
            .map(|store| {
                let mut secret = [0u8; 32];
                for (i, b) in secret.iter_mut().enumerate() {
                    *b = (rng.next_u64() >> (i % 8)) as u8;
                }
                Arc::new(StoreKey::from_secret(store.clone(), secret))
            })
            .collect();
        let registered: Vec<(StoreId, String)> = keys
            .iter()
            .map(|k| (k.store().clone(), k.public_hex()))
            .collect();
        let hq_keys = Arc::new(
            StoreKeys::parse(registered.iter().map(|(s, k)| (s.clone(), k.as_str())))
                .expect("store keys"),
        );
        let mut secret = [0u8; 32];
        for b in secret.iter_mut() {
            *b = rng.next_u64() as u8;
        }
        let hq_key = Arc::new(HqKey::from_secret(secret));
        let store_metrics = stores
            .iter()
            .map(|_| Arc::new(SyncMetrics::new()))
            .collect();
        let mut actors = vec![ActorId::hq()];
        actors.extend(stores.iter().map(StoreId::actor));
        let mut world = World {
            cfg,
            rng,
            now_ms: 1_700_000_000_000,
            nodes: Vec::new(),
            net: Vec::new(),
            link_up: vec![true; actors.len()],
            stats: Stats::default(),
            next_id: 0,
            keys,
            hq_keys,
            hq_metrics: Arc::new(SyncMetrics::new()),
            hq_key,
            store_metrics,
        };
        for actor in actors {
            let backend = match dir {
                Some(d) => {
                    let file = format!("{}.db", actor.as_str().replace(':', "_"));
                    Backend::sqlite(d.join(file), actor.clone())
                }
                None => Backend::memory(actor.clone()),
            };
            let proto = world.protocol(&actor, &backend, &stores);
            world.nodes.push(SimNode {
                actor,
                backend,
                proto,
            });
        }
        for who in 0..world.nodes.len() {
            world.connect(who);
        }
        // Provisioning: the catalog reaches every store before the schedule starts.
        world.submit(0, actions::catalog());
        world.drive(0);
        world.settle();
        world
    }

    /// A node's protocol, started from what its storage persisted.
    fn protocol(&self, actor: &ActorId, backend: &Backend, stores: &[StoreId]) -> Proto {
        let now = self.now_ms;
        match actor.store() {
            None => {
                let mut cfg = HqSyncConfig::new(CHAIN, stores.to_vec(), "sim", 0);
                cfg.batch_ops_max = BATCH_OPS_MAX;
                cfg.inflight_ops_max = INFLIGHT_OPS_MAX;
                cfg.store_keys = Some(self.hq_keys.clone());
                cfg.hq_key = Some(self.hq_key.clone());
                let loaded = backend.load_hq();
                let p = HqProtocol::new(cfg, loaded, self.hq_metrics.clone(), now).expect("hq");
                Proto::Hq(Box::new(p))
            }
            Some(store) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| *k.store() == store)
                    .expect("store key")
                    .clone();
                let index = stores.iter().position(|s| *s == store).expect("store");
                let mut cfg = StoreSyncConfig::new(CHAIN, store, "sim", 0);
                cfg.batch_ops_max = BATCH_OPS_MAX;
                cfg.inflight_ops_max = INFLIGHT_OPS_MAX;
                cfg.signing_key = Some(key);
                let public = HqPublicKey::parse(&self.hq_key.public_hex()).expect("hq key");
                cfg.hq_public_key = Some(Arc::new(public));
                let cursors = backend.store_cursors();
                let metrics = self.store_metrics[index].clone();
                let p = StoreProtocol::new(cfg, cursors, metrics, now).expect("store");
                Proto::Store(Box::new(p))
            }
        }
    }

    /// Restart node `who`'s protocol from its storage, and connect it if its link is up.
    fn restart(&mut self, who: usize) {
        let stores = self.store_ids();
        let proto = self.protocol(&self.nodes[who].actor, &self.nodes[who].backend, &stores);
        self.nodes[who].proto = proto;
        if self.link_ok(who) {
            self.connect(who);
        }
    }

    fn store_ids(&self) -> Vec<StoreId> {
        self.nodes[1..]
            .iter()
            .map(|n| n.actor.store().expect("store"))
            .collect()
    }

    /// Node `who`'s connection to the broker came up. A store's Last Will from its previous
    /// connection reaches HQ first (the broker publishes it before accepting the new one).
    fn connect(&mut self, who: usize) {
        let now = self.now_ms;
        match &mut self.nodes[who].proto {
            Proto::Hq(p) => p.handle_link(true),
            Proto::Store(p) => {
                let (status, _) = p.will(now);
                let wills: Vec<usize> = (0..self.net.len())
                    .filter(|i| self.net[*i].link == 0 && self.net[*i].topic == status)
                    .collect();
                for i in wills.into_iter().rev() {
                    self.deliver(i, false);
                }
                if let Proto::Store(p) = &mut self.nodes[who].proto {
                    p.handle_link(now, true);
                }
            }
        }
        self.drive(who);
    }

    /// Store `s`'s connection dropped: its protocol hears it, and the broker publishes its
    /// Last Will to HQ.
    fn disconnect(&mut self, s: usize) {
        let now = self.now_ms;
        if let Proto::Store(p) = &mut self.nodes[s].proto {
            p.handle_link(now, false);
            let (topic, payload) = p.will(now);
            self.net.push(Msg {
                to: 0,
                link: 0,
                topic,
                payload,
                forged: false,
            });
        }
        self.drive(s);
    }

    pub fn stores(&self) -> std::ops::Range<usize> {
        1..self.nodes.len()
    }

    /// Issue local changes at `who`; its protocol hears of the commit (the caller drives it).
    pub fn submit(&mut self, who: usize, payloads: Vec<Payload>) -> Option<Vec<Op>> {
        match self.nodes[who].backend.submit(self.now_ms, payloads) {
            Ok((ops, effects)) => {
                self.stats.local_ops += ops.len() as u64;
                self.check_own_rights(who);
                match &mut self.nodes[who].proto {
                    Proto::Hq(p) => p.handle_committed(),
                    Proto::Store(p) => p.handle_committed(&ops, &effects),
                }
                Some(ops)
            }
            Err(e) => {
                self.stats.refused += 1;
                if matches!(e, storenode::domain::DomainError::InsufficientStock { .. }) {
                    self.stats.refused_stock += 1;
                }
                None
            }
        }
    }

    /// Power cut at `who`: memory and protocol state gone, committed ops and persisted cursors
    /// kept; a store's connection drops (its Last Will) and both reconnect if their link is up.
    pub fn crash(&mut self, who: usize) {
        self.stats.crashes += 1;
        self.nodes[who].backend.crash();
        if who != 0 && self.link_up[who] {
            self.disconnect(who);
        }
        self.restart(who);
    }

    /// A replica's own rights are never negative: it always knows all of its own ops.
    fn check_own_rights(&self, who: usize) {
        let me = &self.nodes[who].actor;
        self.nodes[who].backend.read(|r| {
            for ((store, sku), c) in &r.state().stock {
                assert!(
                    c.rights(me) >= 0,
                    "{me} holds negative rights at {store}/{sku}"
                );
            }
        });
    }

    /// One scheduler step.
    pub fn step(&mut self) {
        self.now_ms += self.rng.range(1, 5_000);
        let roll = self.rng.below(100);
        let nodes = self.nodes.len() as u64;
        match roll {
            0..=44 => {
                let who = self.rng.below(nodes) as usize;
                actions::local(self, who);
                self.drive(who);
            }
            45..=64 => {
                let who = self.rng.below(nodes) as usize;
                self.tick(who);
            }
            65..=89 => self.deliver_random(),
            _ => {
                if self.rng.chance(self.cfg.partition_pct * 10) {
                    let s = self.rng.range(1, nodes - 1) as usize;
                    self.set_link(s, !self.link_up[s]);
                } else if self.rng.chance(self.cfg.crash_pct * 10) {
                    let who = self.rng.below(nodes) as usize;
                    self.crash(who);
                } else if self.rng.chance(10) {
                    let s = self.rng.range(1, nodes - 1) as usize;
                    match self.rng.below(3) {
                        0 => self.forge_batch(s),
                        1 => self.forge_down(s),
                        _ => self.forge_reply(s),
                    }
                }
            }
        }
    }

    /// Bring a store's link down or up (the daemon's `set_link`).
    pub fn set_link(&mut self, s: usize, up: bool) {
        if up == self.link_up[s] {
            return;
        }
        self.link_up[s] = up;
        if up {
            self.connect(s);
        } else {
            self.stats.partitions += 1;
            self.disconnect(s);
        }
    }

    /// Deliver everything in flight in order, without faults, until the wire is empty.
    fn settle(&mut self) {
        while !self.net.is_empty() {
            self.deliver(0, false);
        }
    }

    /// Faults stop and every store reconnects once (as after an outage); then timers run
    /// and the wire delivers in order until nothing moves. Panics if that never happens.
    pub fn heal(&mut self) {
        for s in self.stores() {
            if self.link_up[s] {
                self.disconnect(s);
                self.connect(s);
            } else {
                self.set_link(s, true);
            }
        }
        for round in 0..2_000u64 {
            let before = self.stats.published;
            self.settle();
            self.now_ms += HEAL_ROUND_MS;
            for who in 0..self.nodes.len() {
                self.tick(who);
            }
            self.settle();
            if self.stats.published == before {
                self.stats.heal_rounds = round;
                return;
            }
        }
        panic!("no convergence after 2000 healing rounds");
    }

    /// Run the whole schedule, heal, and check the invariants.
    pub fn run(mut self) -> Outcome {
        self.run_steps();
        self.heal();
        self.check_converged()
    }

    pub fn run_steps(&mut self) {
        for _ in 0..self.cfg.steps {
            self.step();
        }
    }

    /// Heal and check, for tests that tamper with the world first.
    pub fn finish(mut self) -> Outcome {
        self.heal();
        self.check_converged()
    }
}

/// Run one seed, printing it (and how to replay it) if it fails.
pub fn run_seed(seed: u64, steps: usize, dir: Option<&Path>) -> Outcome {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        World::new(seed, steps, dir).run()
    }));
    match result {
        Ok(outcome) => outcome,
        Err(panic) => {
            eprintln!("simulation failed at seed {seed}; replay with SIM_SEED={seed}");
            std::panic::resume_unwind(panic)
        }
    }
}
