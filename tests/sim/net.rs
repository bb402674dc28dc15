//! The simulated transport, modelled on our MQTT sync: a store sends HQ its own ops above what
//! HQ last acknowledged; HQ sends a store every op it needs (catalog, that store's stock and
//! orders, data of customers in its scope) that the store has not acknowledged; each side
//! answers a batch with its version vector. Messages in flight may be lost, duplicated or
//! reordered, and a partitioned link delivers nothing until it heals.

use super::World;
use storenode::domain::version::VersionVector;
use storenode::domain::{ActorId, Op, Payload, State, StoreId};

/// Most ops in one batch (our sync bounds batches by size too).
pub const BATCH_OPS_MAX: usize = 16;

/// What travels between two replicas.
#[derive(Debug, Clone)]
pub enum Body {
    /// A batch of ops (HQ -> store).
    Ops(Vec<Op>),
    /// A store's batch: its encoded ops, the store it claims to come from, and its ed25519
    /// signature (store -> HQ). HQ verifies before decoding.
    Up {
        claimed: StoreId,
        batch: Vec<u8>,
        signature: Option<[u8; 64]>,
    },
    /// The sender's version vector: what it has durably applied.
    Ack(VersionVector),
}

#[derive(Debug, Clone)]
pub struct Msg {
    pub from: usize,
    pub to: usize,
    pub body: Body,
}

/// Whether store `s` needs `op` from HQ, judged on HQ's state (mirrors `sync::route`).
pub fn store_needs(op: &Op, s: &StoreId, state: &State) -> bool {
    if op.actor == s.actor() {
        return false;
    }
    match &op.payload {
        Payload::CatalogPut { .. }
        | Payload::CustomerErase { .. }
        | Payload::ReturnRightsRequested { holder: None, .. } => true,
        // Purchase history follows the customer; a return also goes to the seller.
        Payload::Sale {
            store,
            customer: Some(c),
            ..
        } => store == s || state.customers_in_scope(s).contains(c),
        Payload::OrderPlace {
            store, customer, ..
        } => store == s || state.customers_in_scope(s).contains(customer),
        Payload::Return {
            store,
            sale_store,
            customer,
            ..
        } => {
            store == s
                || sale_store.as_ref() == Some(s)
                || customer
                    .as_ref()
                    .is_some_and(|c| state.customers_in_scope(s).contains(c))
        }
        Payload::CartSet { customer, .. }
        | Payload::CartRemove { customer, .. }
        | Payload::CustomerUpdate { customer, .. }
        | Payload::ConsentSet { customer, .. } => state.customers_in_scope(s).contains(customer),
        p => p.store() == Some(s),
    }
}

impl World {
    /// Index of the link a message between `a` and `b` uses (the store's index).
    fn link(a: usize, b: usize) -> usize {
        a.max(b)
    }

    pub fn link_up(&self, a: usize, b: usize) -> bool {
        self.link_up[Self::link(a, b)]
    }

    /// Put a message on the wire; a partitioned link drops it at once.
    pub fn send(&mut self, from: usize, to: usize, body: Body) {
        if !self.link_up(from, to) {
            self.stats.dropped += 1;
            return;
        }
        self.net.push(Msg { from, to, body });
    }

    /// One round of a store's outbox: its own ops HQ has not acknowledged, and its vector.
    pub fn tick_up(&mut self, s: usize) -> usize {
        let actor = self.nodes[s].actor.clone();
        let acked = self.nodes[s]
            .peer_acked
            .get(&0)
            .cloned()
            .unwrap_or_default();
        let ops: Vec<Op> = self.nodes[s]
            .backend
            .ops_since(&actor, acked.contiguous(&actor), BATCH_OPS_MAX * 2)
            .into_iter()
            .filter(|o| !acked.contains(&o.actor, o.seq))
            .take(BATCH_OPS_MAX)
            .collect();
        let sent = ops.len();
        if sent > 0 {
            let store = actor.store().expect("store node");
            let batch = postcard::to_allocvec(&ops).expect("encode batch");
            let signature = Some(self.keys[s - 1].sign(&batch));
            self.send(
                s,
                0,
                Body::Up {
                    claimed: store,
                    batch,
                    signature,
                },
            );
        }
        let vv = self.nodes[s].backend.read(|r| r.version().clone());
        self.send(s, 0, Body::Ack(vv));
        sent
    }

