//! HQ engine, outgoing half: routing applied ops into down-logs, and publishing acks and
//! down-batches without ever waiting on the MQTT request queue.

use super::{HqEngine, Peer, RouteDone, StoreLink, ROUTE_OPS_MAX};
use crate::domain::{ActorId, Op, StoreId};
use crate::store::{decode_op, Node};
use crate::sync::metrics::SyncMetrics;
use crate::sync::persist;
use crate::sync::topic::TopicKind;
use crate::sync::wire::{self, Ack, Message};
use rumqttc::QoS;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

impl HqEngine {
    /// Route every op HQ holds contiguously and has not routed yet, one step per actor, and
    /// record the routing in one write that runs in the background: the engine goes on
    /// ingesting while it commits (the writer may even group both into one commit), and
    /// `routed` reports the outcome. One routing write is in flight at a time.
    pub(super) async fn route(&mut self, done: &mpsc::Sender<RouteDone>) {
        if !self.route_due || self.routing.is_some() {
            return;
        }
        self.route_due = false;
        let targets: Vec<(ActorId, u64)> = self.node.read(|r| {
            r.version()
                .entries()
                .into_iter()
                .filter(|(a, seq)| *seq > self.routed.get(a).copied().unwrap_or(0))
                .collect()
        });
        let mut actions = Vec::new();
        let mut cursors = Vec::new();
        for (actor, contiguous) in targets {
            let after = self.routed.get(&actor).copied().unwrap_or(0);
            let who = actor.clone();
            let ops = match self
                .node
                .query(move |c| Node::ops_since(c, &who, after, ROUTE_OPS_MAX))
                .await
            {
                Ok(ops) => ops,
                Err(e) => {
                    tracing::error!(actor = %actor, error = %e, "cannot read ops to route");
                    self.route_due = true;
                    break;
                }
            };
            let mut last = after;
            for op in ops.iter().take_while(|op| op.seq <= contiguous) {
                if op.seq != last + 1 {
                    break;
                }
                actions.extend(self.router.route(op));
                last = op.seq;
            }
            if last == after {
                continue;
            }
            if last < contiguous {
                self.route_due = true;
            }
            cursors.push((actor, last));
        }
        if cursors.is_empty() {
            return;
        }
        self.routing = Some(cursors.clone());
        let (node, done) = (self.node.clone(), done.clone());
        tokio::spawn(async move {
            let result = node
                .write(move |tx| persist::apply_routes(tx, &actions, &cursors))
                .await;
            let _ = done.send(result).await;
        });
    }

