//! The store side of `fanin`'s engine run: many stores' pre-encoded up-batches published over
//! one real MQTT link (`sync::link`, which reconnects), each store's outbox kept as a real
//! store keeps it (`protocol::Window`, the store protocol's defaults for window and
//! retransmit): at most `inflight_ops_max` ops published and not acked, everything after
//! HQ's ack published again when HQ asks (`resend`, sent by HQ on every connect), when the
//! link comes back, or when no ack progress came for `retransmit_ms`. A publish the link
//! cannot queue is deferred to the next tick, as the store engine does. Batches go out
//! round-robin (one batch of every store, then the next). Done when HQ acked every op.
//!
//! The stores neither send a status nor ask for down-batches: HQ's down streaming to them is
//! not part of the figure (its routing writes are).

use crate::domain::StoreId;
use crate::store::now_ms;
use crate::sync::link::{run_link, LinkConfig, LinkEvent};
use crate::sync::protocol::Window;
use crate::sync::topic::{TopicKind, Topics};
use crate::sync::wire::{self, Encoded, Message};
use crate::sync::StoreSyncConfig;
use rumqttc::{AsyncClient, QoS};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Housekeeping tick (deferred publishes, retransmits), as the store engine's.
const TICK_MS: u64 = 50;
/// Link events buffered between the MQTT task and the fleet.
const EVENTS_CAP: usize = 4_096;

/// One store's outbox: its up-batches and how far HQ acknowledged them.
struct Outbox {
    topic: String,
    batches: Vec<Encoded>,
    /// Last seq in each batch.
    lasts: Vec<u64>,
    window: Window,
    /// Highest seq ever published (a publish at or below it is a resend).
    high: u64,
}

impl Outbox {
    fn last(&self) -> u64 {
        self.lasts.last().copied().unwrap_or(0)
    }

    fn done(&self) -> bool {
        self.window.acked() >= self.last()
    }
}

/// What the fleet counted while it ran.
#[derive(Debug, Default, Clone, Copy)]
pub struct FleetRun {
    /// Up-batches published again (after a resend request, a reconnect or a retransmit).
    pub resent_batches: u64,
    /// Connections of the stores' link (1 when it never dropped).
    pub connects: u64,
}

/// Many stores' outboxes over one link.
pub struct Fleet {
    topics: Topics,
    outboxes: Vec<Outbox>,
    by_store: HashMap<StoreId, usize>,
    inflight_ops_max: u64,
    retransmit_ms: u64,
    keepalive_s: u64,
    client: Option<AsyncClient>,
    /// A publish was refused: none until the next tick.
    stalled: bool,
    counted: FleetRun,
}

impl Fleet {
    /// `batches[i]` are store `stores[i]`'s up-batches with the last seq of each.
    pub fn new(
        chain: &str,
        stores: &[StoreId],
        batches: Vec<Vec<(Encoded, u64)>>,
    ) -> anyhow::Result<Fleet> {
        let topics = Topics::new(chain)?;
        let Some(first) = stores.first() else {
            anyhow::bail!("a fleet needs a store");
        };
        // A real store's window, retransmit and keep-alive.
        let defaults = StoreSyncConfig::new(chain, first.clone(), "", 0);
        let now = now_ms();
        let outboxes = stores
            .iter()
            .zip(batches)
            .map(|(store, batches)| {
                let (batches, lasts) = batches.into_iter().unzip();
                Outbox {
                    topic: topics.topic(store, TopicKind::Up),
                    batches,
                    lasts,
                    window: Window::new(0, now),
                    high: 0,
                }
            })
            .collect();
        let by_store = stores.iter().cloned().zip(0..).collect();
        Ok(Fleet {
            topics,
            outboxes,
            by_store,
            inflight_ops_max: defaults.inflight_ops_max,
            retransmit_ms: defaults.retransmit_ms,
            keepalive_s: defaults.keepalive_s,
            client: None,
            stalled: false,
            counted: FleetRun::default(),
        })
    }