    /// One round of HQ's down-log for store `s`: ops it needs and has not acknowledged.
    pub fn tick_down(&mut self, s: usize) -> usize {
        let store = self.nodes[s].actor.store().expect("store node");
        let acked = self.nodes[0]
            .peer_acked
            .get(&s)
            .cloned()
            .unwrap_or_default();
        let hq = &self.nodes[0].backend;
        let actors: Vec<ActorId> = hq.read(|r| r.version().entries().into_keys().collect());
        let mut batch = Vec::new();
        for actor in actors.iter().filter(|a| **a != store.actor()) {
            let candidates = hq.ops_since(actor, acked.contiguous(actor), usize::MAX >> 1);
            let needed = hq.read(|r| {
                candidates
                    .into_iter()
                    .filter(|o| !acked.contains(&o.actor, o.seq))
                    .filter(|o| store_needs(o, &store, r.state()))
                    .collect::<Vec<_>>()
            });
            batch.extend(needed);
            if batch.len() >= BATCH_OPS_MAX {
                break;
            }
        }
        batch.truncate(BATCH_OPS_MAX);
        let sent = batch.len();
        if sent > 0 {
            self.send(0, s, Body::Ops(batch));
        }
        sent
    }

    /// Deliver message `i` of the wire (subject to loss and duplication when `faulty`).
    pub fn deliver(&mut self, i: usize, faulty: bool) {
        let msg = if faulty && self.rng.chance(self.cfg.dup_pct) {
            self.stats.duplicated += 1;
            self.net[i].clone()
        } else {
            self.net.swap_remove(i)
        };
        if faulty && self.rng.chance(self.cfg.loss_pct) {
            self.stats.lost += 1;
            return;
        }
        self.stats.delivered += 1;
        match msg.body {
            Body::Ack(vv) => {
                let known = self.nodes[msg.to].peer_acked.entry(msg.from).or_default();
                if vv.total() >= known.total() {
                    *known = vv;
                }
            }
            Body::Up {
                claimed,
                batch,
                signature,
            } => {
                // HQ: verify the signature on the bytes, then decode, then check the authors.
                let topic = self.nodes[msg.from].actor.store().expect("store");
                let verified = self.hq_keys.verify(
                    &topic,
                    &claimed,
                    &batch,
                    signature.as_ref().map(|s| &s[..]),
                );
                let ops: Option<Vec<Op>> = verified
                    .ok()
                    .and_then(|()| postcard::from_bytes(&batch).ok());
                match ops.filter(|ops| self.hq_keys.check_ops(&claimed, ops).is_ok()) {
                    Some(ops) => self.apply_batch(msg.to, msg.from, ops),
                    None => self.stats.forged_rejected += 1,
                }
            }
            Body::Ops(ops) => self.apply_batch(msg.to, msg.from, ops),
        }
    }

    /// Ingest a batch at `to`, run the reactions, and answer with `to`'s version vector.
    fn apply_batch(&mut self, to: usize, from: usize, ops: Vec<Op>) {
        let (applied, effects) = self.nodes[to].backend.ingest(ops);
        self.stats.applied += applied as u64;
        self.react(to, &effects);
        let vv = self.nodes[to].backend.read(|r| r.version().clone());
        self.send(to, from, Body::Ack(vv));
    }

    /// A compromised store `s` tries to pass a sale off as another store's: a batch claiming
    /// that store, its ops authored as that store, signed with `s`'s own key, sent on `s`'s
    /// topic (the broker ACL allows no other) or, as if the ACL were misconfigured, on the
    /// victim's. HQ must refuse it either way.
    pub fn forge_batch(&mut self, s: usize) {
        let victim = if s + 1 < self.nodes.len() { s + 1 } else { 1 };
        if victim == s {
            return;
        }
        let store = self.nodes[victim].actor.store().expect("store");
        let seq = self.nodes[victim].backend.read(|r| r.next_seq()) + 1_000;
        let op = Op {
            actor: store.actor(),
            seq,
            hlc: storenode::domain::Hlc::new(self.now_ms, 0),
            payload: Payload::StockReceive {
                store: store.clone(),
                sku: storenode::domain::Sku::parse("SKU-CAFE").expect("sku"),
                qty: 50,
                reason: storenode::domain::op::ReceiveReason::Delivery,
            },
        };
        let batch = postcard::to_allocvec(&vec![op]).expect("encode batch");
        let signature = if self.rng.chance(20) {
            None
        } else {
            Some(self.keys[s - 1].sign(&batch))
        };
        let from = if self.rng.chance(50) { s } else { victim };
        self.stats.forged_sent += 1;
        self.send(
            from,
            0,
            Body::Up {
                claimed: store,
                batch,
                signature,
            },
        );
    }

    /// Deliver a random message in flight whose link is up.
    pub fn deliver_random(&mut self) {
        let ready: Vec<usize> = (0..self.net.len())
            .filter(|i| self.link_up(self.net[*i].from, self.net[*i].to))
            .collect();
        if let Some(&i) = self.rng.pick(&ready) {
            self.deliver(i, true);
        }
    }
}
