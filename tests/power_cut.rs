//! Power cuts, modelled truthfully. A real `storenode soak` process runs under an LD_PRELOAD
//! shim (`power_cut/iolog.c`, compiled here with gcc) that logs, in order, every write,
//! truncation and fsync of the database and its `-wal`/`-shm`/`-journal` files, and every ack
//! the soak prints. For a cut point k of that log, `power_cut/disk.rs` rebuilds the files as
//! a power cut at k leaves them: writes made before their file's last fsync are kept, later
//! ones dropped (or, in the harsh variant, an arbitrary subset of them kept). The real `Node`
//! then opens the rebuilt files; every op acknowledged before k must be in its op log.
//!
//! Recording happens once per test; each cut is a rebuild in memory plus a `Node::open` on a
//! RAM-backed directory, so 1,000 cut points cost seconds. The same harness must catch
//! `synchronous=OFF` and acks printed before the commit. `POWER_CUT_POINTS` sets the count.
//!
//! Parts: `iolog.c` (the shim), `log.rs` (its records), `recording.rs` (running processes
//! under it), `disk.rs` (the cut model), `replay.rs` (cut points and the checker).

#[path = "power_cut/disk.rs"]
mod disk;
#[path = "power_cut/log.rs"]
mod log;
#[path = "power_cut/recording.rs"]
mod recording;
#[path = "power_cut/replay.rs"]
mod replay;
#[path = "sim/rng.rs"]
#[allow(dead_code)] // shared with the simulation, which uses all of it
mod rng;

use disk::Cut;
use recording::{record, summary, Recording};
use replay::replay;
use std::sync::OnceLock;

const ACTOR: &str = "store:madrid-centro";
/// Ops per recorded soak run: hundreds of group commits and fsyncs, and a WAL of a few MiB,
/// which each cut's `Node::open` recovers (the cost of a cut grows with it).
const SOAK_OPS: &str = "400";

/// Cut points per `synchronous=FULL` replay (`POWER_CUT_POINTS`, default 1,000).
fn points() -> usize {
    env_or("POWER_CUT_POINTS", 1000)
}

/// Cut points per broken-mode replay (`POWER_CUT_BROKEN_POINTS`, default 200): enough to
/// show the checker fails, cheap enough for CI.
fn broken_points() -> usize {
    env_or("POWER_CUT_BROKEN_POINTS", 200)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn soak(extra: &'static [&'static str]) -> Vec<&'static str> {
    let mut args = vec![
        "soak",
        "--actor",
        ACTOR,
        "--writers",
        "4",
        "--ops",
        SOAK_OPS,
        "--db",
        "{db}",
    ];
    args.extend_from_slice(extra);
    args
}

const MIGRATE: &[&str] = &["migrate", "--db", "{db}"];

/// Three soak runs with a checkpoint between each (`migrate` folds the WAL into the database
/// and truncates it), so cuts land in commits, checkpoints, truncations and restarted WALs.
/// Recorded once for both `synchronous=FULL` tests.
fn safe_recording() -> &'static Recording {
    static SAFE: OnceLock<Recording> = OnceLock::new();
    SAFE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = soak(&[]);
        record(dir.path(), &[&run, MIGRATE, &run, MIGRATE, &run])
    })
}

#[test]
fn a_power_cut_at_any_of_a_thousand_points_loses_no_acknowledged_op_with_synchronous_full() {
    let rec = safe_recording();
    let started = std::time::Instant::now();
    let tally = replay(rec, points(), Cut::DropUnsynced, 17);
    eprintln!(
        "synchronous=FULL, unsynced writes dropped: {}, {tally:?} in {:?}",
        summary(rec),
        started.elapsed()
    );
    assert_eq!(tally.first_failure, None, "{tally:?}");
    assert!(tally.cuts >= points().min(rec.events.len()));
    assert!(tally.acked_total >= 1_000, "{tally:?}");
}

