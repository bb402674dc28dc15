//! `chain`: HQ on PostgreSQL under N stores. Everything is real and in this process except
//! the broker and the database: mosquitto and a PostgreSQL cluster started by the bench, N
//! store nodes (each its own SQLite file and store sync engine) and HQ (`store::pg` journal,
//! HQ sync engine). After a seed (catalog from HQ, stock received at every store), each store
//! sells and receives at a steady rate; HQ's commit of each op is timestamped.
//!
//! Figures: HQ ingest ops/s against the offered load, store -> HQ latency (from the store's
//! submit to HQ's commit), equal digests at the end, and the same-run baseline: raw inserts
//! of the same op rows into PostgreSQL with HQ's average group size. Then HQ's own ops:
//! orders placed back to back by `--hq` HQ nodes on the log at once (HQ's seq under the row
//! lock on `hq_actor`). With `--hq 2` a second, real `storenode hq` process syncs too, the
//! stores spread over both by leases, and it is SIGKILLed a third into the run: the failover
//! time is until every store it served is acked again (`chain_failover`).

use super::chain::wait_for;
use super::chain_failover;
use super::chain_store::SimStore;
use super::mosquitto::Mosquitto;
use super::postgres::Postgres;
use super::report::{percentile, Report};
use super::scratch::Scratch;
use super::workload::{ean, sku};
use super::Options;
use crate::domain::op::OrderLine;
use crate::domain::op::{ReceiveReason, SaleLine, Tender};
use crate::domain::{ActorId, OpId, Payload, SaleId, StoreId};
use crate::domain::{CustomerId, OrderId};
use crate::store::pg::tail::Tail;
use crate::store::{pg, Node, NodeEvent};
use crate::sync::protocol::config::LeaseSettings;
use crate::sync::{spawn_hq_sync, HqSyncConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

pub(super) const CHAIN: &str = "bench";
/// Products every store sells.
const SKUS: usize = 20;
/// Units of each product every store receives at the seed.
const SEED_UNITS: u32 = 10_000;

/// When HQ committed each store op.
type Seen = Arc<Mutex<HashMap<OpId, Instant>>>;

/// Timestamp HQ's commits on an OS thread of its own: a task on the runtime the stores and
/// their engines share would be starved under load and timestamp late.
fn watch_hq(hq: &Node) -> Seen {
    let seen: Seen = Arc::default();
    let mut events = hq.subscribe();
    let out = seen.clone();
    std::thread::spawn(move || loop {
        match events.blocking_recv() {
            Ok(NodeEvent::Applied { ops, local, .. }) => {
                if local {
                    continue;
                }
                let now = Instant::now();
                let mut map = out.lock().unwrap_or_else(|p| p.into_inner());
                for op in ops.iter() {
                    map.entry(op.id()).or_insert(now);
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
    });
    seen
}

/// The k-th op of a store's run: mostly single-line sales, every fifth a delivery.
fn payload(store: &StoreId, k: usize) -> anyhow::Result<Payload> {
    if k % 5 == 4 {
        return Ok(Payload::StockReceive {
            store: store.clone(),
            sku: sku(k % SKUS),
            qty: 3,
            reason: ReceiveReason::Delivery,
        });
    }
    Ok(Payload::Sale {
        store: store.clone(),
        sale_id: SaleId::parse(&format!("S-{store}-{k}"))?,
        lines: vec![SaleLine {
            sku: sku(k % SKUS),
            qty: 1,
            unit_cents: 100,
            vat_bp: 2100,
        }],
        tender: Tender::Cash,
        customer: None,
    })
}

/// Whether HQ holds every op each store has committed.
fn hq_holds_all(hq: &Node, stores: &[(StoreId, SimStore)]) -> bool {
    stores.iter().all(|(s, node)| {
        let mine = node.last_seq();
        hq.read(|r| r.version().contiguous(&s.actor())) >= mine
    })
}

/// Whether every store and HQ agree on that store's shared state.
fn digests_equal(hq: &Node, stores: &[(StoreId, SimStore)]) -> usize {
    stores
        .iter()
        .filter(|(s, node)| {
            let mine = node.read(|r| r.digest_for_store(s));
            let theirs = hq.read(|r| r.digest_for_store(s));
            mine == theirs
        })
        .count()
}

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=2).contains(&opts.hq),
        "--hq {}: 1 or 2 (the second a real process, SIGKILLed mid-run)",
        opts.hq
    );
    let n = if opts.stores == 0 { 200 } else { opts.stores };
    let (ops_per_store, rate_per_store): (usize, f64) =
        if opts.quick { (10, 5.0) } else { (100, 2.0) };
    let broker = Mosquitto::start()?;
    let postgres = Postgres::start()?;
    let scratch = Scratch::new("chain-scale")?;
    let ids: Vec<StoreId> = (0..n)
        .map(|i| StoreId::parse(&format!("s{i:04}")))
        .collect::<Result<_, _>>()?;
    let patience = Some(Duration::from_secs(10));
    let (hq, _) = pg::open_node(
        &scratch.file("hq.db"),
        ActorId::hq(),
        &postgres.url(),
        patience,
    )
    .await?;
    let (shutdown, rx) = watch::channel(false);
    let mut hq_cfg = HqSyncConfig::new(CHAIN, ids.clone(), "127.0.0.1", broker.port);
    let mut second = None;
    if opts.hq == 2 {
        hq_cfg.leases = Some(LeaseSettings {
            url: postgres.url(),
            holder: chain_failover::FIRST.to_string(),
        });
        // The second process's ingests reach this replica through the log.
        let from = Tail::start_position(&postgres.url()).await?;
        Tail::new(hq.clone(), &postgres.url(), from)?.spawn(rx.clone());
        let dir = scratch.file("hq2");
        std::fs::create_dir_all(&dir)?;
        second = Some(chain_failover::Second::start(
            &dir,
            &postgres.url(),
            broker.port,
            &ids,
        )?);
    }
    let hq_sync = spawn_hq_sync(hq.clone(), hq_cfg, rx.clone());
    for i in 0..SKUS {
        hq.submit(vec![Payload::CatalogPut {
            sku: sku(i),
            ean: ean(i),
            name: format!("Producto {i}"),
            price_cents: 100,
            vat_bp: 2100,
        }])
        .await?;
    }
    let mut stores = Vec::with_capacity(n);
    let mut light_tasks = Vec::new();
    for s in &ids {
        let (store, task) =
            SimStore::start(&scratch, CHAIN, s, broker.port, opts.light, rx.clone())?;
        light_tasks.extend(task);
        stores.push((s.clone(), store));
    }
    let last = sku(SKUS - 1);
    let all: Vec<SimStore> = stores.iter().map(|(_, n)| n.clone()).collect();
    wait_for(
        Duration::from_secs(300),
        "the catalog reaches every store",
        || {
            all.iter()
                .all(|n| n.read(|r| r.state().catalog.contains(&last)))
        },
    )
    .await?;
    for (s, node) in &stores {
        let receive: Vec<Payload> = (0..SKUS)
            .map(|i| Payload::StockReceive {
                store: s.clone(),
                sku: sku(i),
                qty: SEED_UNITS,
                reason: ReceiveReason::Delivery,
            })
            .collect();
        node.submit(receive).await?;
    }
    let (h, st) = (hq.clone(), stores.clone());
    wait_for(Duration::from_secs(300), "HQ holds the seed", move || {
        hq_holds_all(&h, &st)
    })
    .await?;

    if second.is_some() {
        chain_failover::spread(&postgres.url(), n, Duration::from_secs(120)).await?;
    }
    let seen = watch_hq(&hq);
    let groups_before = hq.writer_stats();
    let submitted: Seen = Arc::default();
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate_per_store);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (s, node)) in stores.iter().enumerate() {
        let (s, node, submitted) = (s.clone(), node.clone(), submitted.clone());
        // Stores start spread over one interval, so the offered load is even.
        let offset = interval.mul_f64(i as f64 / n as f64);
        tasks.spawn(async move {
            for k in 0..ops_per_store {
                tokio::time::sleep_until((started + offset + interval * k as u32).into()).await;
                let t0 = Instant::now();
                let done = node.submit(vec![payload(&s, k)?]).await?;
                let mut map = submitted.lock().unwrap_or_else(|p| p.into_inner());
                for op in &done {
                    map.insert(op.id(), t0);
                }
            }
            anyhow::Ok(())
        });
    }
    let offered = interval * ops_per_store as u32;
    let failover = match &mut second {
        Some(second) => {
            tokio::time::sleep(offered / 3).await;
            let (url, within) = (postgres.url(), Duration::from_secs(120));
            Some(chain_failover::kill_and_measure(second, &url, &stores, within).await?)
        }
        None => None,
    };
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let offered_s = started.elapsed().as_secs_f64();
    let (h, st) = (hq.clone(), stores.clone());
    wait_for(Duration::from_secs(300), "HQ holds every op", move || {
        hq_holds_all(&h, &st)
    })
    .await?;
    let run_s = started.elapsed().as_secs_f64();
    let groups_after = hq.writer_stats();

    let submitted = submitted.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let at_hq = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let timed: Vec<(Instant, f64)> = submitted
        .iter()
        .filter_map(|(id, t0)| {
            at_hq
                .get(id)
                .map(|t| (*t0, t.saturating_duration_since(*t0)))
        })
        .map(|(t0, d)| (t0, d.as_secs_f64() * 1e3))
        .collect();
    let lat = sorted_ms(timed.iter().map(|(_, ms)| *ms));
    // Steady state: the ops submitted before the kill, and those after the failover ended.
    let (before, after) = match &failover {
        Some(f) => (
            sorted_ms(
                timed
                    .iter()
                    .filter(|(t0, _)| *t0 < f.killed)
                    .map(|(_, ms)| *ms),
            ),
            sorted_ms(
                timed
                    .iter()
                    .filter(|(t0, _)| *t0 >= f.served)
                    .map(|(_, ms)| *ms),
            ),
        ),
        None => (lat.clone(), Vec::new()),
    };
    let total = submitted.len();
    let ingest = total as f64 / run_s;

    let (h, st) = (hq.clone(), stores.clone());
    let converged = wait_for(Duration::from_secs(120), "digests converge", move || {
        digests_equal(&h, &st) == st.len()
    })
    .await;
    let equal = digests_equal(&hq, &stores);

    let groups = groups_after
        .groups
        .saturating_sub(groups_before.groups)
        .max(1);
    let batch = (total as u64).div_ceil(groups).max(1) as usize;
    let (baseline, commit_p50) = raw_inserts(&postgres, &stores, ops_per_store, batch).await?;
    let orders = hq_orders(&hq, opts.hq, &postgres.url(), &scratch, &ids[0]).await?;

    shutdown.send_replace(true);
    hq_sync.join().await;
    for (_, s) in &stores {
        s.join().await;
    }
    for task in light_tasks {
        let _ = task.await;
    }

    let mut report = Report::new("chain", "HQ ingest ops/s");
    report.figure("stores", n as u64, "");
    report.figure("hq_processes", opts.hq as u64, "");
    report.figure("stores_light", u64::from(opts.light), "");
    report.figure("ops", total as u64, "");
    report.figure("offered_ops_per_s", n as f64 * rate_per_store, "ops/s");
    report.figure("offered_s", offered_s, "s");
    report.figure("drained_s", run_s, "s");
    report.figure("ingest_ops_per_s", ingest, "ops/s");
    report.figure("latency_samples", lat.len() as u64, "");
    report.figure("store_to_hq_p50_ms", percentile(&lat, 50.0), "ms");
    report.figure("store_to_hq_p99_ms", percentile(&lat, 99.0), "ms");
    report.figure("steady_ops", before.len() as u64, "");
    report.figure("steady_p50_ms", percentile(&before, 50.0), "ms");
    report.figure("steady_p99_ms", percentile(&before, 99.0), "ms");
    if failover.is_some() {
        report.figure("after_failover_ops", after.len() as u64, "");
        report.figure("after_failover_p50_ms", percentile(&after, 50.0), "ms");
        report.figure("after_failover_p99_ms", percentile(&after, 99.0), "ms");
    }
    report.figure(
        "store_to_hq_max_ms",
        lat.last().copied().unwrap_or(0.0),
        "ms",
    );
    report.figure("hq_ops_per_group", batch as u64, "");
    report.figure("raw_pg_insert_rows_per_s", baseline, "rows/s");
    report.figure("raw_pg_commit_p50_ms", commit_p50, "ms");
    report.figure("digests_equal", equal as u64, "stores");
    report.figure("hq_orders_per_s", orders.per_s, "orders/s");
    report.figure("hq_order_p99_ms", orders.p99_ms, "ms");
    report.figure("hq_replicas_equal", u64::from(orders.equal), "");
    report.note(format!(
        "HQ's own ops: {HQ_ORDERS} orders placed back to back by each of {} HQ node(s) on the \
         log (each its own file, journal connection and tail), numbered under the row lock on \
         hq_actor",
        opts.hq
    ));
    match failover {
        Some(chain_failover::Failover {
            seconds: s,
            orphans,
            ..
        }) => {
            report.figure("failover_s", s, "s");
            report.note(format!(
                "failover: the second HQ process (a real storenode hq, serving {orphans} of the \
                 {n} stores by lease) SIGKILLed a third into the run; failover_s is from the \
                 kill until each of those stores had every op written before it and its first \
                 op after it acked by the survivor (lease TTL 5 s, renewed every second; the \
                 next op comes within one op interval, {:.1} s)",
                interval.as_secs_f64()
            ));
        }
        None => {
            report.note("failover: measured with --hq 2 (a second, real HQ process killed mid-run)")
        }
    }
    if let Err(e) = converged {
        report.note(format!("digests did not all converge: {e}"));
    }
    report.note(match opts.light {
        true => {
            "stores: light (the real store sync protocol over mosquitto, replica and own \
                 ops in memory: no SQLite, no fsync at the stores)"
        }
        false => "stores: real store nodes (each its own SQLite file, writer and sync engine)",
    });
    report.note(format!(
        "{n} stores x {ops_per_store} ops at {rate_per_store}/s each (4 sales : 1 delivery); \
         latency from the store's submit to HQ's commit in PostgreSQL and SQLite; baseline: \
         the same op rows inserted raw into PostgreSQL, {batch} per transaction"
    ));
    report.finish(ingest, baseline, opts.json);
    Ok(())
}

