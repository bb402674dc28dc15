//! Faults of a broken or compromised store: an oversold sale committed past validation, and
//! forged batches that HQ must refuse.

use super::net::{Msg, Proto};
use super::{World, CHAIN};
use storenode::domain::op::Payload;
use storenode::domain::Op;
use storenode::sync::topic::{TopicKind, Topics};
use storenode::sync::wire::{self, Message, SignedUp, UpBatch};

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
            });
        }
    }
}
