//! `history`: what a store's past costs a node at start. Two databases hold the same live set
//! (a catalog with stock and open pickup orders); one also holds a history of closed sales
//! (two lines each) and handed-over orders. Each is built by a child process, and each is
//! opened by a child process of its own that reports `Node::open`'s time and its idle RSS, so
//! no measurement carries another's memory. Headline: RSS idle with history (ours) and without
//! (baseline), the ratio's target <= 1.2; `Node::open` with history (target < 2 s).

use super::proc::rss_bytes;
use super::report::Report;
use super::scratch::{db_bytes, Scratch};
use super::workload::{prepared, seed_node, seed_ops, sku, store, SEED_CHUNK_OPS};
use super::Options;
use crate::domain::op::{Advance, OrderLine, SaleLine, Tender};
use crate::domain::{CustomerId, OrderId, Payload, Replica, SaleId};
use crate::store::Node;
use std::path::Path;
use std::time::Instant;

/// Child mode: build the database at this path (`HISTORY_SALES_ENV` says how much history).
const SEED_ENV: &str = "STORENODE_BENCH_HISTORY_SEED";
/// Child mode: open the database at this path and print `open_s rss_bytes`.
const OPEN_ENV: &str = "STORENODE_BENCH_HISTORY_OPEN";
/// With `SEED_ENV`: build the history too.
const WITH_HISTORY_ENV: &str = "STORENODE_BENCH_HISTORY_WITH";
const MIB: f64 = 1024.0 * 1024.0;
/// The target: a node with history idles within this factor of the same node without.
const RSS_RATIO_TARGET: f64 = 1.2;
/// The target for `Node::open` with history, in seconds.
const OPEN_S_TARGET: f64 = 2.0;

#[derive(Clone, Copy)]
struct Params {
    skus: usize,
    open_orders: usize,
    sales: usize,
    handed_over: usize,
}

fn params(opts: &Options) -> Params {
    if opts.quick {
        Params {
            skus: 2_000,
            open_orders: 200,
            sales: 10_000,
            handed_over: 1_000,
        }
    } else {
        Params {
            skus: 10_000,
            open_orders: 1_000,
            sales: 1_000_000,
            handed_over: 100_000,
        }
    }
}

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    let p = params(opts);
    if let Some(path) = std::env::var_os(SEED_ENV) {
        let with = std::env::var_os(WITH_HISTORY_ENV).is_some();
        return seed_file(Path::new(&path), p, with).await;
    }
    if let Some(path) = std::env::var_os(OPEN_ENV) {
        let started = Instant::now();
        let node = Node::open(Path::new(&path), store().actor())?;
        let open_s = started.elapsed().as_secs_f64();
        let rss = rss_bytes().unwrap_or(0);
        println!("{open_s} {rss}");
        drop(node);
        return Ok(());
    }
    let scratch = Scratch::new("history")?;
    let live = scratch.file("live.db");
    let past = scratch.file("history.db");
    let started = Instant::now();
    child(opts, &[(SEED_ENV, &live)], false)?;
    child(opts, &[(SEED_ENV, &past), (WITH_HISTORY_ENV, &past)], false)?;
    let build_s = started.elapsed().as_secs_f64();
    let (live_open_s, live_rss) = measure(opts, &live)?;
    let (past_open_s, past_rss) = measure(opts, &past)?;

    let mut report = Report::new("history", "MiB RSS idle");
    report.figure("skus", p.skus as u64, "");
    report.figure("open_orders", p.open_orders as u64, "");
    report.figure("history_sales", p.sales as u64, "");
    report.figure("history_orders_handed_over", p.handed_over as u64, "");
    report.figure("build_s", build_s, "s");
    report.figure("rss_idle_no_history_mib", live_rss / MIB, "MiB");
    report.figure("rss_idle_with_history_mib", past_rss / MIB, "MiB");
    report.figure("open_no_history_s", live_open_s, "s");
    report.figure("open_with_history_s", past_open_s, "s");
    report.figure(
        "rss_per_history_record_b",
        (past_rss - live_rss) / (p.sales + p.handed_over).max(1) as f64,
        "B",
    );
    report.figure("db_mib_no_history", db_bytes(&live) as f64 / MIB, "MiB");
    report.figure("db_mib_with_history", db_bytes(&past) as f64 / MIB, "MiB");
    report.figure("rss_ratio_target", RSS_RATIO_TARGET, "x");
    report.figure("open_s_target", OPEN_S_TARGET, "s");
    report.figure(
        "targets_met",
        past_rss / live_rss.max(1.0) <= RSS_RATIO_TARGET && past_open_s < OPEN_S_TARGET,
        "",
    );
    report.note(
        "each database built by one child process and opened by another (open time, then VmRSS)",
    );
    report.note(
        "history: two-line till sales, and pickup orders placed, picked, ready and handed over",
    );
    report.note(format!(
        "HQ acked all of the store's ops; sales beyond the newest {} move to sale_history, \
         finished orders beyond the newest {} to order_history",
        crate::store::history::SALES_KEPT_IN_MEMORY,
        crate::store::order_history::ORDERS_KEPT_IN_MEMORY
    ));
    report.finish(past_rss / MIB, live_rss / MIB, opts.json);
    Ok(())
}

