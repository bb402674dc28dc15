//! The simulated broker and the two adapters: each node runs the shipped sync protocol
//! (`storenode::sync::protocol`), and this file carries out its actions the way the daemons do
//! (`sync::store_sync`, `sync::hq_sync`), on the simulation's clock and backends. Messages in
//! flight may be lost, duplicated or reordered, and a partitioned link delivers nothing until
//! it heals. A store's Last Will reaches HQ before anything the store sends after reconnecting,
//! as a real broker orders it.

use super::World;
use storenode::domain::StoreId;
use storenode::sync::protocol::hq::{HqAction, HqProtocol};
use storenode::sync::protocol::store::{StoreAction, StoreProtocol};
use storenode::sync::protocol::Publish;

/// Most actions one node carries out in a row before the run is declared stuck.
const ACTIONS_PER_DRIVE_MAX: usize = 100_000;

/// The protocol a node runs.
pub enum Proto {
    Hq(Box<HqProtocol>),
    Store(Box<StoreProtocol>),
}

/// An action of either side.
enum Act {
    Hq(HqAction),
    Store(StoreAction),
}

/// A message on the wire: MQTT topic and payload, for node `to` over store link `link` (0 is
/// HQ's own link to the broker, always up).
#[derive(Debug, Clone)]
pub struct Msg {
    pub to: usize,
    pub link: usize,
    pub topic: String,
    pub payload: Vec<u8>,
    /// Forged by `sim::forge`: the receiver must refuse it and count the refusal.
    pub forged: bool,
}

impl World {
    pub fn link_ok(&self, link: usize) -> bool {
        link == 0 || self.link_up[link]
    }

    /// Index of a store node.
    pub fn index_of(&self, store: &StoreId) -> Option<usize> {
        self.stores()
            .find(|s| self.nodes[*s].actor.store().as_ref() == Some(store))
    }

    /// Put a publish of node `from` on the wire; a partitioned link drops it at once.
    pub fn send(&mut self, from: usize, p: &Publish) {
        let (to, link) = if from == 0 {
            let topics = storenode::sync::topic::Topics::new(super::CHAIN).expect("chain");
            let Some(to) = topics
                .parse(&p.topic)
                .ok()
                .and_then(|(s, _)| self.index_of(&s))
            else {
                return;
            };
            (to, to)
        } else {
            (0, from)
        };
        if !self.link_ok(link) {
            self.stats.dropped += 1;
            return;
        }
        self.stats.published += 1;
        self.net.push(Msg {
            to,
            link,
            topic: p.topic.clone(),
            payload: p.payload.clone(),
            forged: false,
        });
    }

    /// Deliver message `i` of the wire (subject to loss and duplication when `faulty`).
    pub fn deliver(&mut self, i: usize, faulty: bool) {
        let msg = if faulty && self.rng.chance(self.cfg.dup_pct) {
            self.stats.duplicated += 1;
            self.net[i].clone()
        } else {
            self.net.remove(i)
        };
        if faulty && self.rng.chance(self.cfg.loss_pct) {
            self.stats.lost += 1;
            return;
        }
        self.stats.delivered += 1;
        let now = self.now_ms;
        let refused_before = self.refused(msg.to);
        match &mut self.nodes[msg.to].proto {
            Proto::Hq(p) => p.handle_message(now, &msg.topic, &msg.payload),
            Proto::Store(p) => p.handle_message(now, &msg.topic, &msg.payload),
        }
        if msg.forged {
            assert_eq!(
                self.refused(msg.to),
                refused_before + 1,
                "node {} did not refuse a forged message on {}",
                msg.to,
                msg.topic
            );
        }
        self.drive(msg.to);
    }

    /// Messages node `who` refused so far, all reasons (its counters survive its crashes).
    fn refused(&self, who: usize) -> u64 {
        match who {
            0 => self.hq_metrics.rejected_total(),
            s => self.store_metrics[s - 1].rejected_total(),
        }
    }

    /// Deliver a random message in flight whose link is up.
    pub fn deliver_random(&mut self) {
        let ready: Vec<usize> = (0..self.net.len())
            .filter(|i| self.link_ok(self.net[*i].link))
            .collect();
        if let Some(&i) = self.rng.pick(&ready) {
            self.deliver(i, true);
        }
    }

