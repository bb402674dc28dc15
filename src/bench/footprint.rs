//! `footprint`: resident memory of a store node holding a realistic catalog and order book,
//! idle (just reopened: the replica rebuilt from the log) and under the mixed workload, plus
//! database bytes per op. The database is seeded by a child process, so this one never held
//! the seed. The baseline is this process's RSS before any node was opened (runtime, binary,
//! allocator): the headline ratio is how many times that floor a node costs. During the load
//! HQ acknowledges the store's ops as its sync engine records them (`hq_acks`), so sales and
//! finished orders become causally stable and may leave memory, as at a connected store.

use super::alloc::live_bytes;
use super::heap_parts;
use super::proc::rss_bytes;
use super::report::Report;
use super::scratch::{db_bytes, Scratch};
use super::workload::{seed_node, seed_ops, store, submit_mix};
use super::Options;
use crate::store::snapshot::Cadence;
use crate::store::Node;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The target of issue 7: a store node with 100k SKUs stays under this.
const RSS_TARGET_BYTES: u64 = 64 * 1024 * 1024;
const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    let (skus, orders, load) = if opts.quick {
        (10_000, 1_000, Duration::from_secs(2))
    } else {
        (100_000, 10_000, Duration::from_secs(8))
    };
    let scratch = Scratch::new("footprint")?;
    let db = scratch.file("store.db");
    if let Some(path) = std::env::var_os(SEED_ONLY_ENV) {
        return seed_file(std::path::Path::new(&path), skus, orders).await;
    }
    if let Some(path) = std::env::var_os(CRASH_ONLY_ENV) {
        let most = if opts.quick { load } else { CRASH_LOAD_MAX };
        return crash_at_longest_tail(std::path::Path::new(&path), skus, most).await;
    }
    let floor = rss_bytes().unwrap_or(0);
    let parts = seed_in_child(&db, opts.quick)?;
    let rss_before_open = rss_bytes().unwrap_or(0);
    let heap_before_open = live_bytes();
    let started = Instant::now();
    let node = Node::open(&db, store().actor())?;
    let open_s = started.elapsed().as_secs_f64();
    let idle = rss_bytes().unwrap_or(0);
    let heap_idle = live_bytes().zip(heap_before_open).map(|(a, b)| a - b);
    let (anon_idle, file_idle) = heap_parts::rss_anon_and_file_bytes().unwrap_or((0, 0));
    let sqlite_idle = heap_parts::sqlite_bytes();
    let (main_arena_idle, other_anon_idle) =
        heap_parts::rss_heap_and_other_anon_bytes().unwrap_or((0, 0));
    let malloc_idle = heap_parts::malloc_free_and_arena_bytes();
    let ops_seeded = node.query(Node::op_count).await?;
    let db_per_op = db_bytes(&db) as f64 / ops_seeded.max(1) as f64;

    let peak = Arc::new(AtomicU64::new(idle));
    // What the RSS peak is made of: our heap (the counting allocator) and SQLite's, each at
    // its own peak over the same samples.
    let heap_peak = Arc::new(AtomicU64::new(0));
    let sqlite_peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, heap_peak, sqlite_peak, stop) = (
            peak.clone(),
            heap_peak.clone(),
            sqlite_peak.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes().unwrap_or(0), Ordering::Relaxed);
                let heap = live_bytes().unwrap_or(0).max(0) as u64;
                heap_peak.fetch_max(heap, Ordering::Relaxed);
                let sqlite = heap_parts::sqlite_bytes().max(0) as u64;
                sqlite_peak.fetch_max(sqlite, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let acks = tokio::spawn(hq_acks(node.clone(), stop.clone()));
    let (ops, _, elapsed) = submit_mix(&node, 16, skus, load).await?;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    acks.await??;
    let under_load = peak.load(Ordering::Relaxed);
    let held_after_load = node.read(|r| (r.state().sales.len(), r.state().orders.len()));
    node.checkpoint().await?;
    let ops_total = node.query(Node::op_count).await?;
    let db_per_op_after_load = db_bytes(&db) as f64 / ops_total.max(1) as f64;
    let closing = node.clone();
    tokio::task::spawn_blocking(move || closing.close_blocking()).await??;
    drop(node);
    let (crash_tail_ops, crash_open_s) = open_after_crash(&db, opts.quick).await?;

    let mut report = Report::new("footprint", "MiB RSS idle");
    report.figure("skus", skus as u64, "");
    report.figure("orders", orders as u64, "");
    report.figure("rss_floor_mib", floor as f64 / MIB, "MiB");
    report.figure("rss_before_open_mib", rss_before_open as f64 / MIB, "MiB");
    report.figure("rss_idle_mib", idle as f64 / MIB, "MiB");
    report.figure("rss_under_load_peak_mib", under_load as f64 / MIB, "MiB");
    report.figure(
        "heap_under_load_peak_mib",
        heap_peak.load(Ordering::Relaxed) as f64 / MIB,
        "MiB",
    );
    report.figure(
        "sqlite_heap_under_load_peak_mib",
        sqlite_peak.load(Ordering::Relaxed) as f64 / MIB,
        "MiB",
    );
    report.figure("sales_in_memory_after_load", held_after_load.0 as u64, "");
    report.figure("orders_in_memory_after_load", held_after_load.1 as u64, "");
    match heap_idle {
        Some(h) => report.figure("node_heap_idle_mib", h as f64 / MIB, "MiB"),
        None => report.figure("node_heap_idle_mib", "n/a", ""),
    }
    report.figure("rss_idle_anon_mib", anon_idle as f64 / MIB, "MiB");
    report.figure("rss_idle_file_mib", file_idle as f64 / MIB, "MiB");
    report.figure(
        "rss_idle_main_arena_mib",
        main_arena_idle as f64 / MIB,
        "MiB",
    );
    report.figure(
        "rss_idle_other_anon_mib",
        other_anon_idle as f64 / MIB,
        "MiB",
    );
    report.figure("sqlite_heap_idle_mib", sqlite_idle as f64 / MIB, "MiB");
    if let Some((free, arena)) = malloc_idle {
        report.figure("malloc_free_idle_mib", free as f64 / MIB, "MiB");
        report.figure("malloc_arena_idle_mib", arena as f64 / MIB, "MiB");
    }
    for (part, bytes) in &parts {
        report.figure(&format!("heap_{part}_mib"), *bytes as f64 / MIB, "MiB");
    }
    report.figure("open_replay_s", open_s, "s");
    report.figure(
        "load_ops_per_s",
        ops as f64 / elapsed.as_secs_f64(),
        "ops/s",
    );
    report.figure("db_bytes_per_op_seeded", db_per_op, "B");
    report.figure("db_bytes_per_op_after_load", db_per_op_after_load, "B");
    report.figure("crash_tail_ops", crash_tail_ops, "");
    report.figure("open_after_crash_s", crash_open_s, "s");
    report.figure("rss_target_mib", RSS_TARGET_BYTES as f64 / MIB, "MiB");
    report.figure("rss_idle_within_target", idle < RSS_TARGET_BYTES, "");
    report.note("idle = right after reopening the seeded database (replica rebuilt from the log)");
    report.note(
        "under load = peak RSS sampled every 20 ms while 16 submitters run the mixed workload; \
         HQ acks the store's ops every 100 ms, as its sync engine records them",
    );
    report.note(
        "heap_<part> = live heap of that part of State after a reopen, in the seeding child \
         (cloned and counted); sqlite_heap = SQLite's own heap, outside the counting allocator",
    );
    report.note(
        "open_after_crash = Node::open after a child ran the load until the log's tail behind \
         the snapshot was within 5 % of the snapshot cadence's threshold and exited unclosed",
    );
    report.finish(idle as f64 / MIB, floor as f64 / MIB, opts.json);
    Ok(())
}

