//! `fanin` through HQ's sync engine: the same stores' up-batches, wire-encoded as each store
//! publishes them, sent through mosquitto in round-robin order (one batch of every store,
//! then the next of every store) to a second HQ node running the real `spawn_hq_sync`. So the
//! figure carries what the direct ingest of `fanin` leaves out: the broker hop, decoding and
//! checking, the engine's rounds (how many stores' batches share one commit) and HQ's routing
//! of every op it took. Timed from the first publish to HQ holding every store's last op.

use super::chain::wait_for;
use super::mosquitto::Mosquitto;
use crate::domain::{ActorId, Op, StoreId};
use crate::store::Node;
use crate::sync::topic::{TopicKind, Topics};
use crate::sync::{spawn_hq_sync, wire, HqSyncConfig};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Chain name in the topics.
const CHAIN: &str = "fanin";
/// Longest the whole ingest may take before the run is abandoned.
const INGEST_TIMEOUT_S: u64 = 600;

/// What the engine run measured.
pub struct EngineRun {
    pub ops: usize,
    pub elapsed: Duration,
    pub groups: u64,
}

/// Ingest `streams` (store `i`'s workload, after `seed`) into a fresh HQ at `path` through
/// mosquitto and HQ's sync engine, `batch_ops` per up-batch.
pub async fn run(
    path: &Path,
    seed: &[Op],
    stores: Vec<StoreId>,
    streams: &[Vec<Op>],
    batch_ops: usize,
) -> anyhow::Result<EngineRun> {
    let broker = Mosquitto::start()?;
    let hq = Node::open(path, ActorId::hq())?;
    for chunk in seed.chunks(5_000) {
        let done = hq.ingest(chunk.to_vec()).await?;
        anyhow::ensure!(done.rejected.is_empty(), "seed refused");
    }
    let topics = Topics::new(CHAIN)?;
    let mut messages = Vec::new();
    let batches: Vec<Vec<wire::Encoded>> = stores
        .iter()
        .zip(streams)
        .map(|(store, ops)| wire::encode_up(store, ops, batch_ops))
        .collect::<Result<_, _>>()?;
    let rounds = batches.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..rounds {
        for (store, encoded) in stores.iter().zip(&batches) {
            if let Some(b) = encoded.get(k) {
                messages.push((topics.topic(store, TopicKind::Up), b.bytes.clone()));
            }
        }
    }
    let lasts: Vec<(ActorId, u64)> = stores
        .iter()
        .zip(streams)
        .filter_map(|(s, ops)| Some((s.actor(), ops.last()?.seq)))
        .collect();
    let ops: usize = streams.iter().map(Vec::len).sum();

    let (shutdown, rx) = watch::channel(false);
    let cfg = HqSyncConfig::new(CHAIN, stores, "127.0.0.1", broker.port);
    let sync = spawn_hq_sync(hq.clone(), cfg, rx);
    let metrics = sync.metrics();
    wait_for(Duration::from_secs(30), "HQ's engine subscribes", || {
        metrics.connects.load(Ordering::Relaxed) > 0
    })
    .await?;
    let client = publisher(broker.port).await?;
    let groups_before = hq.writer_stats().groups;
    let started = Instant::now();
    for (topic, payload) in messages {
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await?;
    }
    let holds_all = {
        let hq = hq.clone();
        move || {
            hq.read(|r| {
                lasts
                    .iter()
                    .all(|(a, last)| r.version().contiguous(a) >= *last)
            })
        }
    };
    wait_for(
        Duration::from_secs(INGEST_TIMEOUT_S),
        "HQ's engine holds every store's ops",
        holds_all,
    )
    .await?;
    let elapsed = started.elapsed();
    let groups = hq.writer_stats().groups - groups_before;
    let _ = client.disconnect().await;
    let _ = shutdown.send(true);
    sync.join().await;
    Ok(EngineRun {
        ops,
        elapsed,
        groups,
    })
}

/// A connected publishing client, its event loop on a task of its own.
async fn publisher(port: u16) -> anyhow::Result<AsyncClient> {
    let mut opts = MqttOptions::new("fanin-stores", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready).await??;
    Ok(client)
}