fn sorted_ms(ms: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = ms.collect();
    v.sort_by(f64::total_cmp);
    v
}

/// One-row commits timed for the run's commit p50 (how loaded the disk is right now).
const COMMIT_SAMPLES: usize = 100;

/// The same-run baseline: rows per second inserting the run's op rows raw into a fresh
/// PostgreSQL database, `batch` rows per transaction (the statement HQ's journal uses), and
/// the p50 of a one-row commit there, in ms.
async fn raw_inserts(
    postgres: &Postgres,
    stores: &[(StoreId, SimStore)],
    ops_per_store: usize,
    batch: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut ops = Vec::new();
    for (_, node) in stores {
        let from = node.last_seq().saturating_sub(ops_per_store as u64);
        ops.extend(node.own_ops(from, ops_per_store).await?);
    }
    let admin = pg::parse_url(&postgres.url())?;
    let client = pg::connect(&admin).await?;
    client.batch_execute("CREATE DATABASE raw_baseline").await?;
    let url = postgres.url().replace("/postgres", "/raw_baseline");
    let mut client = pg::connect(&pg::parse_url(&url)?).await?;
    pg::schema::migrate(&mut client).await?;
    let (timed, rest) = ops.split_at(ops.len().min(COMMIT_SAMPLES));
    let mut commits = Vec::with_capacity(timed.len());
    for op in timed {
        let t0 = Instant::now();
        let tx = client.transaction().await?;
        pg::log::insert_ops(&tx, std::slice::from_ref(op)).await?;
        tx.commit().await?;
        commits.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    commits.sort_by(f64::total_cmp);
    let started = Instant::now();
    for chunk in rest.chunks(batch) {
        let tx = client.transaction().await?;
        pg::log::insert_ops(&tx, chunk).await?;
        tx.commit().await?;
    }
    let rate = rest.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    Ok((rate, percentile(&commits, 50.0)))
}

/// Orders each HQ node places in the `hq_orders` phase.
const HQ_ORDERS: usize = 200;

/// What the HQ orders phase measured.
struct Orders {
    per_s: f64,
    p99_ms: f64,
    /// Both HQ replicas equal once each caught up with the log.
    equal: bool,
}

/// HQ's own ops through `begin_own`: `HQ_ORDERS` orders of one unit at `store`, placed one
/// after the other by each of `k` HQ nodes at once (the second opened like another process:
/// its own SQLite file, journal connection and tail), then both caught up and compared.
async fn hq_orders(
    first: &Node,
    k: usize,
    url: &str,
    scratch: &Scratch,
    store: &StoreId,
) -> anyhow::Result<Orders> {
    let from = Tail::start_position(url).await?;
    let mut nodes = vec![(first.clone(), Tail::new(first.clone(), url, from)?)];
    if k > 1 {
        let from = Tail::start_position(url).await?;
        let (second, _) = pg::open_node(
            &scratch.file("hq2.db"),
            ActorId::hq(),
            url,
            Some(Duration::from_secs(10)),
        )
        .await?;
        nodes.push((second.clone(), Tail::new(second, url, from)?));
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (node, _)) in nodes.iter().enumerate() {
        let (node, store) = (node.clone(), store.clone());
        tasks.spawn(async move {
            let mut lat = Vec::with_capacity(HQ_ORDERS);
            for j in 0..HQ_ORDERS {
                let order = Payload::OrderPlace {
                    order_id: OrderId::parse(&format!("O-bench-{i}-{j}"))?,
                    store: store.clone(),
                    customer: CustomerId::parse(&format!("C-{i}-{j}"))?,
                    lines: vec![OrderLine {
                        sku: sku(j % SKUS),
                        qty: 1,
                    }],
                    pickup_code: "BENCH1".to_string(),
                    placed_at_ms: 1,
                };
                let t0 = Instant::now();
                node.submit(vec![order]).await?;
                lat.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            anyhow::Ok(lat)
        });
    }
    let mut lat = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        lat.extend(joined??);
    }
    let per_s = lat.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    lat.sort_by(f64::total_cmp);
    for (_, tail) in &nodes {
        tail.catch_up().await?;
    }
    // Stores keep syncing meanwhile, so whole digests may differ for a moment: compare what
    // the phase wrote, every order on every node and HQ's seq.
    let placed = |n: &Node| {
        n.read(|r| {
            let ours = r.state().orders.keys();
            let ours = ours
                .filter(|id| id.as_str().starts_with("O-bench-"))
                .count();
            (ours, r.next_seq())
        })
    };
    let want = placed(first);
    let equal = want.0 == k * HQ_ORDERS && nodes.iter().all(|(n, _)| placed(n) == want);
    Ok(Orders {
        per_s,
        p99_ms: percentile(&lat, 99.0),
        equal,
    })
}