/// How often HQ's ack of the store's ops is recorded during the load (a connected store
/// records one per up-batch HQ commits: every few ms under load).
const HQ_ACK_EVERY: Duration = Duration::from_millis(100);

/// Until `stop`: record HQ's ack of every own op the node holds, as the store's sync engine
/// does when HQ acknowledges an up-batch.
async fn hq_acks(node: Node, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let mut every = tokio::time::interval(HQ_ACK_EVERY);
    while !stop.load(Ordering::Relaxed) {
        every.tick().await;
        let acked = node.read(|r| r.version().contiguous(r.actor()));
        node.write(move |tx| {
            crate::sync::persist::set_u64(tx, crate::sync::persist::KEY_HQ_ACKED_SEQ, acked)
        })
        .await?;
    }
    Ok(())
}

/// Set on the child process that only builds the seeded database, so the measuring process
/// never holds the seeding's memory.
const SEED_ONLY_ENV: &str = "STORENODE_BENCH_SEED_ONLY";

/// Prefix of the child's stdout lines that carry the heap of one part of the state.
const HEAP_PART_LINE: &str = "heap_part";

/// Build the seeded database at `path` (in the child process), reopen it, and print the heap
/// of each part of the replayed state.
async fn seed_file(path: &std::path::Path, skus: usize, orders: usize) -> anyhow::Result<()> {
    let seed = seed_ops(skus, orders);
    let node = Node::open(path, store().actor())?;
    seed_node(&node, &seed).await?;
    node.checkpoint().await?;
    tokio::task::spawn_blocking(move || node.close_blocking()).await??;
    let node = Node::open(path, store().actor())?;
    for (part, bytes) in node.read(|r| heap_parts::by_part(r.state())) {
        println!("{HEAP_PART_LINE} {part} {bytes}");
    }
    Ok(())
}

