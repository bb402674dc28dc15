//! `fanin`: one HQ node ingesting the up-batches of many stores at once. Each store's stream
//! (its till sales, carts and pickup orders, as `workload::Mix` makes them) is cut into
//! up-batches; one task per store hands its batches to HQ's `ingest` one after the other, as
//! the HQ protocol issues one `Ingest` per store and round, so the batches of all stores
//! interleave as they arrive and the writer groups them. Baseline: the same op rows, in the
//! order HQ logged them, inserted with raw batched rusqlite, as many per transaction as our
//! group commits carried on average (the same fsync count). Then the same streams go through
//! mosquitto and HQ's sync engine (`fanin_engine`): `engine_ops_per_s`.

use super::proc::named_thread_cpu_s;
use super::raw::{self, Row};
use super::report::{percentile, Report};
use super::scratch::Scratch;
use super::workload::{catalog_ops, prepared, sku, Mix, UNITS_PER_SKU};
use super::{fanin_engine, Options};
use crate::domain::op::ReceiveReason;
use crate::domain::{ActorId, Op, Payload, Replica, StoreId};
use crate::store::Node;
use std::time::Instant;

/// Name of the writer thread as the kernel shows it (15 bytes at most).
const WRITER_THREAD: &str = "storenode-write";
/// Ops per up-batch: what a busy store's few commits publish together.
const UP_BATCH_OPS: usize = 32;
/// Ops per seeding ingest.
const SEED_CHUNK_OPS: usize = 5_000;

struct Params {
    stores: usize,
    skus: usize,
    ops_per_store: usize,
}

fn params(opts: &Options) -> Params {
    if opts.quick {
        Params {
            stores: 10,
            skus: 200,
            ops_per_store: 320,
        }
    } else {
        Params {
            stores: 100,
            skus: 1_000,
            ops_per_store: 2_000,
        }
    }
}

fn store_id(i: usize) -> StoreId {
    StoreId::parse(&format!("fanin-{i:03}"))
        .unwrap_or_else(|_| unreachable!("generated store id is valid"))
}

