//! A store's side of the sync protocol, without I/O.
//!
//! Per connection: on `handle_link(up)` the store publishes its retained online status and a
//! hello ack (`resend` + `reply`), so HQ resends its down-log after our `down_idx` and tells us
//! its view of our seqs; the outbox is resent from there. A down-batch becomes an `Ingest`
//! action and is acked only after the caller reported it committed (`handle_ingested`). Lost
//! messages are repaired by gap requests and the retransmit timer; duplicates are harmless
//! because ingest is idempotent. Reactions (release cancelled orders, cover shortfalls, top up
//! HQ's allocation while online) are planned from the replica (`domain::reaction`), so a missed
//! event only delays one.

pub use super::config::{LinkStatus, StoreCursors, StoreSyncConfig};
use super::{AckDue, Carries, GapTimer, Publish, Window};
use crate::domain::reaction::{all_skus, plan_releases, plan_stock, skus_touched};
use crate::domain::{ActorId, Effect, Op, Payload, Replica, Sku, StoreId};
use crate::sync::metrics::SyncMetrics;
use crate::sync::topic::{TopicError, TopicKind, Topics};
use crate::sync::wire::lookup::LookupReply;
use crate::sync::wire::{self, Ack, DownBatch, EpochAck, Message, Status};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

mod cursor;
mod inbound;
pub use cursor::DownCursor;
mod recent;

/// Persisted cursor: last own seq HQ acknowledged.
pub const KEY_HQ_ACKED_SEQ: &str = "hq_acked_seq";
/// Persisted cursor: last down-log index applied and the lease epoch numbering it, packed
/// (`DownCursor::pack`; a value written before epochs is epoch 0).
pub const KEY_DOWN_IDX: &str = "down_idx";
/// Status is republished at most this often when the outbox depth changed.
const STATUS_REFRESH_MS: u64 = 5_000;

/// What the store's caller must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreAction {
    /// Publish (report failure with `handle_deferred`).
    Publish(Publish),
    /// Read own ops with seq above `after`, at most `limit`; answer with `handle_outbox`.
    ReadOutbox { after: u64, limit: usize },
    /// Apply HQ's down-log entries `first_idx..`; answer with `handle_ingested`.
    Ingest { first_idx: u64, ops: Vec<Op> },
    /// Raise a persisted cursor (`KEY_*`). Need not be durable before going on: resuming
    /// from an older cursor only resends.
    Persist { key: &'static str, value: u64 },
    /// Submit a reaction as a local change (its commit comes back via `handle_committed`).
    Submit(Payload),
    /// HQ answered a customer lookup.
    LookupReply(LookupReply),
}

/// A store's sync protocol state.
pub struct StoreProtocol {
    cfg: StoreSyncConfig,
    topics: Topics,
    me: ActorId,
    metrics: Arc<SyncMetrics>,
    online: bool,
    since_ms: u64,
    last_sync_ms: Option<u64>,
    outbox: Window,
    /// Lease epoch whose numbering `down_idx` counts in (0: the single HQ of old).
    down_epoch: u64,
    /// Own ops just committed, published without reading them back from the log.
    recent: recent::Recent,
    /// Highest own seq a commit event reported (`None` before the first, or after events
    /// were missed): the outbox is read up to it, not up to the replica, which holds a
    /// group's ops before its commit; reading those would find nothing yet and read again.
    own_committed: Option<u64>,
    down_idx: u64,
    /// Accepted down-log entries of `down_epoch` after `down_idx` (or after the ingest in
    /// flight).
    pending_down: Option<DownBatch>,
    /// Epoch and last index of the ingest out with the caller.
    ingesting: Option<(u64, u64)>,
    gap: GapTimer,
    ack_due: Option<AckDue>,
    /// When our last hello went out while HQ has not answered it (an HQ ack with `resend`):
    /// a lost hello is sent again on a tick, without waiting for a reconnect.
    hello_unanswered_ms: Option<u64>,
    status_due: bool,
    /// When the status was last published, and the outbox depth it carried.
    status_sent: (u64, u64),
    dirty_skus: BTreeSet<Sku>,
    sweep_all: bool,
    releases_due: bool,
    /// A publish was refused: no new publishes until the next tick.
    stalled: bool,
    queue: VecDeque<StoreAction>,
}