/// Run this binary again as `bench footprint` with `SEED_ONLY_ENV` set, wait for it, and
/// return the heap per part of the state it printed.
fn seed_in_child(db: &std::path::Path, quick: bool) -> anyhow::Result<Vec<(String, i64)>> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["bench", "footprint"]).env(SEED_ONLY_ENV, db);
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "seeding child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parts = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == HEAP_PART_LINE).then_some(())?;
            Some((words.next()?.to_string(), words.next()?.parse().ok()?))
        })
        .collect();
    Ok(parts)
}

/// Set on the child process that runs the load and exits without closing the node, once the
/// log's tail is as long as the snapshot cadence lets it grow: the longest replay after a crash.
const CRASH_ONLY_ENV: &str = "STORENODE_BENCH_CRASH_AT_LONGEST_TAIL";

/// Longest the crash child loads before giving up on reaching the threshold (`--quick`: the
/// load's own duration).
const CRASH_LOAD_MAX: Duration = Duration::from_secs(60);

/// The log's tail behind the stored snapshot (ops) and the snapshot's size (bytes).
fn tail_and_snapshot(conn: &rusqlite::Connection) -> rusqlite::Result<(u64, u64)> {
    conn.query_row(
        "SELECT (SELECT count(*) FROM ops WHERE rowid >
                    coalesce((SELECT through FROM snapshot WHERE id = 1), 0)),
                coalesce((SELECT length(body) FROM snapshot WHERE id = 1), 0)",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?.max(0) as u64,
                r.get::<_, i64>(1)?.max(0) as u64,
            ))
        },
    )
}

/// In the crash child: run the mixed load (HQ acking) until the tail is within 5 % of the
/// threshold the writer snapshots at, then exit at once: no close, no last snapshot.
async fn crash_at_longest_tail(
    path: &std::path::Path,
    skus: usize,
    most: Duration,
) -> anyhow::Result<()> {
    let node = Node::open(path, store().actor())?;
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(hq_acks(node.clone(), stop));
    let load = tokio::spawn({
        let node = node.clone();
        async move { submit_mix(&node, 16, skus, most).await }
    });
    let mut every = tokio::time::interval(Duration::from_millis(50));
    while !load.is_finished() {
        every.tick().await;
        let (tail, bytes) = node.query(tail_and_snapshot).await?;
        let threshold = Cadence::longest_tail(bytes);
        if tail >= threshold - threshold / 20 {
            break;
        }
    }
    if load.is_finished() {
        load.await??; // a failed load is reported, not taken for a crash
    }
    // A crash as far as the file can tell: committed groups are on disk, nothing else is.
    std::process::exit(0)
}

/// Run the crash child on `db`, then time `Node::open` on what it left; (tail ops, seconds).
async fn open_after_crash(db: &std::path::Path, quick: bool) -> anyhow::Result<(u64, f64)> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["bench", "footprint"]).env(CRASH_ONLY_ENV, db);
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "crash child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (tail, _) = tail_and_snapshot(&rusqlite::Connection::open(db)?)?;
    let started = Instant::now();
    let node = Node::open(db, store().actor())?;
    let open_s = started.elapsed().as_secs_f64();
    tokio::task::spawn_blocking(move || node.close_blocking()).await??;
    Ok((tail, open_s))
}
