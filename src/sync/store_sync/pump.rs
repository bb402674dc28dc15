//! Store engine, outgoing half: reactions to the state reached, and publishing status, acks
//! and the outbox without ever waiting on the MQTT request queue.

use super::{LinkStatus, StoreEngine};
use crate::domain::returns::plan_grants;
use crate::store::{now_ms, Node};
use crate::sync::metrics::SyncMetrics;
use crate::sync::reaction::{all_skus, plan_releases, plan_stock};
use crate::sync::topic::TopicKind;
use crate::sync::wire::{self, Ack, Message, Status};
use rumqttc::QoS;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Status is republished at most this often when the outbox depth changed.
const STATUS_REFRESH_MS: u64 = 5_000;

impl StoreEngine {
    /// Submit what the state calls for: releases, return-rights grants and shortfall cover
    /// always, top-ups online.
    pub(super) async fn react(&mut self) {
        if !self.sweep_all && !self.releases_due && self.dirty_skus.is_empty() {
            return;
        }
        let store = self.cfg.store.clone();
        let policy = self.client.as_ref().map(|_| self.cfg.allocation);
        let (sweep, releases) = (self.sweep_all, self.releases_due || self.sweep_all);
        let dirty = std::mem::take(&mut self.dirty_skus);
        self.sweep_all = false;
        self.releases_due = false;
        let plan = self.node.read(|r| {
            let skus = if sweep {
                all_skus(r.state(), &store)
            } else {
                dirty
            };
            let mut plan = if releases {
                let mut p = plan_releases(r.state(), &store);
                p.extend(plan_grants(r.state(), &store));
                p
            } else {
                Vec::new()
            };
            plan.extend(plan_stock(r.state(), &store, &skus, policy.as_ref()));
            plan
        });
        for payload in plan {
            let kind = payload.kind();
            if let Err(e) = self.node.submit(vec![payload]).await {
                tracing::debug!(kind, error = %e, "reaction not submitted");
            }
        }
    }

    fn publish(&self, topic: String, bytes: Vec<u8>, retain: bool) -> bool {
        let Some(client) = &self.client else {
            return false;
        };
        let len = bytes.len() as u64;
        match client.try_publish(topic, QoS::AtLeastOnce, retain, bytes) {
            Ok(()) => {
                SyncMetrics::add(&self.metrics.bytes_sent, len);
                true
            }
            Err(_) => {
                SyncMetrics::add(&self.metrics.publish_deferred, 1);
                false
            }
        }
    }

    fn own_last_seq(&self) -> u64 {
        self.node.read(|r| r.next_seq().saturating_sub(1))
    }

    /// Publish whatever is due and allowed, never waiting on the MQTT request queue.
    pub(super) async fn pump(&mut self) {
        if self.client.is_none() {
            return;
        }
        if self.status_due {
            let outbox = self.own_last_seq().saturating_sub(self.hq_acked);
            if self.publish_status(outbox) {
                self.status_due = false;
            }
        }
        if let Some(due) = self.ack_due {
            let ack = Message::Ack(Ack {
                from: self.me.clone(),
                vv: self.node.read(|r| r.version().entries()),
                down_idx: self.down_idx,
                resend: due.resend,
                reply: due.reply,
            });
            if let Ok(bytes) = wire::encode(&ack) {
                if self.publish(
                    self.topics.topic(&self.cfg.store, TopicKind::Ack),
                    bytes,
                    false,
                ) {
                    SyncMetrics::add(&self.metrics.acks_sent, 1);
                    self.ack_due = None;
                }
            }
        }
        self.pump_outbox().await;
    }

    async fn pump_outbox(&mut self) {
        let last = self.own_last_seq();
        if self.sent_seq > self.hq_acked
            && self.last_progress.elapsed() > Duration::from_millis(self.cfg.retransmit_ms)
        {
            tracing::debug!(
                from = self.hq_acked + 1,
                "no ack progress; resending the outbox"
            );
            self.sent_seq = self.hq_acked;
            self.last_progress = Instant::now();
        }
        while self.sent_seq < last
            && self.sent_seq - self.hq_acked.min(self.sent_seq) < self.cfg.inflight_ops_max
        {
            let (me, after, limit) = (self.me.clone(), self.sent_seq, self.cfg.batch_ops_max);
            let ops = match self
                .node
                .query(move |c| Node::ops_since(c, &me, after, limit))
                .await
            {
                Ok(ops) if !ops.is_empty() => ops,
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    return;
                }
            };
            let encoded = match &self.cfg.signing_key {
                Some(key) => wire::encode_signed_up(key, &ops, self.cfg.batch_ops_max),
                None => wire::encode_up(&self.cfg.store, &ops, self.cfg.batch_ops_max),
            };
            let batches = match encoded {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode the outbox");
                    return;
                }
            };
            let mut offset = 0;
            for batch in batches {
                let topic = self.topics.topic(&self.cfg.store, TopicKind::Up);
                if !self.publish(topic, batch.bytes, false) {
                    return;
                }
                offset += batch.ops;
                self.sent_seq = ops[offset - 1].seq;
                SyncMetrics::add(&self.metrics.batches_sent, 1);
                SyncMetrics::add(&self.metrics.ops_sent, batch.ops as u64);
            }
        }
    }

    fn publish_status(&mut self, outbox: u64) -> bool {
        let status = Message::Status(Status {
            online: true,
            version: self.cfg.version.clone(),
            outbox,
            at_ms: now_ms(),
        });
        let Ok(bytes) = wire::encode(&status) else {
            return false;
        };
        let ok = self.publish(
            self.topics.topic(&self.cfg.store, TopicKind::Status),
            bytes,
            true,
        );
        if ok {
            self.status_sent = (Instant::now(), outbox);
        }
        ok
    }

    /// Refresh the handle's status and, now and then, the retained status's outbox depth.
    pub(super) fn publish_status_snapshot(&mut self) {
        let outbox = self.own_last_seq().saturating_sub(self.hq_acked);
        self.metrics.outbox.store(outbox, Ordering::Relaxed);
        let online = self.client.is_some();
        if online
            && outbox != self.status_sent.1
            && self.status_sent.0.elapsed() > Duration::from_millis(STATUS_REFRESH_MS)
        {
            self.publish_status(outbox);
        }
        let status = LinkStatus {
            online,
            since_ms: self.since_ms,
            outbox,
            last_sync_ms: self.last_sync_ms,
        };
        match self.shared.status.lock() {
            Ok(mut s) => *s = status,
            Err(p) => *p.into_inner() = status,
        }
    }
}