/// Open `db` in a child process: (seconds in `Node::open`, RSS bytes right after).
fn measure(opts: &Options, db: &Path) -> anyhow::Result<(f64, f64)> {
    let out = child(opts, &[(OPEN_ENV, db)], true)?;
    let mut parts = out.split_whitespace();
    let open_s: f64 = parts.next().unwrap_or_default().parse()?;
    let rss: f64 = parts.next().unwrap_or_default().parse()?;
    Ok((open_s, rss))
}

/// Run this binary again as `bench history` with `envs` set; its stdout when `capture`.
fn child(opts: &Options, envs: &[(&str, &Path)], capture: bool) -> anyhow::Result<String> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["bench", "history"]);
    if opts.quick {
        cmd.arg("--quick");
    }
    for (key, value) in envs {
        cmd.env(key, value);
    }
    if !capture {
        cmd.stdout(std::process::Stdio::null());
    }
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "bench child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Build the database at `path`: the live set, then (`with`) the history, in chunks.
async fn seed_file(path: &Path, p: Params, with: bool) -> anyhow::Result<()> {
    let seed = seed_ops(p.skus, p.open_orders);
    let node = Node::open(path, store().actor())?;
    seed_node(&node, &seed).await?;
    if with {
        let mut replica = Replica::new(store().actor());
        for op in &seed {
            let _ = replica.apply(op);
        }
        let mut history = History { p, n: 0 };
        loop {
            let mut chunk = Vec::with_capacity(SEED_CHUNK_OPS);
            while chunk.len() < SEED_CHUNK_OPS {
                let Some(payload) = history.next() else { break };
                chunk.push(prepared(&mut replica, payload));
            }
            if chunk.is_empty() {
                break;
            }
            seed_node(&node, &chunk).await?;
        }
        // HQ acknowledged the store's history (the store is "behind" it): causally stable,
        // so the checkpoint below moves its sales out of memory (`store::history`).
        let acked = replica.version().contiguous(replica.actor());
        node.write(move |tx| {
            crate::sync::persist::set_u64(tx, crate::sync::persist::KEY_HQ_ACKED_SEQ, acked)
        })
        .await?;
    }
    node.checkpoint().await?;
    Ok(())
}

/// The history's payloads: every sale, then every order walked to handed over.
struct History {
    p: Params,
    n: usize,
}

/// Ops per handed-over order: place, picking, one pick per line (two lines), ready, handed over.
const ORDER_OPS: usize = 6;

impl History {
    fn next(&mut self) -> Option<Payload> {
        let n = self.n;
        self.n += 1;
        let skus = self.p.skus.max(2);
        if n < self.p.sales {
            // At the catalog's price (`seed_ops`): a sale off it raises a stale-price conflict,
            // which keeps it in memory until a manager resolves it.
            let line = |i: usize| SaleLine {
                sku: sku(i % skus),
                qty: 1,
                unit_cents: 100 + (i % skus % 5_000) as i64,
                vat_bp: 2100,
            };
            return Some(Payload::Sale {
                store: store(),
                sale_id: id(SaleId::parse(&format!("H-{n}"))),
                lines: vec![line(n * 7), line(n * 7 + 1)],
                tender: if n.is_multiple_of(2) {
                    Tender::Card
                } else {
                    Tender::Cash
                },
                customer: n
                    .is_multiple_of(5)
                    .then(|| id(CustomerId::parse(&format!("HC-{}", n % 20_000)))),
            });
        }
        let k = n - self.p.sales;
        let order = k / ORDER_OPS;
        if order >= self.p.handed_over {
            return None;
        }
        let order_id = id(OrderId::parse(&format!("HO-{order}")));
        let skus_of = [sku(order * 3 % skus), sku((order * 3 + 1) % skus)];
        let advance = |to| Payload::OrderAdvance {
            order_id: order_id.clone(),
            store: store(),
            to,
        };
        Some(match k % ORDER_OPS {
            0 => Payload::OrderPlace {
                order_id: order_id.clone(),
                store: store(),
                customer: id(CustomerId::parse(&format!("HC-{}", order % 20_000))),
                lines: skus_of
                    .iter()
                    .map(|s| OrderLine {
                        sku: s.clone(),
                        qty: 1,
                    })
                    .collect(),
                pickup_code: "K7M2QX".into(),
                placed_at_ms: 1_700_000_000_000,
            },
            1 => advance(Advance::Picking),
            2 | 3 => Payload::OrderPick {
                order_id: order_id.clone(),
                store: store(),
                sku: skus_of[k % ORDER_OPS - 2].clone(),
                picked: 1,
            },
            4 => advance(Advance::Ready),
            _ => advance(Advance::HandedOver),
        })
    }
}

fn id<T>(parsed: Result<T, crate::domain::IdError>) -> T {
    parsed.unwrap_or_else(|_| unreachable!("generated id is valid"))
}