/// Store `i`'s stock receipts and then its workload, valid against its own replica.
fn store_ops(i: usize, catalog: &[Op], p: &Params) -> (Vec<Op>, Vec<Op>) {
    let store = store_id(i);
    let mut replica = Replica::new(store.actor());
    for op in catalog {
        let _ = replica.apply(op);
    }
    let stock: Vec<Op> = (0..p.skus)
        .map(|n| {
            let payload = Payload::StockReceive {
                store: store.clone(),
                sku: sku(n),
                qty: UNITS_PER_SKU,
                reason: ReceiveReason::Delivery,
            };
            prepared(&mut replica, payload)
        })
        .collect();
    // Task numbers unique across stores keep sale, order and customer ids unique at HQ.
    let tills = 4;
    let mut mixes: Vec<Mix> = (0..tills)
        .map(|t| Mix::at(store.clone(), i * tills + t, p.skus))
        .collect();
    let work = (0..p.ops_per_store)
        .map(|n| {
            let payload = mixes[n % tills].next(replica.state());
            prepared(&mut replica, payload)
        })
        .collect();
    (stock, work)
}

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    let p = params(opts);
    let scratch = Scratch::new("fanin")?;
    let mut report = Report::new("fanin", "ops/s");
    let catalog = catalog_ops(p.skus);
    let mut seed = catalog.clone();
    let mut streams = Vec::with_capacity(p.stores);
    for i in 0..p.stores {
        let (stock, work) = store_ops(i, &catalog, &p);
        seed.extend(stock);
        streams.push(work);
    }
    let engine_streams = streams.clone();
    let hq = Node::open(&scratch.file("hq.db"), ActorId::hq())?;
    for chunk in seed.chunks(SEED_CHUNK_OPS) {
        let done = hq.ingest(chunk.to_vec()).await?;
        anyhow::ensure!(done.rejected.is_empty(), "seed refused");
    }
    let logged_before = hq.query(Node::op_count).await?;

    let cpu_before = named_thread_cpu_s(WRITER_THREAD);
    let groups_before = hq.writer_stats();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for ops in streams {
        let hq = hq.clone();
        set.spawn(async move {
            let mut applied = 0usize;
            for batch in ops.chunks(UP_BATCH_OPS) {
                let done = hq.ingest(batch.to_vec()).await?;
                anyhow::ensure!(done.rejected.is_empty(), "HQ refused a store's op");
                applied += done.applied;
            }
            Ok::<_, anyhow::Error>(applied)
        });
    }
    let mut applied = 0usize;
    while let Some(joined) = set.join_next().await {
        applied += joined??;
    }
    let elapsed = started.elapsed();
    let groups = hq.writer_stats().groups - groups_before.groups;
    let writer_cpu = named_thread_cpu_s(WRITER_THREAD)
        .zip(cpu_before)
        .map(|(a, b)| a - b);
    let ours = applied as f64 / elapsed.as_secs_f64();
    let per_group = applied as f64 / groups.max(1) as f64;
    report.figure("stores", p.stores as u64, "");
    report.figure("ops_ingested", applied as u64, "ops");
    report.figure("fanin_ops_per_s", ours, "ops/s");
    report.figure("group_commits", groups, "");
    report.figure("ops_per_group_commit", per_group, "ops");
    if let Some(w) = writer_cpu {
        report.figure(
            "writer_cpu_us_per_op",
            w * 1e6 / applied.max(1) as f64,
            "us",
        );
        report.figure("writer_busy_share", w / elapsed.as_secs_f64(), "");
    }

    // The rows HQ logged, in its order, for the baseline.
    let rows: Vec<Row> = hq
        .query(move |c| {
            let mut stmt = c.prepare("SELECT actor, seq, body FROM ops WHERE rowid > ?1")?;
            let rows = stmt.query_map([logged_before as i64], |r| {
                Ok(Row {
                    actor: r.get(0)?,
                    seq: r.get(1)?,
                    body: r.get(2)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<Row>>>()
        })
        .await?;
    anyhow::ensure!(
        rows.len() == applied,
        "HQ logged {} of {applied}",
        rows.len()
    );
    let body_avg =
        rows.iter().map(|r| r.body.len()).sum::<usize>() as f64 / rows.len().max(1) as f64;
    let raw_db = scratch.file("raw.db");
    let batch = per_group.round().max(1.0) as usize;
    let raw_time =
        tokio::task::spawn_blocking(move || raw::insert_batched(&raw_db, &rows, batch)).await??;
    let baseline = applied as f64 / raw_time.as_secs_f64();
    report.figure("raw_rows_per_s_same_groups", baseline, "rows/s");
    // The disk's state in this run: one FULL commit of an op-sized row, alone.
    let commit_db = scratch.file("commit.db");
    let body_bytes = body_avg.round() as usize;
    let commits =
        tokio::task::spawn_blocking(move || raw::commit_latencies_ms(&commit_db, body_bytes, 100))
            .await??;
    report.figure("raw_full_commit_p50_ms", percentile(&commits, 50.0), "ms");
    report.figure("raw_full_commit_p99_ms", percentile(&commits, 99.0), "ms");
    drop(hq);
    let stores = (0..p.stores).map(store_id).collect();
    let engine = fanin_engine::run(
        &scratch.file("hq-engine.db"),
        &seed,
        stores,
        &engine_streams,
        UP_BATCH_OPS,
    )
    .await?;
    let engine_rate = engine.ops as f64 / engine.elapsed.as_secs_f64();
    report.figure("engine_ops_per_s", engine_rate, "ops/s");
    report.figure(
        "engine_ops_per_group_commit",
        engine.ops as f64 / engine.groups.max(1) as f64,
        "ops",
    );
    report.figure("engine_ratio", engine_rate / baseline, "");
    report.figure("engine_hq_connects", engine.hq_connects, "");
    report.figure("engine_store_connects", engine.store_connects, "");
    report.figure("engine_resent_batches", engine.resent_batches, "");
    report.figure("op_body_avg_bytes", body_avg, "B");
    report.note(format!(
        "{} stores x {} ops, {UP_BATCH_OPS} ops per up-batch, one ingest per store at a time, all stores at once; \
         {} SKUs with stock at every store; baseline: the same rows, {batch} per transaction",
        p.stores, p.ops_per_store, p.skus
    ));
    report.note(
        "engine_*: the same up-batches through mosquitto and HQ's sync engine (routing included) into a fresh HQ, the stores resending from HQ's acks as real stores do; timed to HQ's ack of every op; engine_ratio against the same baseline; connects above 1 are dropped links",
    );
    report.finish(ours, baseline, opts.json);
    Ok(())
}
