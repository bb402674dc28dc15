//! The store's protocol, receiving half: a message from HQ is checked (topic, signature,
//! batch index) before its ops become an `Ingest` action; acks advance the outbox window.

use super::cursor::{EPOCH_MAX, IDX_MAX};
use super::AckDue;
use super::{StoreAction, StoreProtocol, KEY_HQ_ACKED_SEQ};
use crate::sync::metrics::SyncMetrics;
use crate::sync::topic::TopicKind;
use crate::sync::wire::{self, Ack, DownBatch, EpochDownBatch, Message};
use std::sync::atomic::Ordering::Relaxed;

impl StoreProtocol {
    /// A message arrived on one of our subscriptions.
    pub fn handle_message(&mut self, now_ms: u64, topic: &str, payload: &[u8]) {
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
        if kind == TopicKind::Down {
            let hq = self.cfg.hq_public_key.as_deref();
            match wire::down_batch(&msg, &self.cfg.store, hq) {
                Some(Ok(batch)) => {
                    SyncMetrics::add(&self.metrics.batches_received, 1);
                    return self.on_down(now_ms, batch);
                }
                Some(Err(e)) => {
                    self.metrics.reject(e.reason());
                    tracing::warn!(store = %self.cfg.store, reason = e.reason(), error = %e, "refused a down-batch");
                    return;
                }
                None => {}
            }
        }
        let hq = self.cfg.hq_public_key.as_deref();
        let msg = match wire::from_hq(msg, &self.cfg.store, hq) {
            Ok(m) => m,
            Err(e) => {
                self.metrics.reject(e.reason());
                tracing::warn!(store = %self.cfg.store, reason = e.reason(), error = %e, "refused a message from HQ");
                return;
            }
        };
        match (kind, msg) {
            (TopicKind::Ack, Message::Ack(ack)) if ack.from.is_hq() => self.on_ack(now_ms, ack),
            // Our own acks, handed back by the broker (we subscribe to the topic for HQ's).
            (TopicKind::Ack, Message::Ack(_) | Message::EpochAck(_)) => {}
            (TopicKind::Down, Message::LookupReply(reply)) => {
                self.queue.push_back(StoreAction::LookupReply(reply))
            }
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

    /// Last down-log index accepted: applied, being applied, or waiting to be.
    fn accepted_upto(&self) -> u64 {
        match (&self.pending_down, self.ingesting) {
            (Some(p), _) => p.first_idx + p.ops.len() as u64 - 1,
            (None, Some((epoch, last))) if epoch == self.down_epoch => last,
            (None, _) => self.down_idx,
        }
    }

    /// A batch of a lower lease epoch than the store follows is a dead or former holder's:
    /// dropped. A higher one starts the new holder's numbering from 0 (what the store already
    /// applied is skipped by `(actor, seq)` when it comes again).
    fn on_down(&mut self, now_ms: u64, batch: EpochDownBatch) {
        self.last_sync_ms = Some(now_ms);
        self.metrics.last_sync_ms.store(now_ms, Relaxed);
        let n = batch.ops.len() as u64;
        if n == 0 {
            return;
        }
        let out_of_range =
            batch.epoch > EPOCH_MAX || batch.first_idx.saturating_add(n - 1) > IDX_MAX;
        if out_of_range {
            self.metrics.reject("malformed");
            tracing::warn!(store = %self.cfg.store, epoch = batch.epoch, first_idx = batch.first_idx, "refused a down-batch out of range");
            return;
        }
        if batch.epoch == 0 && self.down_epoch > 0 {
            // A single HQ again (no leases): its numbering is not the one this store's cursor
            // counts in, and only the operator knows HQ went back on purpose.
            self.metrics.reject("single_hq");
            if self.metrics.rejected("single_hq").is_power_of_two() {
                tracing::warn!(
                    store = %self.cfg.store,
                    ours = self.down_epoch,
                    "HQ sends down-batches without a lease epoch (a single HQ) but this store \
                     followed leased HQ processes: they are dropped until its HQ cursor is reset; \
                     stop the store and run `storenode store reset-hq-cursor --db <store db>`"
                );
            }
            return;
        }
        if batch.epoch < self.down_epoch {
            self.metrics.reject("stale_epoch");
            tracing::debug!(
                epoch = batch.epoch,
                ours = self.down_epoch,
                "dropped a down-batch of an earlier lease"
            );
            return;
        }
        if batch.epoch > self.down_epoch {
            tracing::info!(store = %self.cfg.store, epoch = batch.epoch, "a new HQ process serves this store");
            self.down_epoch = batch.epoch;
            self.down_idx = 0;
            self.pending_down = None;
            self.gap.clear();
            self.persist_down();
        }
        let batch = DownBatch {
            first_idx: batch.first_idx,
            ops: batch.ops,
        };
        let upto = self.accepted_upto();
        let last = batch.first_idx.saturating_add(n - 1);
        if last <= upto {
            AckDue::merge(&mut self.ack_due, AckDue::default());
            return;
        }
        if batch.first_idx > upto + 1 {
            if self.gap.request(now_ms) {
                tracing::debug!(
                    have = upto,
                    got = batch.first_idx,
                    "down-log gap; asking HQ to resend"
                );
                AckDue::merge(&mut self.ack_due, AckDue::RESEND);
            }
            return;
        }
        self.gap.clear();
        let skip = (upto + 1 - batch.first_idx) as usize;
        let fresh = batch.ops.into_iter().skip(skip);
        match &mut self.pending_down {
            Some(p) => p.ops.extend(fresh),
            None => {
                self.pending_down = Some(DownBatch {
                    first_idx: upto + 1,
                    ops: fresh.collect(),
                })
            }
        }
    }

    fn on_ack(&mut self, now_ms: u64, ack: Ack) {
        SyncMetrics::add(&self.metrics.acks_received, 1);
        self.last_sync_ms = Some(now_ms);
        self.metrics.last_sync_ms.store(now_ms, Relaxed);
        let acked = ack.vv.get(&self.me).copied().unwrap_or(0);
        self.recent.acked(acked);
        if self.outbox.on_ack(acked, ack.resend, now_ms) {
            self.queue.push_back(StoreAction::Persist {
                key: KEY_HQ_ACKED_SEQ,
                value: acked,
            });
        }
        if ack.resend {
            self.hello_unanswered_ms = None;
        }
        if ack.reply {
            AckDue::merge(&mut self.ack_due, AckDue::RESEND);
        }
    }
}
