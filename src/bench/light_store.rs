//! A light store for `bench chain --light`: the real store sync protocol
//! (`protocol::store::StoreProtocol`) over a real MQTT link, with its replica and its own ops
//! in memory instead of a `Node` on SQLite. It speaks the wire exactly as a store does
//! (up-batches of its ops, acks, down-batches with epochs, hellos, resends of what HQ has not
//! acked) but costs no writer thread and no fsync, so hundreds of them leave the cores to HQ.
//! Nothing survives the process: cursors are kept in memory (`Persist` is a no-op).

use crate::domain::{Applied, DomainError, Effect, Op, Payload, Replica};
use crate::store::now_ms;
use crate::sync::link::{run_link, LinkConfig, LinkEvent};
use crate::sync::metrics::SyncMetrics;
use crate::sync::protocol::store::{StoreAction, StoreCursors, StoreProtocol};
use crate::sync::protocol::Publish;
use crate::sync::StoreSyncConfig;
use rumqttc::{AsyncClient, QoS};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The engine's housekeeping tick, as the store engine's.
const TICK_MS: u64 = 50;
/// Link events and local commits buffered for the engine.
const EVENTS_CAP: usize = 256;

/// What the store holds: its replica and its own ops in seq order (`log[i].seq == i + 1`).
struct Held {
    replica: Replica,
    log: Vec<Op>,
    /// Own ops HQ has not acknowledged, as the engine last saw it.
    outbox: u64,
}

/// A running light store (cheap to clone).
#[derive(Clone)]
pub struct LightStore {
    held: Arc<Mutex<Held>>,
    committed: mpsc::Sender<(Vec<Op>, Vec<Effect>)>,
}

