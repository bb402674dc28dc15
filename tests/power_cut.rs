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

#[path = "power_cut/disk.rs"]
mod disk;
#[path = "power_cut/log.rs"]
mod log;
#[path = "sim/rng.rs"]
#[allow(dead_code)] // shared with the simulation, which uses all of it
mod rng;

use disk::{Cut, Disk};
use log::{DbFile, Event};
use rng::Rng;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use storenode::domain::ActorId;
use storenode::store::Node;

const BIN: &str = env!("CARGO_BIN_EXE_storenode");
const ACTOR: &str = "store:madrid-centro";
/// Ops per recorded soak run: hundreds of group commits and fsyncs, and a WAL of a few MiB,
/// which each cut's `Node::open` recovers (the cost of a cut grows with it).
const SOAK_OPS: &str = "400";

/// Compile the shim once per test binary; every test records through it.
fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("power_cut");
        std::fs::create_dir_all(&dir).expect("create the shim's directory");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/power_cut/iolog.c");
        let built = dir.join(format!("iolog-{}.so", std::process::id()));
        let out = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
            .arg(&built)
            .arg(&source)
            .args(["-ldl", "-lpthread"])
            .output()
            .expect("run gcc (installed by .ci/run)");
        assert!(
            out.status.success(),
            "gcc failed on {}: {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        built
    })
}

/// What one recording saw: the events in order and the acks among them.
struct Recording {
    events: Vec<Event>,
    /// `(index of the event that printed it, seq)`, in print order.
    acks: Vec<(usize, u64)>,
    /// Index of the first event of each run.
    run_starts: Vec<usize>,
}