impl StoreProtocol {
    pub fn new(
        cfg: StoreSyncConfig,
        cursors: StoreCursors,
        metrics: Arc<SyncMetrics>,
        now_ms: u64,
    ) -> Result<StoreProtocol, TopicError> {
        let down = DownCursor::unpack(cursors.down_idx);
        Ok(StoreProtocol {
            topics: Topics::new(&cfg.chain)?,
            me: cfg.store.actor(),
            recent: recent::Recent::new(cfg.batch_ops_max),
            own_committed: None,
            cfg,
            metrics,
            online: false,
            since_ms: now_ms,
            last_sync_ms: None,
            outbox: Window::new(cursors.hq_acked, now_ms),
            down_epoch: down.epoch,
            down_idx: down.idx,
            pending_down: None,
            ingesting: None,
            gap: GapTimer::default(),
            ack_due: None,
            hello_unanswered_ms: None,
            status_due: false,
            status_sent: (now_ms, u64::MAX),
            dirty_skus: BTreeSet::new(),
            sweep_all: true,
            releases_due: true,
            stalled: false,
            queue: VecDeque::new(),
        })
    }

    pub fn store(&self) -> &StoreId {
        &self.cfg.store
    }

    /// Topics to subscribe to on every connection.
    pub fn subscriptions(&self) -> Vec<String> {
        vec![
            self.topics.topic(&self.cfg.store, TopicKind::Down),
            self.topics.topic(&self.cfg.store, TopicKind::Ack),
        ]
    }

    /// The retained Last Will: this store's status, offline.
    pub fn will(&self, now_ms: u64) -> (String, Vec<u8>) {
        let offline = wire::encode(&Message::Status(Status {
            online: false,
            version: self.cfg.version.clone(),
            outbox: 0,
            at_ms: now_ms,
        }))
        .unwrap_or_default();
        (
            self.topics.topic(&self.cfg.store, TopicKind::Status),
            offline,
        )
    }

    /// The link to the broker came up (connected and subscribed) or went down.
    pub fn handle_link(&mut self, now_ms: u64, up: bool) {
        self.online = up;
        self.since_ms = now_ms;
        self.stalled = false;
        self.queue.retain(|a| !matches!(a, StoreAction::Publish(_)));
        if up {
            SyncMetrics::add(&self.metrics.connects, 1);
            self.outbox.restart(now_ms);
            self.status_due = true;
            self.ack_due = Some(AckDue::HELLO);
            self.hello_unanswered_ms = Some(now_ms);
            self.sweep_all = true;
        } else {
            self.hello_unanswered_ms = None;
        }
    }

    /// Ops were committed to this store's node (its own or peers'), with their effects.
    pub fn handle_committed(&mut self, ops: &[Op], effects: &[Effect]) {
        self.recent.committed(&self.me, ops);
        for op in ops {
            if op.actor == self.me {
                self.own_committed = Some(self.own_committed.unwrap_or(0).max(op.seq));
            }
            skus_touched(&op.payload, &self.cfg.store, &mut self.dirty_skus);
            // Both call for a state-based plan: releases, and grants of return rights.
            if matches!(
                op.payload,
                Payload::OrderCancel { .. } | Payload::ReturnRightsRequested { .. }
            ) {
                self.releases_due = true;
            }
            // Units a withdrawal gave back (their skus live on the order): top up anew.
            if matches!(op.payload, Payload::ShipWithdraw { .. }) {
                self.sweep_all = true;
            }
        }
        self.note_effects(effects);
    }

    /// Commits were missed (a lagging subscriber): reconsider every sku.
    pub fn handle_lagged(&mut self) {
        self.sweep_all = true;
        self.recent.clear();
        self.own_committed = None;
    }

    fn note_effects(&mut self, effects: &[Effect]) {
        for effect in effects {
            match effect {
                Effect::ReleaseNeeded { store, .. } if *store == self.cfg.store => {
                    self.releases_due = true
                }
                Effect::CoverShortfall { store, sku } if *store == self.cfg.store => {
                    self.dirty_skus.insert(sku.clone());
                }
                _ => {}
            }
        }
    }