    /// Node `who`'s timer fired.
    pub fn tick(&mut self, who: usize) {
        let now = self.now_ms;
        match &mut self.nodes[who].proto {
            Proto::Hq(p) => p.handle_tick(now),
            Proto::Store(p) => p.handle_tick(now),
        }
        self.drive(who);
    }

    /// Carry out every action node `who`'s protocol has for now.
    pub fn drive(&mut self, who: usize) {
        for _ in 0..ACTIONS_PER_DRIVE_MAX {
            let now = self.now_ms;
            let node = &mut self.nodes[who];
            let action = match &mut node.proto {
                Proto::Hq(p) => node.backend.read(|r| p.poll(now, r)).map(Act::Hq),
                Proto::Store(p) => node.backend.read(|r| p.poll(now, r)).map(Act::Store),
            };
            match action {
                Some(Act::Hq(a)) => self.hq_action(a),
                Some(Act::Store(a)) => self.store_action(who, a),
                None => return,
            }
        }
        panic!("node {who} never ran out of actions");
    }

    fn store(&mut self, who: usize) -> &mut StoreProtocol {
        match &mut self.nodes[who].proto {
            Proto::Store(p) => p,
            Proto::Hq(_) => unreachable!("node {who} is a store"),
        }
    }

    fn hq(&mut self) -> &mut HqProtocol {
        match &mut self.nodes[0].proto {
            Proto::Hq(p) => p,
            Proto::Store(_) => unreachable!("node 0 is HQ"),
        }
    }

    fn store_action(&mut self, who: usize, action: StoreAction) {
        match action {
            StoreAction::Publish(p) => self.send(who, &p),
            StoreAction::ReadOutbox { after, limit } => {
                let actor = self.nodes[who].actor.clone();
                let ops = self.nodes[who].backend.ops_since(&actor, after, limit);
                self.store(who).handle_outbox(after, ops);
            }
            StoreAction::Ingest { ops, .. } => {
                let (applied, effects) = self.nodes[who].backend.ingest(ops.clone());
                self.stats.applied += applied as u64;
                let p = self.store(who);
                p.handle_committed(&ops, &effects);
                p.handle_ingested(Some(&effects));
            }
            StoreAction::Persist { key, value } => self.nodes[who].backend.persist(key, value),
            StoreAction::Submit(payload) => {
                self.stats.reactions += 1;
                self.submit(who, vec![payload]);
            }
            StoreAction::LookupReply(_) => {}
        }
    }

    fn hq_action(&mut self, action: HqAction) {
        let now = self.now_ms;
        match action {
            HqAction::Publish(p) => self.send(0, &p),
            HqAction::Ingest { ops, route, .. } => {
                let (applied, effects, routed) = self.nodes[0].backend.ingest_routed(ops, route);
                self.stats.applied += applied as u64;
                self.hq().handle_ingested(now, Some(&effects), routed);
            }
            HqAction::ReadToRoute(reads) => {
                let backend = &self.nodes[0].backend;
                let got = reads
                    .into_iter()
                    .map(|r| {
                        let ops = backend.ops_since(&r.actor, r.since(), r.limit());
                        (r, ops)
                    })
                    .collect();
                self.hq().handle_route_reads(got);
            }
            HqAction::Route { actions, cursors } => {
                let lasts = self.nodes[0].backend.apply_routes(actions, cursors);
                self.hq().handle_routed(Some(lasts));
            }
            HqAction::Reload => {
                let loaded = self.nodes[0].backend.load_hq();
                self.hq().handle_loaded(loaded);
            }
            HqAction::ReadDown {
                store,
                after,
                limit,
            } => {
                let ops = self.nodes[0].backend.downlog_ops(&store, after, limit);
                self.hq().handle_down(&store, after, ops);
            }
            HqAction::AnswerReturns => {
                let answered = self.nodes[0].backend.answer_returns(now);
                self.stats.reactions += answered.len() as u64;
                for (ops, _) in &answered {
                    self.stats.local_ops += ops.len() as u64;
                }
                self.hq().handle_committed();
            }
            HqAction::Lookup { .. } => {}
            // Only with leases (several HQ processes): the simulation runs one HQ without.
            HqAction::FindDownStart { store, epoch, .. } => {
                self.hq().handle_down_start(now, &store, epoch, None)
            }
        }
    }
}
