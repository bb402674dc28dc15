//! Deterministic simulation of a chain: HQ and a few stores, each a real replica (in memory or
//! a real `store::Node` on SQLite), driven by one seeded scheduler through local actions,
//! lossy and reordering links, partitions and crashes. After healing, every store's shared
//! digest must equal HQ's, and no (store, sku) may have sold or reserved more than it received.
//! Customers return sales anywhere: exact at the holder of the return rights, which stores
//! ask for and hand over, or unverified; no unit may be refunded twice without a
//! `double_return` recording it.
//! A failing seed is printed and replays exactly with `SIM_SEED=<n>`.

mod actions;
mod backend;
mod net;
mod rng;

pub use backend::Backend;
use net::{Body, Msg};
use rng::Rng;
use std::collections::BTreeMap;
use std::path::Path;
use storenode::domain::inventory::AllocationPolicy;
use storenode::domain::op::Payload;
use storenode::domain::order::OrderStatus;
use storenode::domain::version::VersionVector;
use storenode::domain::{ActorId, Effect, Op, StoreId};
use storenode::signing::{StoreKey, StoreKeys};
use storenode::sync::reaction;

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
    /// At HQ after healing: returns by the holder of the rights, unverified returns, units
    /// returned twice recorded as `double_return`, and handovers of return rights.
    pub returns_verified: u64,
    pub returns_unverified: u64,
    pub double_returns: u64,
    pub rights_granted: u64,
}

impl Stats {
    /// Add another run's counters to these.
    pub fn add(&mut self, o: &Stats) {
        self.local_ops += o.local_ops;
        self.refused += o.refused;
        self.refused_stock += o.refused_stock;
        self.applied += o.applied;
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
        self.returns_verified += o.returns_verified;
        self.returns_unverified += o.returns_unverified;
        self.double_returns += o.double_returns;
        self.rights_granted += o.rights_granted;
    }
}

/// One simulated replica and the sync metadata its adapter keeps.
pub struct SimNode {
    pub actor: ActorId,
    pub backend: Backend,
    /// Last version vector heard from each peer (index): what it holds durably.
    pub peer_acked: BTreeMap<usize, VersionVector>,
}