    /// The routing write finished: advance the cursors, or reload and route again.
    pub(super) async fn routed(&mut self, result: RouteDone) {
        let Some(cursors) = self.routing.take() else {
            return;
        };
        match result {
            Ok(lasts) => {
                self.routed.extend(cursors);
                for (store, idx) in lasts {
                    if let Some(peer) = self.peers.get_mut(&store) {
                        peer.down_last = idx;
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot record routing; retrying");
                self.load().await;
                self.route_due = true;
            }
        }
    }

    fn publish(&self, topic: String, bytes: Vec<u8>) -> bool {
        let Some(client) = &self.client else {
            return false;
        };
        let len = bytes.len() as u64;
        match client.try_publish(topic, QoS::AtLeastOnce, false, bytes) {
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

    pub(super) async fn pump(&mut self) {
        if self.client.is_none() {
            return;
        }
        let stores: Vec<StoreId> = self.peers.keys().cloned().collect();
        for store in stores {
            self.pump_ack(&store);
            self.pump_down(&store).await;
        }
    }

    fn pump_ack(&mut self, store: &StoreId) {
        let Some(due) = self.peers.get(store).and_then(|p| p.ack_due) else {
            return;
        };
        let actor = store.actor();
        let seq = self.node.read(|r| r.version().contiguous(&actor));
        let ack = Message::Ack(Ack {
            from: ActorId::hq(),
            vv: BTreeMap::from([(actor, seq)]),
            down_idx: 0,
            resend: due.resend,
            reply: due.reply,
        });
        let Ok(bytes) = wire::encode(&ack) else {
            return;
        };
        if self.publish(self.topics.topic(store, TopicKind::Ack), bytes) {
            SyncMetrics::add(&self.metrics.acks_sent, 1);
            if let Some(peer) = self.peers.get_mut(store) {
                peer.ack_due = None;
            }
        }
    }

    /// Stream the store's down-log from what it acked, within the in-flight window.
    async fn pump_down(&mut self, store: &StoreId) {
        let (retransmit, window, batch_max) = (
            Duration::from_millis(self.cfg.retransmit_ms),
            self.cfg.inflight_ops_max,
            self.cfg.batch_ops_max,
        );
        loop {
            let Some(peer) = self.peers.get_mut(store) else {
                return;
            };
            if !peer.online || !peer.synced {
                return;
            }
            if peer.down_sent > peer.down_acked && peer.last_progress.elapsed() > retransmit {
                tracing::debug!(store = %store, from = peer.down_acked + 1, "no ack progress; resending the down-log");
                peer.down_sent = peer.down_acked;
                peer.last_progress = Instant::now();
            }
            if peer.down_sent >= peer.down_last || peer.down_sent - peer.down_acked >= window {
                return;
            }
            let after = peer.down_sent;
            let who = store.clone();
            let rows = match self
                .node
                .query(move |c| persist::downlog_read(c, &who, after, batch_max))
                .await
            {
                Ok(rows) if !rows.is_empty() => rows,
                Ok(_) => return,
                Err(e) => {
                    tracing::error!(store = %store, error = %e, "cannot read the down-log");
                    return;
                }
            };
            let ops = contiguous_ops(store, after, rows);
            if ops.is_empty() {
                return;
            }
            if !self.publish_down(store, after + 1, &ops) {
                return;
            }
        }
    }

    /// Publish entries `first_idx..` in bounded batches; false when the queue was full.
    fn publish_down(&mut self, store: &StoreId, first_idx: u64, ops: &[Op]) -> bool {
        let batches = match wire::encode_down(first_idx, ops, self.cfg.batch_ops_max) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(store = %store, error = %e, "cannot encode the down-log");
                return false;
            }
        };
        let topic = self.topics.topic(store, TopicKind::Down);
        for batch in batches {
            if !self.publish(topic.clone(), batch.bytes) {
                return false;
            }
            SyncMetrics::add(&self.metrics.batches_sent, 1);
            SyncMetrics::add(&self.metrics.ops_sent, batch.ops as u64);
            if let Some(peer) = self.peers.get_mut(store) {
                peer.down_sent += batch.ops as u64;
            }
        }
        true
    }

    /// Publish the per-store view for the handle and the outbox gauge.
    pub(super) fn snapshot(&self) {
        let links: Vec<StoreLink> = self
            .peers
            .iter()
            .map(|(store, p)| link_of(store, p))
            .collect();
        let pending: u64 = links.iter().map(|l| l.down_pending).sum();
        self.metrics.outbox.store(pending, Ordering::Relaxed);
        match self.shared.links.lock() {
            Ok(mut l) => *l = links,
            Err(p) => *p.into_inner() = links,
        }
    }
}

fn link_of(store: &StoreId, p: &Peer) -> StoreLink {
    StoreLink {
        store: store.clone(),
        online: p.online,
        last_seen_ms: p.last_seen_ms,
        outbox: p.outbox,
        acked_vv: p.acked_vv.clone(),
        down_pending: p.down_last.saturating_sub(p.down_acked),
        down_acked: p.down_acked,
        version: p.version.clone(),
    }
}

/// Decode rows `after+1, after+2, ...`, stopping at the first hole or unreadable body.
fn contiguous_ops(store: &StoreId, after: u64, rows: Vec<(u64, Vec<u8>)>) -> Vec<Op> {
    let mut ops = Vec::with_capacity(rows.len());
    for (idx, body) in rows {
        if idx != after + 1 + ops.len() as u64 {
            tracing::error!(store = %store, idx, "hole in the down-log");
            break;
        }
        match decode_op(&body) {
            Ok(op) => ops.push(op),
            Err(e) => {
                tracing::error!(store = %store, idx, error = %e, "unreadable op in the down-log");
                break;
            }
        }
    }
    ops
}
