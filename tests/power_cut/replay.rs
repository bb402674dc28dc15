//! Replay: the files rebuilt at each cut point, opened with the real `Node`, every ack
//! before the cut looked for in the op log. A failing cut's files are kept for inspection.

use crate::disk::{Cut, Disk};
use crate::log::{DbFile, Event};
use crate::recording::Recording;
use crate::rng::Rng;
use crate::ACTOR;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use storenode::domain::ActorId;
use storenode::store::Node;

/// Figures of one replay.
#[derive(Debug, Default)]
pub struct Tally {
    pub cuts: usize,
    pub acked_total: usize,
    pub cuts_losing: usize,
    pub ops_lost_max: usize,
    /// The lowest seq lost at any cut.
    pub lost_seq_min: Option<u64>,
    /// The earliest cut (event index) that lost an ack, and the latest that lost none.
    pub first_losing_cut: Option<usize>,
    pub last_clean_cut: Option<usize>,
    pub cuts_not_opening: usize,
    pub first_failure: Option<String>,
}

/// Cut points in 1..=n: one at random in each of `points` equal slices of the log, plus the
/// cuts just before and just after every deletion and truncation, rare events a spread would
/// mostly miss (the journal's deletion while a new database switches to WAL; the WAL's
/// truncation at a checkpoint, not fsynced until the next header is written).
fn cut_points(events: &[Event], points: usize, rng: &mut Rng) -> Vec<usize> {
    let n = events.len();
    let mut cuts: Vec<usize> = if n <= points {
        (1..=n).collect()
    } else {
        (0..points)
            .map(|i| {
                let lo = i * n / points;
                let hi = (i + 1) * n / points;
                1 + lo + rng.below((hi - lo).max(1) as u64) as usize
            })
            .collect()
    };
    cuts.extend(
        events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, Event::Unlink(_) | Event::Truncate { .. }))
            .flat_map(|(i, _)| [i.max(1), (i + 1).min(n)]),
    );
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// Rebuild the files at each cut point, open them with the real `Node`, check every ack.
pub fn replay(rec: &Recording, points: usize, how: Cut, seed: u64) -> Tally {
    let mut rng = Rng::new(seed);
    let cuts = cut_points(&rec.events, points, &mut rng);
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
        let verdict = check(&db, &acked);
        match &verdict {
            Err(failure) if failure.lost > 0 => {
                tally.first_losing_cut.get_or_insert(k);
            }
            _ => tally.last_clean_cut = Some(k),
        }
        if let Err(failure) = verdict {
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
                    keep(&images, &format!("first-failure-{how:?}-seed-{seed}")).display()
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