#[test]
fn with_synchronous_full_no_op_is_lost_even_when_any_subset_of_unsynced_writes_persists() {
    let rec = safe_recording();
    let started = std::time::Instant::now();
    let tally = replay(rec, points(), Cut::SomeUnsynced, 71);
    eprintln!(
        "synchronous=FULL, a random subset of unsynced writes kept: {}, {tally:?} in {:?}",
        summary(rec),
        started.elapsed()
    );
    assert_eq!(tally.first_failure, None, "{tally:?}");
}

#[test]
fn a_power_cut_at_any_point_of_creating_a_database_leaves_one_the_node_opens() {
    let dir = tempfile::tempdir().unwrap();
    let rec = record(
        dir.path(),
        &[&["migrate", "--db", "{db}", "--actor", ACTOR]],
    );
    for how in [Cut::DropUnsynced, Cut::SomeUnsynced] {
        let tally = replay(&rec, usize::MAX, how, 5);
        eprintln!("creating a database, {how:?}: {}, {tally:?}", summary(&rec));
        assert_eq!(tally.cuts, rec.events.len(), "every cut point");
        assert_eq!(tally.first_failure, None, "{tally:?}");
    }
}

#[test]
fn the_power_cut_checker_catches_synchronous_off() {
    let dir = tempfile::tempdir().unwrap();
    let safe = soak(&[]);
    let off = soak(&["--unsafe-synchronous-off"]);
    let rec = record(dir.path(), &[&safe, MIGRATE, &off]);
    let off_start = rec.run_starts[2];
    let safe_seq_max = rec
        .acks
        .iter()
        .filter(|(at, _)| *at < off_start)
        .map(|(_, seq)| *seq)
        .max();
    assert!(safe_seq_max.is_some(), "the safe run acknowledged nothing");
    let tally = replay(&rec, broken_points(), Cut::DropUnsynced, 23);
    eprintln!("synchronous=OFF: {}, {tally:?}", summary(&rec));
    assert!(
        tally.cuts_losing > 0,
        "synchronous=OFF lost nothing: {tally:?}"
    );
    let failure = tally.first_failure.clone().unwrap_or_default();
    assert!(failure.contains("acknowledged but lost"), "{failure}");
    // What the safe run committed, fsynced and checkpointed survived every cut; every cut
    // after the unsafe run's first ack lost it.
    assert!(tally.lost_seq_min > safe_seq_max, "{tally:?}");
    let first_unsafe_ack = rec
        .acks
        .iter()
        .find(|(at, _)| *at >= off_start)
        .map(|(at, _)| *at);
    assert!(tally.last_clean_cut <= first_unsafe_ack, "{tally:?}");
    assert!(tally.first_losing_cut > first_unsafe_ack, "{tally:?}");
    // Harsher cuts lose too, and can lose older ops: with nothing fsynced, the unsafe run's
    // new WAL header may be lost while some of its frames and not the truncation of the old
    // WAL persist, so recovery replays an old prefix of the old WAL over the database (the
    // hazard SQLite's header fsync after a WAL restart prevents, sqlite.org ticket ff5be73dee).
    let harsh = replay(&rec, broken_points(), Cut::SomeUnsynced, 31);
    eprintln!("synchronous=OFF, a random subset of unsynced writes kept: {harsh:?}");
    assert!(harsh.cuts_losing > 0, "{harsh:?}");
}

#[test]
fn the_power_cut_checker_catches_acks_printed_before_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let early = soak(&["--unsafe-ack-before-commit"]);
    let rec = record(dir.path(), &[&early]);
    let tally = replay(&rec, broken_points(), Cut::DropUnsynced, 29);
    eprintln!("acks before the commit: {}, {tally:?}", summary(&rec));
    assert!(tally.cuts_losing > 0, "early acks lost nothing: {tally:?}");
    let failure = tally.first_failure.unwrap_or_default();
    assert!(failure.contains("acknowledged but lost"), "{failure}");
}
