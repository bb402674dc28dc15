//! The disk as a power cut leaves it. Fed the logged events in order, `Disk` keeps, per file,
//! the durable image (every write and truncation before the file's last fsync) and the
//! changes made since (in the page cache only). A cut keeps the durable image and, in the
//! harsh variant, an arbitrary subset of the pending changes, applied in their order.
//!
//! Creation and deletion of a file take effect at once (journalled metadata; SQLite fsyncs
//! the directory after creating its WAL or journal). The `-shm` file is never fsynced by
//! SQLite and is rebuilt from the WAL by the first connection, so a cut leaves none.

use crate::log::{DbFile, Event};
use crate::rng::Rng;
use std::collections::BTreeMap;

/// A change not yet known to be on the platter.
#[derive(Debug, Clone)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    Truncate { size: u64 },
}

impl Change {
    fn apply(&self, image: &mut Vec<u8>) {
        match self {
            Change::Write { offset, data } => {
                let start = usize::try_from(*offset).unwrap_or(usize::MAX);
                let end = start.saturating_add(data.len());
                if image.len() < end {
                    image.resize(end, 0);
                }
                image[start..end].copy_from_slice(data);
            }
            Change::Truncate { size } => {
                image.resize(usize::try_from(*size).unwrap_or(usize::MAX), 0)
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
struct FileState {
    durable: Vec<u8>,
    pending: Vec<Change>,
}

/// Which outcome of a cut to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Every change not yet fsynced is lost.
    DropUnsynced,
    /// Each change not yet fsynced persists or not, at random (seeded).
    SomeUnsynced,
    /// No cut: every change persists, as the files read while the machine stays up. The
    /// recorder checks this against the real files to prove its log misses no write.
    NoPowerLoss,
}

/// The files of one database, event by event.
#[derive(Debug, Default)]
pub struct Disk {
    files: BTreeMap<DbFile, FileState>,
}

impl Disk {
    /// The state before anything was recorded: no files.
    pub fn new() -> Disk {
        Disk::default()
    }

    /// Take one event into account (stdout events change nothing on disk).
    pub fn advance(&mut self, event: &Event) {
        match event {
            Event::Create(file) => {
                self.files.entry(*file).or_default();
            }
            Event::Write { file, offset, data } => {
                if let Some(state) = self.files.get_mut(file) {
                    state.pending.push(Change::Write {
                        offset: *offset,
                        data: data.clone(),
                    });
                }
            }
            Event::Truncate { file, size } => {
                if let Some(state) = self.files.get_mut(file) {
                    state.pending.push(Change::Truncate { size: *size });
                }
            }
            Event::Sync(file) => {
                if let Some(state) = self.files.get_mut(file) {
                    for change in std::mem::take(&mut state.pending) {
                        change.apply(&mut state.durable);
                    }
                }
            }
            Event::Unlink(file) => {
                self.files.remove(file);
            }
            Event::Stdout(_) => {}
        }
    }

    /// Changes waiting for an fsync, over all files.
    pub fn pending(&self) -> usize {
        self.files.values().map(|s| s.pending.len()).sum()
    }

    /// The files a power cut now would leave, with their contents (no `-shm`).
    pub fn cut(&self, how: Cut, rng: &mut Rng) -> Vec<(DbFile, Vec<u8>)> {
        self.files
            .iter()
            .filter(|(file, _)| **file != DbFile::Shm)
            .map(|(file, state)| {
                let mut image = state.durable.clone();
                for change in &state.pending {
                    let kept = match how {
                        Cut::DropUnsynced => false,
                        Cut::SomeUnsynced => rng.chance(50),
                        Cut::NoPowerLoss => true,
                    };
                    if kept {
                        change.apply(&mut image);
                    }
                }
                (*file, image)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(file: DbFile, offset: u64, data: &[u8]) -> Event {
        Event::Write {
            file,
            offset,
            data: data.to_vec(),
        }
    }

    fn image(disk: &Disk, how: Cut, seed: u64, file: DbFile) -> Option<Vec<u8>> {
        disk.cut(how, &mut Rng::new(seed))
            .into_iter()
            .find(|(f, _)| *f == file)
            .map(|(_, bytes)| bytes)
    }

    #[test]
    fn a_write_survives_a_cut_only_once_its_file_was_fsynced() {
        let mut disk = Disk::new();
        disk.advance(&Event::Create(DbFile::Wal));
        disk.advance(&write(DbFile::Wal, 0, b"commit-1"));
        assert_eq!(
            image(&disk, Cut::DropUnsynced, 1, DbFile::Wal),
            Some(vec![])
        );
        disk.advance(&Event::Sync(DbFile::Wal));
        disk.advance(&write(DbFile::Wal, 8, b"commit-2"));
        // An fsync of another file does not make this one durable.
        disk.advance(&Event::Create(DbFile::Main));
        disk.advance(&Event::Sync(DbFile::Main));
        assert_eq!(
            image(&disk, Cut::DropUnsynced, 1, DbFile::Wal),
            Some(b"commit-1".to_vec())
        );
        assert_eq!(disk.pending(), 1);
        assert_eq!(
            image(&disk, Cut::NoPowerLoss, 1, DbFile::Wal),
            Some(b"commit-1commit-2".to_vec())
        );
    }

    #[test]
    fn an_unsynced_truncation_is_lost_and_a_synced_one_kept() {
        let mut disk = Disk::new();
        disk.advance(&Event::Create(DbFile::Wal));
        disk.advance(&write(DbFile::Wal, 0, b"frames"));
        disk.advance(&Event::Sync(DbFile::Wal));
        disk.advance(&Event::Truncate {
            file: DbFile::Wal,
            size: 0,
        });
        assert_eq!(
            image(&disk, Cut::DropUnsynced, 1, DbFile::Wal),
            Some(b"frames".to_vec())
        );
        disk.advance(&Event::Sync(DbFile::Wal));
        assert_eq!(
            image(&disk, Cut::DropUnsynced, 1, DbFile::Wal),
            Some(vec![])
        );
    }

    #[test]
    fn the_harsh_cut_keeps_an_ordered_subset_of_unsynced_writes() {
        let mut disk = Disk::new();
        disk.advance(&Event::Create(DbFile::Main));
        disk.advance(&write(DbFile::Main, 0, b"aaaa"));
        disk.advance(&Event::Sync(DbFile::Main));
        for (i, b) in [b"b", b"c", b"d", b"e"].iter().enumerate() {
            disk.advance(&write(DbFile::Main, i as u64, *b));
        }
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let bytes = image(&disk, Cut::SomeUnsynced, seed, DbFile::Main).unwrap();
            for (i, b) in bytes.iter().enumerate() {
                assert!(*b == b'a' || *b == b"bcde"[i], "{bytes:?}");
            }
            seen.insert(bytes);
        }
        assert!(seen.len() > 8, "only {} outcomes in 64 seeds", seen.len());
        assert!(seen.contains(b"aaaa".as_slice()) && seen.contains(b"bcde".as_slice()));
    }

    #[test]
    fn a_deleted_file_and_the_shm_are_gone_after_a_cut() {
        let mut disk = Disk::new();
        for file in [DbFile::Main, DbFile::Journal, DbFile::Shm] {
            disk.advance(&Event::Create(file));
            disk.advance(&write(file, 0, b"x"));
            disk.advance(&Event::Sync(file));
        }
        disk.advance(&Event::Unlink(DbFile::Journal));
        let files: Vec<DbFile> = disk
            .cut(Cut::DropUnsynced, &mut Rng::new(0))
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(files, vec![DbFile::Main]);
    }
}
