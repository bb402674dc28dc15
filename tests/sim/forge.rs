//! Faults of a broken or compromised store: an oversold sale committed past validation, and
//! forged batches, acks and lookup replies that HQ and the stores must refuse. Each forged
//! message is marked, and `World::deliver` checks that its receiver refused and counted it.

use super::net::{Msg, Proto};
use super::{World, CHAIN};
use storenode::domain::op::Payload;
use storenode::domain::Op;
use storenode::signing::HqKey;
use storenode::sync::topic::{TopicKind, Topics};
use storenode::sync::wire::lookup::LookupReply;
use storenode::sync::wire::{self, Ack, DownBatch, Message, SignedDown, SignedUp, UpBatch};

impl World {
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
        let (_, effects) = self.nodes[s].backend.ingest(vec![op.clone()]);
        if let Proto::Store(p) = &mut self.nodes[s].proto {
            p.handle_committed(&[op], &effects);
        }
        self.drive(s);
    }

    /// A compromised store `s` tries to pass a sale off as another store's: a batch claiming
    /// that store, its ops authored as that store, signed with `s`'s own key (or not signed),
    /// sent on `s`'s topic (the broker ACL allows no other) or, as if the ACL were
    /// misconfigured, on the victim's. HQ's protocol must refuse it either way.
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
        let inner = UpBatch {
            store: store.clone(),
            ops: vec![op],
        };
        let msg = if self.rng.chance(20) {
            Message::Up(inner)
        } else {
            let batch = postcard::to_allocvec(&inner).expect("encode batch");
            let signature = self.keys[s - 1].sign(&batch).to_vec();
            Message::SignedUp(SignedUp {
                store: store.clone(),
                batch,
                signature,
            })
        };
        let from = if self.rng.chance(50) { s } else { victim };
        let topic_store = self.nodes[from].actor.store().expect("store");
        let topic = Topics::new(CHAIN)
            .expect("chain")
            .topic(&topic_store, TopicKind::Up);
        self.stats.forged_sent += 1;
        if self.link_ok(from) {
            self.net.push(Msg {
                to: 0,
                link: from,
                topic,
                payload: wire::encode(&msg).expect("encode"),
                forged: true,
            });
        }
    }

    /// Whoever can publish on store `s`'s `down` topic (a misconfigured ACL, a compromised
    /// broker) tries to hand it rights HQ never granted: an HQ-authored transfer with a seq HQ
    /// never issued, as an unsigned batch, signed with a key that is not HQ's, or genuinely
    /// signed by HQ for another store and replayed here. The store's protocol must refuse it.
    pub fn forge_down(&mut self, s: usize) {
        let store = self.nodes[s].actor.store().expect("store");
        let seq = self.nodes[0].backend.read(|r| r.next_seq()) + 1_000;
        let op = Op {
            actor: storenode::domain::ActorId::hq(),
            seq,
            hlc: storenode::domain::Hlc::new(self.now_ms, 0),
            payload: Payload::StockTransfer {
                store: store.clone(),
                sku: storenode::domain::Sku::parse("SKU-CAFE").expect("sku"),
                to: store.actor(),
                qty: 50,
            },
        };
        let next_idx = self.nodes[s].backend.store_cursors().down_idx + 1;
        let inner = DownBatch {
            first_idx: next_idx,
            ops: vec![op],
        };
        let batch = postcard::to_allocvec(&inner).expect("encode batch");
        let msg = match self.rng.below(3) {
            0 => Message::Down(inner),
            1 => {
                let forger = HqKey::from_secret([7; 32]);
                Message::SignedDown(SignedDown {
                    store: store.clone(),
                    signature: forger.sign(&store, &batch).to_vec(),
                    batch,
                })
            }
            _ => {
                let other = if s + 1 < self.nodes.len() { s + 1 } else { 1 };
                let other = self.nodes[other].actor.store().expect("store");
                Message::SignedDown(SignedDown {
                    store: store.clone(),
                    signature: self.hq_key.sign(&other, &batch).to_vec(),
                    batch,
                })
            }
        };
        let topic = Topics::new(CHAIN)
            .expect("chain")
            .topic(&store, TopicKind::Down);
        self.stats.forged_down_sent += 1;
        if self.link_ok(s) {
            self.net.push(Msg {
                to: s,
                link: s,
                topic,
                payload: wire::encode(&msg).expect("encode"),
                forged: true,
            });
        }
    }

    /// Whoever can publish on store `s`'s topics tries to pass an ack or a lookup reply off as
    /// HQ's: an ack claiming HQ holds ops the store never issued (taken, it would drop them
    /// from the outbox unsent) or a reply handing the store a customer, as a bare message,
    /// signed with a key that is not HQ's, or genuinely signed by HQ for another store and
    /// replayed here. The store's protocol must refuse each one (`reply_*` labels).
    pub fn forge_reply(&mut self, s: usize) {
        let store = self.nodes[s].actor.store().expect("store");
        let is_ack = self.rng.chance(50);
        let (msg, kind) = if is_ack {
            let claimed = self.nodes[s].backend.read(|r| r.next_seq()) + 1_000;
            let ack = Ack {
                from: storenode::domain::ActorId::hq(),
                vv: [(store.actor(), claimed)].into_iter().collect(),
                down_idx: 0,
                resend: false,
                reply: false,
            };
            (Message::Ack(ack), TopicKind::Ack)
        } else {
            let reply = LookupReply {
                id: 1,
                customers: vec![storenode::domain::CustomerId::parse("C-FORGED").expect("id")],
            };
            (Message::LookupReply(reply), TopicKind::Down)
        };
        let payload = match self.rng.below(3) {
            0 => wire::encode(&msg),
            1 => wire::encode_signed_reply(&HqKey::from_secret([7; 32]), &store, &msg),
            _ => {
                let other = if s + 1 < self.nodes.len() { s + 1 } else { 1 };
                let other = self.nodes[other].actor.store().expect("store");
                wire::encode_signed_reply(&self.hq_key, &other, &msg)
            }
        }
        .expect("encode");
        let topic = Topics::new(CHAIN).expect("chain").topic(&store, kind);
        self.stats.forged_reply_sent += 1;
        if self.link_ok(s) {
            self.net.push(Msg {
                to: s,
                link: s,
                topic,
                payload,
                forged: true,
            });
        }
    }
}