    /// Connect to the broker on `port` and run until HQ acked every store's last op, or
    /// fail after `within`.
    pub async fn run(mut self, port: u16, within: Duration) -> anyhow::Result<FleetRun> {
        let (shutdown_tx, shutdown) = watch::channel(false);
        let (_wanted_tx, wanted) = watch::channel(true);
        let (tx, mut events) = mpsc::channel(EVENTS_CAP);
        let cfg = LinkConfig {
            host: "127.0.0.1".to_string(),
            port,
            client_id: "fanin-stores".to_string(),
            keepalive_s: self.keepalive_s,
            will: None,
            subscriptions: vec![self.topics.wildcard(TopicKind::Ack)],
        };
        let link = tokio::spawn(run_link(cfg, wanted, shutdown, tx));
        let deadline = Instant::now() + within;
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let outcome = loop {
            if self.outboxes.iter().all(Outbox::done) {
                break Ok(self.counted);
            }
            if Instant::now() >= deadline {
                let acked: u64 = self.outboxes.iter().map(|o| o.window.acked()).sum();
                break Err(anyhow::anyhow!(
                    "timed out after {within:?}: HQ acked {acked} of the stores' ops"
                ));
            }
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => {
                        self.on_link(ev);
                        while let Ok(ev) = events.try_recv() {
                            self.on_link(ev);
                        }
                    }
                    None => break Err(anyhow::anyhow!("the stores' link ended")),
                },
                _ = tick.tick() => self.on_tick(),
            }
            self.publish_due();
        };
        let _ = shutdown_tx.send(true);
        let _ = link.await;
        outcome
    }

    fn on_link(&mut self, ev: LinkEvent) {
        let now = now_ms();
        match ev {
            LinkEvent::Connected(client) => {
                self.counted.connects += 1;
                self.client = Some(client);
                self.stalled = false;
                for o in &mut self.outboxes {
                    o.window.restart(now);
                }
            }
            LinkEvent::Disconnected => self.client = None,
            LinkEvent::Publish { topic, payload } => self.on_ack(now, &topic, &payload),
        }
    }

    /// HQ's ack of a store's seq (HQ sends it after the commit).
    fn on_ack(&mut self, now: u64, topic: &str, payload: &[u8]) {
        let Ok((store, TopicKind::Ack)) = self.topics.parse(topic) else {
            return;
        };
        let Ok(Message::Ack(ack)) = wire::decode(payload) else {
            return;
        };
        if !ack.from.is_hq() {
            return;
        }
        let Some(&i) = self.by_store.get(&store) else {
            return;
        };
        let seq = ack.vv.get(&store.actor()).copied().unwrap_or(0);
        self.outboxes[i].window.on_ack(seq, ack.resend, now);
    }

    fn on_tick(&mut self) {
        let now = now_ms();
        self.stalled = false;
        for o in &mut self.outboxes {
            o.window.retransmit(now, self.retransmit_ms);
        }
    }

    /// Publish what every window has room for, one batch per store per pass.
    fn publish_due(&mut self) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let mut any = true;
        while any && !self.stalled {
            any = false;
            for o in &mut self.outboxes {
                let Some(after) = o.window.next_read(o.last(), self.inflight_ops_max) else {
                    continue;
                };
                o.window.read_done();
                let Some(k) = o.lasts.iter().position(|&last| last > after) else {
                    continue;
                };
                let bytes = o.batches[k].bytes.clone();
                if client
                    .try_publish(o.topic.clone(), QoS::AtLeastOnce, false, bytes)
                    .is_err()
                {
                    o.window.deferred(after);
                    self.stalled = true;
                    break;
                }
                let last = o.lasts[k];
                if last <= o.high {
                    self.counted.resent_batches += 1;
                }
                o.high = o.high.max(last);
                o.window.sent(last);
                any = true;
            }
        }
    }
}