    /// The `Ingest` came back: committed with these effects (`Some`), or failed (`None`: HQ
    /// resends it after the gap it leaves or its retransmit timer).
    pub fn handle_ingested(&mut self, effects: Option<&[Effect]>) {
        let Some((epoch, last)) = self.ingesting.take() else {
            return;
        };
        let current = epoch == self.down_epoch;
        let Some(effects) = effects else {
            if current {
                self.pending_down = None;
            }
            return;
        };
        self.note_effects(effects);
        // An ingest of an epoch left behind since applied its ops (skipped when the new
        // holder sends them again) but counts in a numbering the store no longer follows.
        if !current {
            return;
        }
        self.down_idx = last;
        self.persist_down();
        AckDue::merge(&mut self.ack_due, AckDue::default());
    }

    /// The `ReadOutbox { after, .. }` came back with these ops (empty on a failed read).
    pub fn handle_outbox(&mut self, after: u64, ops: Vec<Op>) {
        self.outbox.read_done();
        let ops: Vec<Op> = ops.into_iter().filter(|op| op.seq > after).collect();
        if ops.is_empty() || !self.online {
            return;
        }
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
        let topic = self.topics.topic(&self.cfg.store, TopicKind::Up);
        let (mut offset, mut prev) = (0, after);
        for batch in batches {
            offset += batch.ops;
            let upto = ops[offset - 1].seq;
            self.queue.push_back(StoreAction::Publish(Publish {
                topic: topic.clone(),
                payload: batch.bytes,
                retain: false,
                carries: Carries::Ops {
                    store: self.cfg.store.clone(),
                    after: prev,
                    ops: batch.ops,
                },
            }));
            self.outbox.sent(upto);
            prev = upto;
        }
    }

    /// The transport could not queue `publish`: send it again after the next tick.
    pub fn handle_deferred(&mut self, publish: &Publish) {
        SyncMetrics::add(&self.metrics.publish_deferred, 1);
        self.stalled = true;
        match &publish.carries {
            Carries::Status => self.status_due = true,
            Carries::Ack { due, .. } => AckDue::merge(&mut self.ack_due, *due),
            Carries::Ops { after, .. } => self.outbox.deferred(*after),
            Carries::LookupReply => {}
        }
    }

    /// Housekeeping at `now_ms`: lift a publish stall, resend after silence, say hello again
    /// when HQ did not answer the last one within `retransmit_ms`.
    pub fn handle_tick(&mut self, now_ms: u64) {
        self.stalled = false;
        if let Some(sent) = self.hello_unanswered_ms {
            if self.online && now_ms.saturating_sub(sent) >= self.cfg.retransmit_ms {
                tracing::debug!("no answer to our hello; sending it again");
                AckDue::merge(&mut self.ack_due, AckDue::HELLO);
                self.hello_unanswered_ms = Some(now_ms);
            }
        }
        if self.online && self.outbox.retransmit(now_ms, self.cfg.retransmit_ms) {
            tracing::debug!(
                from = self.outbox.acked() + 1,
                "no ack progress; resending the outbox"
            );
        }
    }

    fn outbox_depth(&self, replica: &Replica) -> u64 {
        replica
            .next_seq()
            .saturating_sub(1)
            .saturating_sub(self.outbox.acked())
    }

