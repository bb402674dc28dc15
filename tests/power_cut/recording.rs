//! Recording: `storenode` processes run under the `iolog.c` shim, and their log decoded and
//! checked complete (every ack printed is in it; replayed with nothing lost it rebuilds the
//! files the processes left behind, byte for byte).

use crate::disk::{Cut, Disk};
use crate::log::{self, DbFile, Event};
use crate::rng::Rng;
use crate::ACTOR;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_storenode");

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
pub struct Recording {
    pub events: Vec<Event>,
    /// `(index of the event that printed it, seq)`, in print order.
    pub acks: Vec<(usize, u64)>,
    /// Index of the first event of each run.
    pub run_starts: Vec<usize>,
}

/// Run each command (storenode arguments, `{db}` replaced) in turn under the shim, from no
/// files at all, and decode what they did.
pub fn record(dir: &Path, runs: &[&[&str]]) -> Recording {
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
    assert_log_is_complete(&events, &db);
    Recording {
        events,
        acks,
        run_starts,
    }
}

/// The log replayed with nothing lost must give the very files the processes left behind
/// (all but the `-shm`, which SQLite changes through `mmap`): no write escaped the shim.
fn assert_log_is_complete(events: &[Event], db: &Path) {
    let mut disk = Disk::new();
    for event in events {
        disk.advance(event);
    }
    let rebuilt = disk.cut(Cut::NoPowerLoss, &mut Rng::new(0));
    for file in DbFile::ALL.into_iter().filter(|f| *f != DbFile::Shm) {
        let mut name = db.to_path_buf().into_os_string();
        name.push(file.suffix());
        let real = std::fs::read(&name).ok();
        let from_log = rebuilt.iter().find(|(f, _)| *f == file).map(|(_, b)| b);
        assert!(
            real.as_ref() == from_log,
            "{file:?}: the log rebuilds {:?} bytes, the real file has {:?}",
            from_log.map(Vec::len),
            real.as_ref().map(Vec::len)
        );
    }
}

/// Counts of what a recording holds, for the figures.
pub fn summary(rec: &Recording) -> String {
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
