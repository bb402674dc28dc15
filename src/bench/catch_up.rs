//! `catch-up`: store B is offline (its uplink cut) while ops it must receive pile up at HQ:
//! HQ price changes and store A's cart edits for customers B follows. Then the link comes
//! back; we time reconnect -> B's digest of its shared state equals HQ's and B holds every HQ
//! op. Baseline, same run: the same number of op-sized messages pipelined through the same
//! broker in batches of the sync batch size, plus the same rows inserted into SQLite with
//! the same batching (transport and persistence limits, no merge).

use super::chain::{customer, wait_for, Chain, SKUS};
use super::mqtt_raw;
use super::raw::{self, Row};
use super::report::Report;
use super::scratch::Scratch;
use super::workload::{ean, sku};
use super::Options;
use crate::domain::{ActorId, Payload};
use crate::store::{encode_op, Node};
use crate::sync::probe::{Probe, BUSY};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Ops per sync batch (the engines' default `batch_ops_max`).
const BATCH_OPS: usize = 500;
/// Concurrent submitters while ops accumulate.
const SUBMITTERS: usize = 64;

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    let count = if opts.quick { 5_000 } else { 100_000 };
    let probe = Arc::new(Probe::busy_only());
    let chain = Chain::start(Some(probe.clone())).await?;
    chain.seed().await?;
    chain.b_sync.set_link(false);
    let b_sync = chain.b_sync.clone();
    wait_for(Duration::from_secs(10), "store B goes offline", move || {
        !b_sync.status().online
    })
    .await?;

    let started = Instant::now();
    accumulate(&chain, count).await?;
    let a_last = chain.a.read(|r| r.next_seq() - 1);
    let a_actor = chain.a.actor().clone();
    let hq = chain.hq.clone();
    wait_for(
        Duration::from_secs(300),
        "HQ holds all of A's ops",
        move || hq.read(|r| r.version().contiguous(&a_actor)) >= a_last,
    )
    .await?;
    let accumulate_s = started.elapsed().as_secs_f64();

    let before = BUSY.map(|what| probe.busy_total(what));
    let reconnected = Instant::now();
    chain.b_sync.set_link(true);
    let caught = {
        let deadline = Duration::from_secs(300);
        while !chain.b_caught_up() {
            anyhow::ensure!(
                reconnected.elapsed() < deadline,
                "store B did not catch up in {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        reconnected.elapsed()
    };

    let sample: Vec<crate::domain::Op> = chain
        .hq
        .query(|c| Node::ops_since(c, &ActorId::hq(), 0, 1_000))
        .await?;
    let op_bytes = sample.iter().map(|op| encode_op(op).len()).sum::<usize>() / sample.len().max(1);
    let transport = mqtt_raw::pipelined(
        chain.broker.port,
        op_bytes * BATCH_OPS,
        count.div_ceil(BATCH_OPS),
    )
    .await?;
    let scratch = Scratch::new("catch-up")?;
    let rows: Vec<Row> = (0..count)
        .map(|i| Row {
            actor: "hq".into(),
            seq: i as i64 + 1,
            body: vec![7u8; op_bytes],
        })
        .collect();
    let raw_db = scratch.file("raw.db");
    let persist =
        tokio::task::spawn_blocking(move || raw::insert_batched(&raw_db, &rows, BATCH_OPS))
            .await??;
    chain.close().await;

    let baseline = transport + persist;
    let mut report = Report::new("catch-up", "s reconnect->equal digests");
    report.figure("ops_accumulated", count as u64, "");
    report.figure("accumulate_s", accumulate_s, "s");
    report.figure("catch_up_s", caught.as_secs_f64(), "s");
    report.figure(
        "catch_up_ops_per_s",
        count as f64 / caught.as_secs_f64(),
        "ops/s",
    );
    report.figure("raw_mqtt_pipelined_s", transport.as_secs_f64(), "s");
    report.figure("raw_sqlite_batched_s", persist.as_secs_f64(), "s");
    report.figure("op_bytes", op_bytes as u64, "B");
    for (what, (n0, took0)) in BUSY.into_iter().zip(before) {
        let (n, took) = probe.busy_total(what);
        report.figure(&format!("busy_{}_n", what.name()), n - n0, "");
        report.figure(
            &format!("busy_{}_s", what.name()),
            (took - took0).as_secs_f64(),
            "s",
        );
    }
    report.note("busy_*: how often and how long in all, between reconnect and the end, the engines waited on each kind of work (hq_route_write runs beside HQ's engine)");
    report.note("half HQ price changes, half store A cart edits for customers B follows");
    report.note(format!("baseline = {count} op-sized messages in batches of {BATCH_OPS} through the broker + the same rows into SQLite, same batching"));
    report.finish(caught.as_secs_f64(), baseline.as_secs_f64(), opts.json);
    Ok(())
}

/// `count` ops that store B must receive: HQ catalog price changes and A's cart edits.
async fn accumulate(chain: &Chain, count: usize) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..SUBMITTERS {
        let (hq, a) = (chain.hq.clone(), chain.a.clone());
        tasks.spawn(async move {
            let mut i = t;
            while i < count {
                if i % 2 == 0 {
                    let k = i % SKUS;
                    hq.submit(vec![Payload::CatalogPut {
                        sku: sku(k),
                        ean: ean(k),
                        name: format!("Producto {k}"),
                        price_cents: 100 + (i % 9_000) as i64,
                        vat_bp: 2100,
                    }])
                    .await?;
                } else {
                    a.submit(vec![Payload::CartSet {
                        customer: customer(i),
                        sku: sku(i % SKUS),
                        qty: (i % 7 + 1) as u32,
                    }])
                    .await?;
                }
                i += SUBMITTERS;
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(())
}
