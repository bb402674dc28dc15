//! `fanin` through HQ's sync engine: the same stores' up-batches, wire-encoded as each store
//! publishes them, sent through mosquitto in round-robin order (one batch of every store,
//! then the next of every store) to a second HQ node running the real `spawn_hq_sync`. So the
//! figure carries what the direct ingest of `fanin` leaves out: the broker hop, decoding and
//! checking, the engine's rounds (how many stores' batches share one commit) and HQ's routing
//! of every op it took. The stores keep their outboxes as real stores do (`fanin_stores`:
//! window, resend from HQ's ack, retransmit), so a dropped link only delays the run. Timed
//! from the first publish to HQ's ack of every store's last op.

use super::fanin_stores::Fleet;
use super::mosquitto::Mosquitto;
use crate::domain::{ActorId, Op, StoreId};
use crate::store::Node;
use crate::sync::{spawn_hq_sync, wire, HqSyncConfig};
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
    /// Times HQ's link connected (1: it never dropped).
    pub hq_connects: u64,
    /// Times the stores' link connected.
    pub store_connects: u64,
    /// Up-batches the stores published again.
    pub resent_batches: u64,
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
    let mut batches = Vec::with_capacity(stores.len());
    for (store, ops) in stores.iter().zip(streams) {
        let mut end = 0;
        let mut with_last = Vec::new();
        for encoded in wire::encode_up(store, ops, batch_ops)? {
            end += encoded.ops;
            let last = ops.get(end.wrapping_sub(1)).map_or(0, |op| op.seq);
            with_last.push((encoded, last));
        }
        batches.push(with_last);
    }
    let fleet = Fleet::new(CHAIN, &stores, batches)?;
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
    super::chain::wait_for(Duration::from_secs(30), "HQ's engine subscribes", || {
        metrics.connects.load(Ordering::Relaxed) > 0
    })
    .await?;
    let groups_before = hq.writer_stats().groups;
    let started = Instant::now();
    let fleet = fleet
        .run(broker.port, Duration::from_secs(INGEST_TIMEOUT_S))
        .await?;
    let elapsed = started.elapsed();
    let groups = hq.writer_stats().groups - groups_before;
    let holds_all = hq.read(|r| {
        lasts
            .iter()
            .all(|(a, last)| r.version().contiguous(a) >= *last)
    });
    anyhow::ensure!(holds_all, "HQ acked ops it does not hold");
    let hq_connects = metrics.connects.load(Ordering::Relaxed);
    let _ = shutdown.send(true);
    sync.join().await;
    Ok(EngineRun {
        ops,
        elapsed,
        groups,
        hq_connects,
        store_connects: fleet.connects,
        resent_batches: fleet.resent_batches,
    })
}
