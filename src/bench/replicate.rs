//! `replicate`: latency from an op committed at store A to it being applied at HQ and at
//! store B (which follows the same customers), through mosquitto on loopback. A's cart edits
//! are submitted at a steady rate from concurrent tasks; each node's commit events are
//! timestamped as they happen. Baseline, same broker and run: the raw rumqttc publish ->
//! receive round trip, plus one raw `synchronous=FULL` commit (the hop to HQ cannot beat one
//! broker trip and one durable commit), each measured at the run's rate for as many trips:
//! a p99 over 10,000 ops in 20 s is compared with a p99 over as many commits in as long.

use super::chain::{customer, wait_for, Chain, CUSTOMERS};
use super::hops::{self, Stamps};
use super::mqtt_raw;
use super::raw;
use super::report::{percentile, Report};
use super::scratch::Scratch;
use super::workload::sku;
use super::Options;
use crate::domain::{ActorId, Payload};
use crate::store::{encode_op, Node, NodeEvent};
use crate::sync::probe::{Hop, Probe, HOPS, TO_HQ, TO_STORE};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// When each of A's ops (by seq) was applied at one node.
type Seen = Arc<Mutex<Stamps>>;

/// Record when each op authored by `author` is applied at `node`, until the node closes.
fn watch_applied(node: &Node, author: ActorId) -> Seen {
    let seen: Seen = Arc::default();
    let mut events = node.subscribe();
    let out = seen.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(NodeEvent::Applied { ops, .. }) => {
                    let now = Instant::now();
                    let mut map = out.lock().unwrap_or_else(|p| p.into_inner());
                    for op in ops.iter().filter(|op| op.actor == author) {
                        map.entry(op.seq).or_insert(now);
                    }
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
    seen
}

/// Latencies (ms, sorted) from A's commit to `at` for every op both saw.
fn latencies(committed: &HashMap<u64, Instant>, at: &HashMap<u64, Instant>) -> Vec<f64> {
    let mut v: Vec<f64> = committed
        .iter()
        .filter_map(|(seq, t0)| at.get(seq).map(|t| t.saturating_duration_since(*t0)))
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Per-hop figures of the path A -> HQ (`to_hq_*`) and HQ -> B (`to_b_*`).
fn hop_figures(report: &mut Report, probe: &Probe, a: &Stamps, hq: &Stamps, b: &Stamps) {
    let at: Vec<(Hop, Stamps)> = HOPS.iter().map(|h| (*h, probe.at(*h))).collect();
    let stamp = |hop: Hop| at.iter().find(|(h, _)| *h == hop).map(|(_, s)| s);
    let named = |hops: &[Hop]| -> Vec<(&'static str, &Stamps)> {
        hops.iter()
            .filter_map(|h| stamp(*h).map(|s| (h.name(), s)))
            .collect()
    };
    let mut to_hq = vec![("a_commit", a)];
    to_hq.extend(named(TO_HQ));
    to_hq.push(("hq_event", hq));
    hops::figures(report, "to_hq", &to_hq);
    let mut to_b = vec![("a_commit", a), ("hq_event", hq)];
    to_b.extend(named(TO_STORE));
    to_b.push(("b_event", b));
    hops::figures(report, "to_b", &to_b);
}

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    let (count, rate_per_s): (usize, u32) = if opts.quick {
        (500, 250)
    } else {
        (10_000, 500)
    };
    let probe = Arc::new(Probe::new(super::workload::store().actor()));
    let chain = Chain::start(Some(probe.clone())).await?;
    chain.seed().await?;
    let author = chain.a.actor().clone();
    let at_a = watch_applied(&chain.a, author.clone());
    let at_hq = watch_applied(&chain.hq, author.clone());
    let at_b = watch_applied(&chain.b, author.clone());
    let first_seq = chain.a.read(|r| r.next_seq());

    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate_per_s));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        tokio::time::sleep_until((started + interval * i as u32).into()).await;
        let node = chain.a.clone();
        tasks.spawn(async move {
            let payload = Payload::CartSet {
                customer: customer(i),
                sku: sku(i % 97),
                qty: (i % 5 + 1) as u32,
            };
            node.submit(vec![payload]).await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let last_seq = chain.a.read(|r| r.next_seq() - 1);
    let (hq, b) = (chain.hq.clone(), chain.b.clone());
    let a_actor = author.clone();
    // B never gets A's own follow ops, so its contiguous seq of A stays low: check each op.
    let holds_all = move |node: &Node| {
        node.read(|r| (first_seq..=last_seq).all(|s| r.version().contains(&a_actor, s)))
    };
    wait_for(
        Duration::from_secs(60),
        "every op reaches HQ and store B",
        move || holds_all(&hq) && holds_all(&b),
    )
    .await?;
    let send_s = started.elapsed().as_secs_f64();

    let committed = at_a.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let applied_hq = at_hq.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let applied_b = at_b.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let to_hq = latencies(&committed, &applied_hq);
    let to_b = latencies(&committed, &applied_b);
    let op_bytes = chain
        .a
        .query(move |c| Node::ops_since(c, &author, first_seq - 1, 1))
        .await?
        .first()
        .map_or(100, |op| encode_op(op).len());

    // The baseline's two parts, each alone, at the run's rate and for its length (the
    // figures that enter the ratio), and as a burst of back-to-back trips (for comparison
    // with runs before the baseline was paced).
    let every = interval;
    let rtt = mqtt_raw::round_trips_paced_ms(chain.broker.port, op_bytes, count, every).await?;
    let rtt_burst = mqtt_raw::round_trips_ms(
        chain.broker.port,
        op_bytes,
        if opts.quick { 200 } else { 2_000 },
    )
    .await?;
    let scratch = Scratch::new("replicate")?;
    let (paced_db, burst_db) = (scratch.file("paced.db"), scratch.file("burst.db"));
    let burst_n = if opts.quick { 50 } else { 300 };
    let (commits, commits_burst) = tokio::task::spawn_blocking(move || {
        let paced = raw::commit_latencies_paced_ms(&paced_db, op_bytes, count, every)?;
        let burst = raw::commit_latencies_ms(&burst_db, op_bytes, burst_n)?;
        Ok::<_, rusqlite::Error>((paced, burst))
    })
    .await??;
    chain.close().await;

    let mut report = Report::new("replicate", "ms p99 store->HQ");
    report.figure("ops", count as u64, "");
    report.figure("offered_rate", u64::from(rate_per_s), "ops/s");
    report.figure("run_s", send_s, "s");
    for (name, v) in [("hq", &to_hq), ("second_store", &to_b)] {
        report.figure(&format!("{name}_samples"), v.len() as u64, "");
        report.figure(&format!("{name}_p50_ms"), percentile(v, 50.0), "ms");
        report.figure(&format!("{name}_p99_ms"), percentile(v, 99.0), "ms");
        report.figure(
            &format!("{name}_max_ms"),
            v.last().copied().unwrap_or(0.0),
            "ms",
        );
    }
    report.figure("raw_mqtt_rtt_p50_ms", percentile(&rtt, 50.0), "ms");
    report.figure("raw_mqtt_rtt_p99_ms", percentile(&rtt, 99.0), "ms");
    report.figure("raw_full_commit_p50_ms", percentile(&commits, 50.0), "ms");
    report.figure("raw_full_commit_p99_ms", percentile(&commits, 99.0), "ms");
    report.figure("raw_full_commit_p999_ms", percentile(&commits, 99.9), "ms");
    report.figure("burst_mqtt_rtt_p99_ms", percentile(&rtt_burst, 99.0), "ms");
    report.figure(
        "burst_full_commit_p99_ms",
        percentile(&commits_burst, 99.0),
        "ms",
    );
    report.figure("op_bytes", op_bytes as u64, "B");
    hop_figures(&mut report, &probe, &committed, &applied_hq, &applied_b);
    report.note(format!(
        "A's cart edits for {CUSTOMERS} customers both stores follow, {rate_per_s}/s from concurrent submitters; latency from A's commit event to HQ's and B's"
    ));
    report.note(format!(
        "baseline = raw MQTT QoS1 round trip p99 + raw FULL commit p99, same broker, same run, each measured alone at {rate_per_s}/s for {count} trips (burst_*: the same back to back, as before 2026-11-30)"
    ));
    report.note("to_hq_* / to_b_*: ms since A's commit event at each hop (p50, p99); *_tail_*: mean ms each hop added over the slowest 1 % end to end");
    let baseline = percentile(&rtt, 99.0) + percentile(&commits, 99.0);
    report.finish(percentile(&to_hq, 99.0), baseline, opts.json);
    Ok(())
}