    /// The next action, given the replica as it is now; `None` when nothing is due.
    pub fn poll(&mut self, now_ms: u64, replica: &Replica) -> Option<StoreAction> {
        if let Some(a) = self.queue.pop_front() {
            return Some(a);
        }
        if self.ingesting.is_none() {
            if let Some(batch) = self.pending_down.take() {
                let last = batch.first_idx + batch.ops.len() as u64 - 1;
                self.ingesting = Some((self.down_epoch, last));
                return Some(StoreAction::Ingest {
                    first_idx: batch.first_idx,
                    ops: batch.ops,
                });
            }
        }
        self.plan_reactions(replica);
        if let Some(a) = self.queue.pop_front() {
            return Some(a);
        }
        if !self.online || self.stalled {
            return None;
        }
        let outbox = self.outbox_depth(replica);
        let refresh = outbox != self.status_sent.1
            && now_ms.saturating_sub(self.status_sent.0) > STATUS_REFRESH_MS;
        if self.status_due || refresh {
            self.status_due = false;
            self.status_sent = (now_ms, outbox);
            return self.status(now_ms, outbox);
        }
        if let Some(due) = self.ack_due.take() {
            return self.ack(due, replica);
        }
        let last = self
            .own_committed
            .unwrap_or_else(|| replica.next_seq().saturating_sub(1));
        let after = self.outbox.next_read(last, self.cfg.inflight_ops_max)?;
        if let Some(ops) = self.recent.after(after, self.cfg.batch_ops_max) {
            self.handle_outbox(after, ops);
            return self.queue.pop_front();
        }
        Some(StoreAction::ReadOutbox {
            after,
            limit: self.cfg.batch_ops_max,
        })
    }

    /// Releases and shortfall cover always, top-ups only online (`domain::reaction`).
    fn plan_reactions(&mut self, replica: &Replica) {
        if !self.sweep_all && !self.releases_due && self.dirty_skus.is_empty() {
            return;
        }
        let store = &self.cfg.store;
        let policy = self.online.then_some(self.cfg.allocation);
        let skus = if self.sweep_all {
            all_skus(replica.state(), store)
        } else {
            std::mem::take(&mut self.dirty_skus)
        };
        let mut plan = if self.releases_due || self.sweep_all {
            let mut p = plan_releases(replica.state(), store);
            p.extend(crate::domain::returns::plan_grants(replica.state(), store));
            p
        } else {
            Vec::new()
        };
        plan.extend(plan_stock(replica.state(), store, &skus, policy.as_ref()));
        self.sweep_all = false;
        self.releases_due = false;
        self.dirty_skus.clear();
        self.queue.extend(plan.into_iter().map(StoreAction::Submit));
    }

    fn status(&self, now_ms: u64, outbox: u64) -> Option<StoreAction> {
        let status = Message::Status(Status {
            online: true,
            version: self.cfg.version.clone(),
            outbox,
            at_ms: now_ms,
        });
        let payload = wire::encode(&status).ok()?;
        Some(StoreAction::Publish(Publish {
            topic: self.topics.topic(&self.cfg.store, TopicKind::Status),
            payload,
            retain: true,
            carries: Carries::Status,
        }))
    }

    fn ack(&self, due: AckDue, replica: &Replica) -> Option<StoreAction> {
        let ack = Ack {
            from: self.me.clone(),
            vv: replica.version().entries(),
            down_idx: self.down_idx,
            resend: due.resend,
            reply: due.reply,
        };
        // Epoch 0 keeps the old message, so an HQ of old still understands its stores.
        let ack = match self.down_epoch {
            0 => Message::Ack(ack),
            epoch => Message::EpochAck(EpochAck { epoch, ack }),
        };
        let payload = wire::encode(&ack).ok()?;
        Some(StoreAction::Publish(Publish {
            topic: self.topics.topic(&self.cfg.store, TopicKind::Ack),
            payload,
            retain: false,
            carries: Carries::Ack {
                store: self.cfg.store.clone(),
                due,
            },
        }))
    }

    /// The link as the terminal shows it.
    pub fn link_status(&self, replica: &Replica) -> LinkStatus {
        LinkStatus {
            online: self.online,
            since_ms: self.since_ms,
            outbox: self.outbox_depth(replica),
            last_sync_ms: self.last_sync_ms,
        }
    }

    /// Where a restart resumes from (what `Persist` actions have asked to record so far).
    pub fn cursors(&self) -> StoreCursors {
        StoreCursors {
            hq_acked: self.outbox.acked(),
            down_idx: self.down_cursor().pack(),
        }
    }

    fn down_cursor(&self) -> DownCursor {
        DownCursor {
            epoch: self.down_epoch,
            idx: self.down_idx,
        }
    }

    fn persist_down(&mut self) {
        self.queue.push_back(StoreAction::Persist {
            key: KEY_DOWN_IDX,
            value: self.down_cursor().pack(),
        });
    }
}

#[cfg(test)]
mod tests;