pub struct World {
    pub cfg: Config,
    pub rng: Rng,
    pub now_ms: u64,
    /// Index 0 is HQ, 1.. are stores.
    pub nodes: Vec<SimNode>,
    pub net: Vec<Msg>,
    /// Per store index: whether its link to the broker is up (index 0 unused).
    pub link_up: Vec<bool>,
    pub policy: AllocationPolicy,
    pub stats: Stats,
    /// Source of unique order and sale ids.
    pub next_id: u64,
    /// Each store's signing key (index = store index - 1).
    pub keys: Vec<StoreKey>,
    /// HQ's registry of store public keys.
    pub hq_keys: StoreKeys,
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
        let mut actors = vec![ActorId::hq()];
        for s in STORES.iter().take(cfg.stores) {
            actors.push(StoreId::parse(s).expect("store id").actor());
        }
        let nodes = actors
            .into_iter()
            .map(|actor| {
                let backend = match dir {
                    Some(d) => {
                        let file = format!("{}.db", actor.as_str().replace(':', "_"));
                        Backend::sqlite(d.join(file), actor.clone())
                    }
                    None => Backend::memory(actor.clone()),
                };
                SimNode {
                    actor,
                    backend,
                    peer_acked: BTreeMap::new(),
                }
            })
            .collect::<Vec<_>>();
        let link_up = vec![true; nodes.len()];
        let keys: Vec<StoreKey> = nodes[1..]
            .iter()
            .map(|n| {
                let mut secret = [0u8; 32];
                for (i, b) in secret.iter_mut().enumerate() {
                    *b = (rng.next_u64() >> (i % 8)) as u8;
                }
                StoreKey::from_secret(n.actor.store().expect("store"), secret)
            })
            .collect();
        let registered: Vec<(StoreId, String)> = keys
            .iter()
            .map(|k| (k.store().clone(), k.public_hex()))
            .collect();
        let hq_keys = StoreKeys::parse(registered.iter().map(|(s, k)| (s.clone(), k.as_str())))
            .expect("store keys");
        let mut world = World {
            cfg,
            rng,
            now_ms: 1_700_000_000_000,
            nodes,
            net: Vec::new(),
            link_up,
            policy: AllocationPolicy::default(),
            stats: Stats::default(),
            next_id: 0,
            keys,
            hq_keys,
        };
        let catalog = actions::catalog();
        let (ops, _) = world.nodes[0]
            .backend
            .submit(world.now_ms, catalog)
            .expect("catalog");
        for s in 1..world.nodes.len() {
            world.nodes[s].backend.ingest(ops.clone());
        }
        world
    }

    pub fn stores(&self) -> std::ops::Range<usize> {
        1..self.nodes.len()
    }

    /// Issue local changes at `who`, then run the reactions they call for.
    pub fn submit(&mut self, who: usize, payloads: Vec<Payload>) -> Option<Vec<Op>> {
        match self.nodes[who].backend.submit(self.now_ms, payloads) {
            Ok((ops, effects)) => {
                self.stats.local_ops += ops.len() as u64;
                self.check_own_rights(who);
                self.react(who, &effects);
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

    /// What the adapters do after a commit. A store's reactions are computed from its state
    /// (release orders cancelled elsewhere, cover shortfalls, top up HQ while online), so a
    /// crash before reacting only delays them; HQ answers a store's request for rights back.
    pub fn react(&mut self, who: usize, effects: &[Effect]) {
        if who == 0 {
            for e in effects {
                if let Effect::ReturnRequested { store, sku, qty } = e {
                    let plan = self.nodes[0]
                        .backend
                        .read(|r| reaction::plan_return(r.state(), store, sku, *qty));
                    if let Some(payload) = plan {
                        self.stats.reactions += 1;
                        self.submit(0, vec![payload]);
                    }
                }
            }
            return;
        }
        // One op at a time, as the store engine submits them; its own reaction plans the
        // rest from the new state. Each one reduces what is left to do, so this ends.
        if let Some(first) = self.store_plan(who).into_iter().next() {
            self.stats.reactions += 1;
            self.submit(who, vec![first]);
        }
    }

    /// Releases, shortfall cover and top-up a store owes, from its current state: the real
    /// store engine's decisions (`sync::reaction`).
    fn store_plan(&self, who: usize) -> Vec<Payload> {
        let store = self.nodes[who].actor.store().expect("store node");
        let policy = self.link_up[who].then_some(self.policy);
        self.nodes[who].backend.read(|r| {
            let state = r.state();
            let mut plan = reaction::plan_releases(state, &store);
            plan.extend(storenode::domain::returns::plan_grants(state, &store));
            let skus = reaction::all_skus(state, &store);
            plan.extend(reaction::plan_stock(state, &store, &skus, policy.as_ref()));
            plan
        })
    }

    /// Power cut at `who`: memory and sync metadata gone, committed ops replayed; on restart
    /// the store re-derives the reactions it may have missed.
    pub fn crash(&mut self, who: usize) {
        self.stats.crashes += 1;
        self.nodes[who].backend.crash();
        self.nodes[who].peer_acked.clear();
        self.react(who, &[]);
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
            }
            45..=64 => {
                let s = self.rng.range(1, nodes - 1) as usize;
                if self.rng.chance(50) {
                    self.tick_up(s);
                } else {
                    self.tick_down(s);
                }
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
                    self.forge_batch(s);
                }
            }
        }
    }

    /// Bring a link down or up; coming up, both sides announce their vectors (anti-entropy).
    pub fn set_link(&mut self, s: usize, up: bool) {
        if up == self.link_up[s] {
            return;
        }
        self.link_up[s] = up;
        if up {
            let store_vv = self.nodes[s].backend.read(|r| r.version().clone());
            let hq_vv = self.nodes[0].backend.read(|r| r.version().clone());
            self.send(s, 0, Body::Ack(store_vv));
            self.send(0, s, Body::Ack(hq_vv));
            self.react(s, &[]);
        } else {
            self.stats.partitions += 1;
        }
    }

    /// Heal every link and exchange until nothing moves; panics if that never happens.
    pub fn heal(&mut self) {
        for s in self.stores() {
            self.set_link(s, true);
        }
        for round in 0..2_000u64 {
            let mut sent = 0;
            for s in self.stores() {
                sent += self.tick_up(s);
                sent += self.tick_down(s);
            }
            while !self.net.is_empty() {
                self.deliver(0, false);
            }
            if sent == 0 {
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

    /// A broken store: it commits a sale of more units than it holds, skipping validation,
    /// as a bug in the rights check would. The stock check must catch it after healing.
    pub fn forge_oversell(&mut self, s: usize) {
        let store = self.nodes[s].actor.store().expect("store");
        let (seq, hlc) = self.nodes[s].backend.read(|r| (r.next_seq(), r.clock()));
        let op = Op {
            actor: store.actor(),
            seq,
            hlc,
            payload: Payload::Sale {
                store: store.clone(),
                sale_id: storenode::domain::SaleId::parse("S-FORGED").expect("sale id"),
                lines: vec![storenode::domain::op::SaleLine {
                    sku: storenode::domain::Sku::parse("SKU-CAFE").expect("sku"),
                    qty: 90_000,
                    unit_cents: 1,
                    vat_bp: 0,
                }],
                tender: storenode::domain::op::Tender::Cash,
                customer: None,
            },
        };
        self.nodes[s].backend.ingest(vec![op]);
    }

    fn check_converged(&self) -> Outcome {
        let mut digests = Vec::new();
        for s in self.stores() {
            let store = self.nodes[s].actor.store().expect("store");
            let at_hq = self.nodes[0].backend.read(|r| r.digest_for_store(&store));
            let at_store = self.nodes[s].backend.read(|r| r.digest_for_store(&store));
            assert_eq!(at_hq, at_store, "store {store} diverged from HQ");
            digests.push((store.to_string(), at_hq.short(), at_store.short()));
        }
        self.check_stock();
        let mut stats = self.stats.clone();
        self.check_returns(&mut stats);
        // No forged op (a seq the store never issued) got into HQ.
        for s in self.stores() {
            let actor = self.nodes[s].actor.clone();
            let last = self.nodes[s].backend.read(|r| r.next_seq()) - 1;
            let forged = self.nodes[0]
                .backend
                .read(|r| (last + 1..=last + 5_000).any(|seq| r.version().contains(&actor, seq)));
            assert!(!forged, "HQ accepted a forged op of {actor}");
        }
        for s in self.stores() {
            let store = self.nodes[s].actor.store().expect("store");
            let unreleased = self.nodes[s].backend.read(|r| {
                r.state()
                    .orders
                    .values()
                    .filter(|o| o.store == store && !o.released && !o.status.is_open())
                    .filter(|o| o.status != OrderStatus::HandedOver)
                    .count()
            });
            assert_eq!(unreleased, 0, "{store} left cancelled orders unreleased");
        }
        Outcome { digests, stats }
    }

    /// No unit is refunded twice unless a `double_return` records it, and verified returns
    /// (by the holder of the sale's rights) never exceed what was sold. Judged at HQ, which
    /// holds every op.
    fn check_returns(&self, stats: &mut Stats) {
        self.nodes[0].backend.read(|r| {
            let s = r.state();
            let verified = s.returns.returns.values().filter(|x| x.verified).count() as u64;
            stats.returns_verified = verified;
            stats.returns_unverified = s.returns.returns.len() as u64 - verified;
            stats.double_returns = s.returns.double_returns.len() as u64;
            stats.rights_granted = s.returns.rights.len() as u64;
            let mut by_sale: BTreeMap<_, (u64, u64)> = BTreeMap::new();
            for ret in s.returns.returns.values() {
                for l in &ret.lines {
                    let e = by_sale
                        .entry((ret.sale.clone(), l.sku.clone()))
                        .or_default();
                    e.0 += u64::from(l.qty);
                    if ret.verified {
                        e.1 += u64::from(l.qty);
                    }
                }
            }
            for ((sale, sku), (all, verified)) in by_sale {
                let Some(sold) = s.sold(&sale) else { continue };
                let sold: u64 = sold
                    .lines
                    .iter()
                    .filter(|l| l.sku == sku)
                    .map(|l| u64::from(l.qty))
                    .sum();
                assert!(
                    verified <= sold,
                    "{sale}/{sku}: {verified} verified returns of {sold} sold"
                );
                assert!(
                    all <= sold
                        || s.returns
                            .double_returns
                            .contains_key(&(sale.clone(), sku.clone())),
                    "{sale}/{sku}: {all} units returned of {sold} sold, no double_return"
                );
            }
        });
    }

    /// From HQ's full log: per (store, sku), units sold, reserved and consumed never exceed
    /// units received plus units released, and the escrow counter agrees with that count.
    fn check_stock(&self) {
        let hq = &self.nodes[0].backend;
        let actors: Vec<ActorId> = hq.read(|r| r.version().entries().into_keys().collect());
        let mut flow: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        for actor in &actors {
            for op in hq.ops_since(actor, 0, usize::MAX >> 1) {
                actions::count_flow(&op, &mut flow);
            }
        }
        hq.read(|r| {
            let state = r.state();
            for o in state.orders.values().filter(|o| o.released) {
                for (sku, line) in &o.lines {
                    let e = flow
                        .entry((o.store.to_string(), sku.to_string()))
                        .or_default();
                    e.0 += i64::from(line.qty);
                }
            }
            for ((store, sku), (into, out)) in &flow {
                assert!(
                    out <= into,
                    "{store}/{sku}: {out} units out of {into} received"
                );
                let s = StoreId::parse(store).expect("store");
                let k = storenode::domain::Sku::parse(sku).expect("sku");
                assert_eq!(state.available(&s, &k), into - out, "{store}/{sku} counter");
                let c = state.counter(&s, &k).expect("counter");
                assert!(c.rights(&s.actor()) >= 0 && c.rights(&ActorId::hq()) >= 0);
            }
        });
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