/// Run each command (storenode arguments, `{db}` replaced) in turn under the shim, from no
/// files at all, and decode what they did.
fn record(dir: &Path, runs: &[&[&str]]) -> Recording {
    let dir = dir.canonicalize().expect("canonical temp dir");
    let db = dir.join("store.db");
    let log_path = dir.join("io.log");
    let mut printed = 0usize;
    let mut run_starts = Vec::new();
    for args in runs {
        let logged = std::fs::read(&log_path).unwrap_or_default();
        run_starts.push(log::decode(&logged).map_or(0, |events| events.len()));
        let args: Vec<&str> = args
            .iter()
            .map(|a| {
                if *a == "{db}" {
                    db.to_str().expect("utf-8 path")
                } else {
                    a
                }
            })
            .collect();
        let out = Command::new(BIN)
            .args(&args)
            .env("LD_PRELOAD", shim())
            .env("POWERCUT_DB", &db)
            .env("POWERCUT_LOG", &log_path)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run storenode");
        assert!(
            out.status.success(),
            "storenode {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed += String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("ack "))
            .count();
    }
    let bytes = std::fs::read(&log_path).expect("read the I/O log");
    let events = log::decode(&bytes).unwrap_or_else(|e| panic!("I/O log: {e}"));
    let acks = log::acks(&events, ACTOR).unwrap_or_else(|e| panic!("I/O log: {e}"));
    // The shim saw every ack the processes printed: the log is complete.
    assert_eq!(acks.len(), printed, "acks in the log vs on stdout");
    assert!(
        events.iter().any(|e| matches!(e, Event::Sync(DbFile::Wal))) || printed == 0,
        "no fsync of the WAL was recorded: is the shim intercepting SQLite's calls?"
    );
    Recording {
        events,
        acks,
        run_starts,
    }
}

/// Figures of one replay.
#[derive(Debug, Default)]
struct Tally {
    cuts: usize,
    acked_total: usize,
    cuts_losing: usize,
    ops_lost_max: usize,
    /// The lowest seq lost at any cut.
    lost_seq_min: Option<u64>,
    cuts_not_opening: usize,
    first_failure: Option<String>,
}

/// Cut points 1..=n spread evenly, one random point in each of `points` equal strata.
fn cut_points(n: usize, points: usize, rng: &mut Rng) -> Vec<usize> {
    if n <= points {
        return (1..=n).collect();
    }
    let mut cuts: Vec<usize> = (0..points)
        .map(|i| {
            let lo = i * n / points;
            let hi = (i + 1) * n / points;
            1 + lo + rng.below((hi - lo).max(1) as u64) as usize
        })
        .collect();
    cuts.dedup();
    cuts
}

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

/// Rebuild the files at each cut point, open them with the real `Node`, check every ack.
fn replay(rec: &Recording, points: usize, how: Cut, seed: u64) -> Tally {
    let mut rng = Rng::new(seed);
    let cuts = cut_points(rec.events.len(), points, &mut rng);
    let scratch = scratch_dir();
    let mut disk = Disk::new();
    let mut done = 0usize;
    let mut tally = Tally {
        acked_total: rec.acks.len(),
        ..Tally::default()
    };
    for (n, &k) in cuts.iter().enumerate() {
        for event in &rec.events[done..k] {
            disk.advance(event);
        }
        done = k;
        let acked: Vec<u64> = rec
            .acks
            .iter()
            .take_while(|(at, _)| *at < k)
            .map(|(_, seq)| *seq)
            .collect();
        let dir = scratch.path().join(format!("cut-{n}"));
        std::fs::create_dir(&dir).expect("cut directory");
        let db = dir.join("store.db");
        let images = disk.cut(how, &mut rng);
        write_images(&db, &images);
        tally.cuts += 1;
        if let Err(failure) = check(&db, &acked) {
            tally.cuts_losing += usize::from(failure.lost > 0);
            tally.cuts_not_opening += usize::from(!failure.opened);
            tally.ops_lost_max = tally.ops_lost_max.max(failure.lost);
            tally.lost_seq_min = match (tally.lost_seq_min, failure.lost_seq_min) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if tally.first_failure.is_none() {
                tally.first_failure = Some(format!(
                    "cut at event {k} of {} ({} acks before it, {} changes unsynced): {}; \
                     files kept in {}",
                    rec.events.len(),
                    acked.len(),
                    disk.pending(),
                    failure.message,
                    keep(&images, &format!("{how:?}-{seed}-cut-{k}")).display()
                ));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    tally
}

fn write_images(db: &Path, images: &[(DbFile, Vec<u8>)]) {
    for (file, bytes) in images {
        let mut name = db.to_path_buf().into_os_string();
        name.push(file.suffix());
        std::fs::write(&name, bytes).expect("write a rebuilt file");
    }
}

/// Keep a failing cut's files as rebuilt (before the node opened them) under the target
/// directory, for a look with `sqlite3`.
fn keep(images: &[(DbFile, Vec<u8>)], name: &str) -> PathBuf {
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("power_cut")
        .join(name);
    let _ = std::fs::remove_dir_all(&kept);
    std::fs::create_dir_all(&kept).expect("directory for the failing cut");
    write_images(&kept.join("store.db"), images);
    kept
}

/// Counts of what a recording holds, for the figures.
fn summary(rec: &Recording) -> String {
    let count = |f: &dyn Fn(&Event) -> bool| rec.events.iter().filter(|e| f(e)).count();
    format!(
        "{} events: {} writes and {} fsyncs of the WAL, {} writes and {} fsyncs of the \
         database, {} truncations, {} acks",
        rec.events.len(),
        count(&|e| matches!(
            e,
            Event::Write {
                file: DbFile::Wal,
                ..
            }
        )),
        count(&|e| matches!(e, Event::Sync(DbFile::Wal))),
        count(&|e| matches!(
            e,
            Event::Write {
                file: DbFile::Main,
                ..
            }
        )),
        count(&|e| matches!(e, Event::Sync(DbFile::Main))),
        count(&|e| matches!(e, Event::Truncate { .. })),
        rec.acks.len()
    )
}

/// Cuts are rebuilt in RAM when it can: the disk under test is the model, not this one.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("temp dir")
}

struct Failure {
    opened: bool,
    lost: usize,
    lost_seq_min: Option<u64>,
    message: String,
}

/// The checker: the real node opens the files, SQLite finds no damage, every ack is there.
fn check(db: &Path, acked: &[u64]) -> Result<(), Failure> {
    let actor = ActorId::parse(ACTOR).expect("actor");
    let all_lost = |message: String| Failure {
        opened: false,
        lost: acked.len(),
        lost_seq_min: acked.iter().min().copied(),
        message,
    };
    let node =
        Node::open(db, actor.clone()).map_err(|e| all_lost(format!("does not open: {e}")))?;
    let (integrity, present) = node
        .query_blocking(|c| {
            let integrity: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            let ops = Node::ops_since(c, &actor, 0, usize::MAX >> 1)?;
            Ok((
                integrity,
                ops.iter().map(|op| op.seq).collect::<BTreeSet<u64>>(),
            ))
        })
        .map_err(|e| all_lost(format!("cannot read the op log: {e}")))?;
    if integrity != "ok" {
        return Err(all_lost(format!("integrity_check: {integrity}")));
    }
    let missing: Vec<u64> = acked
        .iter()
        .filter(|s| !present.contains(s))
        .copied()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure {
        opened: true,
        lost: missing.len(),
        lost_seq_min: missing.iter().min().copied(),
        message: format!(
            "acknowledged but lost: {} ops, first {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        ),
    })
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
/// and truncates it), so cuts land in commits, checkpoints, truncation and a reused WAL.
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
    // What the safe run committed, fsynced and checkpointed survived every cut.
    assert!(tally.lost_seq_min > safe_seq_max, "{tally:?}");
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
