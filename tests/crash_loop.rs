//! Crash loop: a store node under a steady stream of sales and pickup-order transitions
//! (`storenode soak --actor store:<id>`) is SIGKILLed at random points, again and again. After
//! every kill, each op it acknowledged must be in the op log, `PRAGMA integrity_check` must
//! say ok, and the restarted node must carry on; the invoice series (each sale is invoiced)
//! must have no gap and its VERI*FACTU chain must verify. `CRASH_LOOP_CYCLES=1000` is the long
//! mode.
//!
//! The same checker must catch a deliberately broken mode (a hidden soak flag): acks printed
//! before the commit. Power cuts, which a SIGKILL does not model (the page cache survives it),
//! are `tests/power_cut.rs`: it replays the soak's recorded writes and fsyncs.

#[path = "sim/rng.rs"]
#[allow(dead_code)] // shared with the simulation, which uses all of it
mod rng;

use rng::Rng;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_storenode");
const ACTOR: &str = "store:madrid-centro";

/// Acks printed by one run of the soak before (and while) it was killed.
struct Run {
    acked: Vec<u64>,
    stderr: String,
}

/// Start the soak, let it acknowledge `acks` ops, then SIGKILL it a random moment later.
fn run_and_kill(db: &Path, acks: usize, jitter_us: u64, extra: &[&str]) -> Run {
    let mut child = Command::new(BIN)
        .args([
            "soak",
            "--actor",
            ACTOR,
            "--writers",
            "4",
            "--ops",
            "100000000",
            "--db",
        ])
        .arg(db)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start storenode soak");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut acked = Vec::new();
    while acked.len() < acks {
        match lines.next() {
            Some(Ok(line)) => acked.push(parse_ack(&line)),
            _ => break,
        }
    }
    // Not synchronisation: a random delay so the kill lands anywhere in the write path
    // (between commits, inside a group, during an fsync), not only right after an ack.
    let until = Instant::now() + Duration::from_micros(jitter_us);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // Acks already in the pipe were printed before the kill: they count.
    for line in lines.map_while(Result::ok) {
        acked.push(parse_ack(&line));
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    Run { acked, stderr }
}

fn parse_ack(line: &str) -> u64 {
    let mut parts = line.split(' ');
    assert_eq!(parts.next(), Some("ack"), "{line}");
    assert_eq!(parts.next(), Some(ACTOR), "{line}");
    parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad ack line {line:?}"))
}

/// The checker: every acknowledged op is in the log and SQLite finds no damage.
fn check(db: &Path, acked: &[u64]) -> Result<(), String> {
    let conn = rusqlite::Connection::open(db).map_err(|e| format!("cannot open: {e}"))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("integrity_check failed to run: {e}"))?;
    if integrity != "ok" {
        return Err(format!("integrity_check: {integrity}"));
    }
    let present: BTreeSet<u64> = conn
        .prepare("SELECT seq FROM ops WHERE actor = ?1")
        .and_then(|mut stmt| {
            stmt.query_map([ACTOR], |r| r.get::<_, i64>(0))?
                .map(|r| r.map(|s| s as u64))
                .collect()
        })
        .map_err(|e| format!("no readable op log ({e}): acknowledged but lost: all"))?;
    let missing: Vec<u64> = acked
        .iter()
        .filter(|s| !present.contains(s))
        .copied()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "acknowledged but lost: {} ops, first {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        ))
    }
}

/// The invoice series has no gap, no duplicate and no reordering, and the VERI*FACTU chain
/// verifies (every hash and link), after the kill.
fn check_invoices(db: &Path) -> Result<u64, String> {
    let conn = rusqlite::Connection::open(db).map_err(|e| format!("cannot open: {e}"))?;
    let numbers: Vec<(i64, i64)> = conn
        .prepare("SELECT position, number FROM fiscal_records ORDER BY position")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(|e| format!("no readable journal: {e}"))?;
    for (i, (position, number)) in numbers.iter().enumerate() {
        let expected = i as i64 + 1;
        if *position != expected || *number != expected {
            return Err(format!(
                "invoice series broken at record {expected}: position {position}, number {number}"
            ));
        }
    }
    drop(conn);
    let stores = storenode::fiscal::journal::verify(db).map_err(|e| e.to_string())?;
    let verified: u64 = stores.iter().map(|(_, n)| n).sum();
    if verified != numbers.len() as u64 {
        return Err(format!("verified {verified} of {} records", numbers.len()));
    }
    Ok(verified)
}

fn cycles() -> u64 {
    std::env::var("CRASH_LOOP_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

#[test]
fn a_store_node_killed_at_random_points_never_loses_an_acknowledged_op() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut rng = Rng::new(std::env::var("CRASH_LOOP_SEED").map_or(7, |s| s.parse().unwrap()));
    let mut all_acked = Vec::new();
    let mut last_max = 0u64;
    let started = Instant::now();
    let cycles = cycles();
    for cycle in 0..cycles {
        let acks = rng.range(1, 150) as usize;
        let run = run_and_kill(&db, acks, rng.below(3_000), &[]);
        assert!(
            !run.acked.is_empty(),
            "cycle {cycle}: the node did not resume after the previous kill: {}",
            run.stderr
        );
        let first = *run.acked.iter().min().unwrap();
        assert!(
            first > last_max,
            "cycle {cycle}: seq {first} reused (last was {last_max})"
        );
        last_max = *run.acked.iter().max().unwrap();
        all_acked.extend(run.acked);
        if let Err(e) = check(&db, &all_acked) {
            panic!("cycle {cycle}: {e}\n{}", run.stderr);
        }
        if let Err(e) = check_invoices(&db) {
            panic!("cycle {cycle}: {e}\n{}", run.stderr);
        }
    }
    let invoices = check_invoices(&db).unwrap();
    assert!(invoices > 0, "the soak issued no invoice");
    eprintln!(
        "{cycles} SIGKILL cycles, {} acknowledged ops, none lost, {invoices} invoices gapless and chained, in {:?}",
        all_acked.len(),
        started.elapsed()
    );
    // The log replays into a node that opens cleanly.
    let out = Command::new(BIN)
        .args(["digest", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_crash_checker_catches_acks_printed_before_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("early.db");
    let mut rng = Rng::new(11);
    let mut all_acked = Vec::new();
    for cycle in 0..40 {
        let run = run_and_kill(
            &db,
            rng.range(1, 40) as usize,
            0,
            &["--unsafe-ack-before-commit"],
        );
        all_acked.extend(run.acked);
        if let Err(e) = check(&db, &all_acked) {
            assert!(e.contains("acknowledged but lost"), "{e}");
            eprintln!("broken build caught at cycle {cycle}: {e}");
            return;
        }
    }
    panic!("40 kills of a node that acks before commit and the checker saw no loss");
}
