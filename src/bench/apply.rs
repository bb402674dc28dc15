//! `apply`: ops merged and persisted per second through `Node`, many concurrent submitters
//! sharing group commits, against the same op rows inserted with raw batched rusqlite (one
//! transaction per `tasks` rows: the fsync count an ideal group commit would reach). Then the
//! same ops ingested at a peer node twice: first apply, and again as duplicates.

use super::proc::{named_thread_cpu_s, this_thread_cpu_s};
use super::raw::{self, Row};
use super::report::{percentile, Report};
use super::scratch::{db_bytes, Scratch};
use super::workload::{seed_node, seed_ops, store, submit_mix};
use super::Options;
use crate::domain::{Op, StoreId};
use crate::store::{encode_op, Node};
use std::time::{Duration, Instant};

/// Name of the store's writer thread as the kernel shows it (15 bytes at most).
const WRITER_THREAD: &str = "storenode-write";
/// Ops per ingest request when replaying at the peer.
const INGEST_BATCH_OPS: usize = 256;

struct Params {
    skus: usize,
    tasks: usize,
    run: Duration,
}

fn params(opts: &Options) -> Params {
    if opts.quick {
        Params {
            skus: 10_000,
            tasks: 32,
            run: Duration::from_secs(2),
        }
    } else {
        Params {
            skus: 100_000,
            tasks: 64,
            run: Duration::from_secs(10),
        }
    }
}

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    let p = params(opts);
    let scratch = Scratch::new("apply")?;
    let mut report = Report::new("apply", "ops/s");
    let seed = seed_ops(p.skus, 0);
    let db = scratch.file("store.db");
    let node = Node::open(&db, store().actor())?;
    let started = Instant::now();
    seed_node(&node, &seed).await?;
    report.figure("seed_ops", seed.len() as u64, "ops");
    report.figure("seed_s", started.elapsed().as_secs_f64(), "s");
    let seed_seq = node.read(|r| r.next_seq() - 1);

    let cpu_before = named_thread_cpu_s(WRITER_THREAD);
    let groups_before = node.writer_stats();
    let (ops, refused, elapsed) = submit_mix(&node, p.tasks, p.skus, p.run).await?;
    let groups = node.writer_stats();
    let group_commits = groups.groups - groups_before.groups;
    let writer_cpu = named_thread_cpu_s(WRITER_THREAD)
        .zip(cpu_before)
        .map(|(a, b)| a - b);
    let ours = ops as f64 / elapsed.as_secs_f64();
    report.figure("submitters", p.tasks as u64, "tasks");
    report.figure("ops_committed", ops, "ops");
    report.figure("ops_refused", refused, "ops");
    report.figure("apply_ops_per_s", ours, "ops/s");
    report.figure("group_commits", group_commits, "");
    report.figure(
        "ops_per_group_commit",
        ops as f64 / group_commits.max(1) as f64,
        "ops",
    );

    let actor = store().actor();
    let log: Vec<Op> = node
        .query(move |c| Node::ops_since(c, &actor, seed_seq, usize::MAX))
        .await?;
    let rows: Vec<Row> = log
        .iter()
        .map(|op| Row {
            actor: op.actor.to_string(),
            seq: op.seq as i64,
            body: encode_op(op),
        })
        .collect();
    let body_avg =
        rows.iter().map(|r| r.body.len()).sum::<usize>() as f64 / rows.len().max(1) as f64;
    report.figure("op_body_avg_bytes", body_avg, "B");
    report.figure(
        "db_bytes_per_op",
        db_bytes(&db) as f64 / (seed.len() + log.len()) as f64,
        "B",
    );

    let raw_db = scratch.file("raw.db");
    let rows_for_raw = rows;
    let batch = p.tasks;
    let (raw_time, raw_cpu) = tokio::task::spawn_blocking(move || {
        let before = this_thread_cpu_s();
        let time = raw::insert_batched(&raw_db, &rows_for_raw, batch)?;
        let cpu = this_thread_cpu_s().zip(before).map(|(a, b)| a - b);
        Ok::<_, rusqlite::Error>((time, cpu))
    })
    .await??;
    let baseline = log.len() as f64 / raw_time.as_secs_f64();
    report.figure("raw_rows_per_s_batch_submitters", baseline, "rows/s");
    if let (Some(w), Some(r)) = (writer_cpu, raw_cpu) {
        report.figure("writer_cpu_us_per_op", w * 1e6 / ops.max(1) as f64, "us");
        report.figure("writer_busy_share", w / elapsed.as_secs_f64(), "");
        report.figure(
            "raw_cpu_us_per_row",
            r * 1e6 / log.len().max(1) as f64,
            "us",
        );
    }
    let commit_db = scratch.file("commit.db");
    let body = body_avg as usize;
    let commits =
        tokio::task::spawn_blocking(move || raw::commit_latencies_ms(&commit_db, body, 50))
            .await??;
    report.figure("raw_full_commit_p50_ms", percentile(&commits, 50.0), "ms");

    let (first, dup) = ingest_twice(&scratch, &seed, &log).await?;
    let first_rate = log.len() as f64 / first.as_secs_f64();
    let dup_rate = log.len() as f64 / dup.as_secs_f64();
    report.figure("peer_first_ingest_ops_per_s", first_rate, "ops/s");
    report.figure("peer_duplicate_ingest_ops_per_s", dup_rate, "ops/s");
    report.figure(
        "duplicate_cost_vs_first",
        dup.as_secs_f64() / first.as_secs_f64(),
        "x",
    );
    report.note(format!(
        "{} SKUs; {} submitters for {:?}, one op per submit; baseline: the same op rows, {} per transaction",
        p.skus, p.tasks, p.run, p.tasks
    ));
    report.note(format!(
        "peer ingest: {INGEST_BATCH_OPS} ops per request, one request at a time"
    ));
    report.finish(ours, baseline, opts.json);
    Ok(())
}

/// Ingest `log` at a fresh peer holding `seed`, then again; times of both passes.
async fn ingest_twice(
    scratch: &Scratch,
    seed: &[Op],
    log: &[Op],
) -> anyhow::Result<(Duration, Duration)> {
    let peer_store = StoreId::parse("peer-store")?;
    let peer = Node::open(&scratch.file("peer.db"), peer_store.actor())?;
    seed_node(&peer, seed).await?;
    let mut times = [Duration::ZERO; 2];
    for (pass, time) in times.iter_mut().enumerate() {
        let started = Instant::now();
        let mut applied = 0;
        for chunk in log.chunks(INGEST_BATCH_OPS) {
            let done = peer.ingest(chunk.to_vec()).await?;
            applied += done.applied;
            anyhow::ensure!(
                done.rejected.is_empty(),
                "peer refused {:?}",
                done.rejected.first()
            );
        }
        *time = started.elapsed();
        let expected = if pass == 0 { log.len() } else { 0 };
        anyhow::ensure!(
            applied == expected,
            "pass {pass}: applied {applied}, expected {expected}"
        );
    }
    Ok((times[0], times[1]))
}
