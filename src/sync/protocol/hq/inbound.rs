//! HQ's protocol, receiving half: every message from a store is checked here before anything
//! is applied (topic's store known, signature when keys are configured, author of every op),
//! and a store's ops are taken in its seq order only.

use super::{HqAction, HqProtocol};
use crate::domain::{Op, StoreId};
use crate::sync::metrics::SyncMetrics;
use crate::sync::protocol::AckDue;
use crate::sync::topic::TopicKind;
use crate::sync::wire::{self, Ack, Message, SignedUp, Status, UpBatch};

/// A store's ops in seq order, keeping only those up to the first hole after `before` (the
/// store's contiguous seq at HQ), and whether a hole held some back. HQ applies each store's
/// ops in the store's order so its cursor (the contiguous seq it acks) and the fiscal chain
/// check stay exact; the merge itself no longer needs it (a shortfall is counted minus
/// covered, two grow-only sums), so a batch that overtook an earlier one just waits.
pub(super) fn in_order(mut ops: Vec<Op>, before: u64) -> (Vec<Op>, bool) {
    ops.sort_by_key(|op| op.seq);
    ops.dedup_by_key(|op| op.seq);
    let mut next = before + 1;
    let total = ops.len();
    let kept: Vec<Op> = ops
        .into_iter()
        .take_while(|op| {
            if op.seq == next {
                next += 1;
            }
            op.seq < next
        })
        .collect();
    let gap = kept.len() < total;
    (kept, gap)
}

impl HqProtocol {
    /// A message arrived on one of HQ's subscriptions.
    pub fn handle_message(&mut self, now_ms: u64, topic: &str, payload: &[u8]) {
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
        // Another process holds this store's lease: it ingests, acks and answers; the store
        // resends whatever stays unacked to whoever holds the lease next.
        if kind != TopicKind::Status && !self.serves(&store) {
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
                // Counted and logged by the verifier.
                Some(keys) => {
                    if let Err(e) = keys.verify(&store, &batch.store, &[], None) {
                        self.metrics.reject(e.reason());
                    }
                }
                None => self.on_up(store, batch),
            },
            (TopicKind::Up, Message::SignedUp(signed)) => self.on_signed_up(store, signed),
            (TopicKind::Ack, Message::Ack(ack)) => self.on_ack(now_ms, store, ack, 0),
            (TopicKind::Ack, Message::EpochAck(e)) => self.on_ack(now_ms, store, e.ack, e.epoch),
            // An HQ process's own signed ack to the store, or another process's.
            (TopicKind::Ack, Message::SignedReply(_)) => {}
            (TopicKind::Status, Message::Status(status)) => self.on_status(now_ms, store, status),
            (TopicKind::Lookup, Message::Lookup(lookup)) => {
                self.queue.push_back(HqAction::Lookup { store, lookup })
            }
            (kind, msg) => {
                self.metrics.reject("malformed");
                tracing::warn!(store = %store, topic = kind.as_str(), message = msg.kind(), "unexpected message on topic");
            }
        }
    }

    /// Refuse the whole batch unless the topic's store authored every op in it.
    fn check_up(store: &StoreId, batch: &UpBatch) -> Result<(), &'static str> {
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

    /// Verify a signed batch's bytes (when keys are configured), then open and check it.
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

    fn on_up(&mut self, store: StoreId, batch: UpBatch) {
        if let Err(reason) = Self::check_up(&store, &batch) {
            self.metrics.reject(reason);
            return;
        }
        SyncMetrics::add(&self.metrics.batches_received, 1);
        self.pending_up.entry(store).or_default().extend(batch.ops);
    }

    /// A store's ack; `epoch` is the lease epoch its `down_idx` counts in (0: `Ack`).
    fn on_ack(&mut self, now_ms: u64, store: StoreId, ack: Ack, epoch: u64) {
        if ack.from.is_hq() {
            return;
        }
        if ack.from != store.actor() {
            self.metrics.reject("wrong_actor");
            tracing::warn!(store = %store, from = %ack.from, "refused an ack from another actor");
            return;
        }
        SyncMetrics::add(&self.metrics.acks_received, 1);
        self.metrics
            .last_sync_ms
            .store(now_ms, std::sync::atomic::Ordering::Relaxed);
        let Some(peer) = self.peers.get_mut(&store) else {
            return;
        };
        peer.seen(now_ms);
        if ack.resend {
            peer.synced = true;
        }
        match peer.base {
            // The store counts in this epoch's numbering, or has seen none of it yet.
            Some(base) => {
                let at = match epoch == peer.epoch {
                    true => base.saturating_add(ack.down_idx),
                    false => base,
                };
                peer.down.on_ack(at.min(peer.down_last), ack.resend, now_ms);
            }
            None if !peer.finding => {
                peer.finding = true;
                self.queue.push_back(HqAction::FindDownStart {
                    store: store.clone(),
                    epoch: peer.epoch,
                    vv: ack.vv.clone(),
                });
            }
            None => {}
        }
        peer.acked_vv = ack.vv;
        if ack.reply {
            AckDue::merge(&mut peer.ack_due, AckDue::RESEND);
        }
    }

    fn on_status(&mut self, now_ms: u64, store: StoreId, status: Status) {
        let Some(peer) = self.peers.get_mut(&store) else {
            return;
        };
        tracing::info!(store = %store, online = status.online, "store status");
        peer.online = status.online;
        peer.outbox = status.outbox;
        peer.version = Some(status.version);
        if status.online {
            peer.last_seen_ms = Some(now_ms);
        } else {
            peer.synced = false;
        }
    }
}