impl LightStore {
    /// Start the store's engine on the broker in `cfg`; it runs until `shutdown` turns true.
    pub fn spawn(
        cfg: StoreSyncConfig,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<(LightStore, JoinHandle<()>)> {
        let held = Arc::new(Mutex::new(Held {
            replica: Replica::new(cfg.store.actor()),
            log: Vec::new(),
            outbox: 0,
        }));
        let metrics = Arc::new(SyncMetrics::new());
        let proto = StoreProtocol::new(cfg.clone(), StoreCursors::default(), metrics, now_ms())?;
        let (link_tx, link_rx) = mpsc::channel(EVENTS_CAP);
        let link_cfg = LinkConfig {
            host: cfg.broker_host.clone(),
            port: cfg.broker_port,
            client_id: cfg.client_id.clone(),
            keepalive_s: cfg.keepalive_s,
            will: Some(proto.will(now_ms())),
            subscriptions: proto.subscriptions(),
        };
        let (wanted_tx, wanted_rx) = watch::channel(true);
        let link = tokio::spawn(run_link(link_cfg, wanted_rx, shutdown.clone(), link_tx));
        let (committed, committed_rx) = mpsc::channel(EVENTS_CAP);
        let engine = Engine {
            held: held.clone(),
            proto,
            client: None,
        };
        let task = tokio::spawn(async move {
            engine.run(link_rx, committed_rx, shutdown).await;
            drop(wanted_tx);
            let _ = link.await;
        });
        Ok((LightStore { held, committed }, task))
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Issue local changes, all or nothing; the engine publishes them.
    pub async fn submit(&self, payloads: Vec<Payload>) -> anyhow::Result<Vec<Op>> {
        let (ops, effects) = {
            let mut held = self.held();
            let (ops, effects) = match <[Payload; 1]>::try_from(payloads) {
                // One change needs no draft: `prepare` checks before it applies.
                Ok([p]) => {
                    let (op, eff) = held.replica.prepare(now_ms(), p)?;
                    (vec![op], eff)
                }
                Err(payloads) => prepare_all(&held.replica, payloads).map(|(r, o, e)| {
                    held.replica = r;
                    (o, e)
                })?,
            };
            held.log.extend(ops.iter().cloned());
            (ops, effects)
        };
        self.committed.send((ops.clone(), effects)).await?;
        Ok(ops)
    }

    /// Read the replica.
    pub fn read<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        f(&self.held().replica)
    }

    /// Own ops HQ has not acknowledged yet.
    pub fn outbox(&self) -> u64 {
        self.held().outbox
    }

    /// Own ops with seq above `after`, at most `limit`.
    pub fn own_ops(&self, after: u64, limit: usize) -> Vec<Op> {
        own_slice(&self.held().log, after, limit)
    }
}

/// Several changes, all or nothing: the replica after them, their ops and effects.
fn prepare_all(
    replica: &Replica,
    payloads: Vec<Payload>,
) -> Result<(Replica, Vec<Op>, Vec<Effect>), DomainError> {
    let mut draft = replica.clone();
    let mut ops = Vec::new();
    let mut effects = Vec::new();
    for p in payloads {
        let (op, eff) = draft.prepare(now_ms(), p)?;
        ops.push(op);
        effects.extend(eff);
    }
    Ok((draft, ops, effects))
}

fn own_slice(log: &[Op], after: u64, limit: usize) -> Vec<Op> {
    let from = usize::try_from(after).unwrap_or(usize::MAX).min(log.len());
    log[from..].iter().take(limit).cloned().collect()
}

struct Engine {
    held: Arc<Mutex<Held>>,
    proto: StoreProtocol,
    client: Option<AsyncClient>,
}

impl Engine {
    async fn run(
        mut self,
        mut link: mpsc::Receiver<LinkEvent>,
        mut committed: mpsc::Receiver<(Vec<Op>, Vec<Effect>)>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                ev = link.recv() => match ev {
                    Some(ev) => {
                        self.on_link(ev);
                        while let Ok(ev) = link.try_recv() {
                            self.on_link(ev);
                        }
                    }
                    None => break,
                },
                Some((ops, effects)) = committed.recv() => {
                    self.proto.handle_committed(&ops, &effects);
                    while let Ok((ops, effects)) = committed.try_recv() {
                        self.proto.handle_committed(&ops, &effects);
                    }
                }
                _ = tick.tick() => self.proto.handle_tick(now_ms()),
            }
            self.carry_out();
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            held.outbox = self.proto.link_status(&held.replica).outbox;
        }
    }

    fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Connected(client) => {
                self.client = Some(client);
                self.proto.handle_link(now_ms(), true);
            }
            LinkEvent::Disconnected => {
                self.client = None;
                self.proto.handle_link(now_ms(), false);
            }
            LinkEvent::Publish { topic, payload } => {
                self.proto.handle_message(now_ms(), &topic, &payload)
            }
        }
    }

    /// Carry out every action the protocol has for now, as the store engine does, with the
    /// replica in memory.
    fn carry_out(&mut self) {
        loop {
            let now = now_ms();
            let action = {
                let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                self.proto.poll(now, &held.replica)
            };
            let Some(action) = action else { return };
            match action {
                StoreAction::Publish(p) => self.publish(p),
                StoreAction::ReadOutbox { after, limit } => {
                    let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                    let ops = own_slice(&held.log, after, limit);
                    drop(held);
                    self.proto.handle_outbox(after, ops);
                }
                StoreAction::Ingest { ops, .. } => {
                    let (applied, effects) = self.ingest(ops);
                    self.proto.handle_ingested(Some(&effects));
                    self.proto.handle_committed(&applied, &effects);
                }
                StoreAction::Persist { .. } | StoreAction::LookupReply(_) => {}
                StoreAction::Submit(payload) => {
                    let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                    let prepared = held.replica.prepare(now, payload);
                    if let Ok((op, effects)) = prepared {
                        held.log.push(op.clone());
                        drop(held);
                        self.proto.handle_committed(&[op], &effects);
                    }
                }
            }
        }
    }

    /// Apply HQ's ops to the replica, each on its own as `Node::ingest` does (a refused op is
    /// logged and skipped): the ops new to it and their effects.
    fn ingest(&mut self, ops: Vec<Op>) -> (Vec<Op>, Vec<Effect>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mut applied = Vec::new();
        let mut effects = Vec::new();
        for op in ops {
            match held.replica.apply(&op) {
                Ok(Applied::New(eff)) => {
                    effects.extend(eff);
                    applied.push(op);
                }
                Ok(Applied::Duplicate) => {}
                Err(e) => {
                    tracing::warn!(actor = %op.actor, seq = op.seq, error = %e, "light store refused an op from HQ")
                }
            }
        }
        (applied, effects)
    }

    fn publish(&mut self, p: Publish) {
        let queued = self.client.as_ref().is_some_and(|c| {
            c.try_publish(
                p.topic.clone(),
                QoS::AtLeastOnce,
                p.retain,
                p.payload.clone(),
            )
            .is_ok()
        });
        if !queued {
            self.proto.handle_deferred(&p);
        }
    }
}
