//! The I/O log written by `iolog.c`: records of writes, truncations, fsyncs, creations and
//! deletions of the database's files, and of the process's stdout, in the order they happened.
//! Decoding never panics: a short or unknown record is an error naming its offset.

/// The database's files, numbered as `iolog.c` numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DbFile {
    Main,
    Wal,
    Shm,
    Journal,
}

impl DbFile {
    pub const ALL: [DbFile; 4] = [DbFile::Main, DbFile::Wal, DbFile::Shm, DbFile::Journal];

    /// What SQLite appends to the database's name for this file.
    pub fn suffix(self) -> &'static str {
        match self {
            DbFile::Main => "",
            DbFile::Wal => "-wal",
            DbFile::Shm => "-shm",
            DbFile::Journal => "-journal",
        }
    }

    fn from_byte(b: u8) -> Option<DbFile> {
        DbFile::ALL.get(usize::from(b)).copied()
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The file came into existence (opened with `O_CREAT` while absent).
    Create(DbFile),
    /// `pwrite`/`write` of `data` at `offset`; in the page cache only, until a `Sync`.
    Write {
        file: DbFile,
        offset: u64,
        data: Vec<u8>,
    },
    /// `fsync`/`fdatasync` returned: everything written to `file` before it is durable.
    Sync(DbFile),
    /// `ftruncate` (or `O_TRUNC`) to `size`.
    Truncate { file: DbFile, size: u64 },
    /// The file was deleted.
    Unlink(DbFile),
    /// Bytes written to stdout, where the soak prints its acks.
    Stdout(Vec<u8>),
}

const K_CREATE: u8 = 1;
const K_WRITE: u8 = 2;
const K_SYNC: u8 = 3;
const K_TRUNCATE: u8 = 4;
const K_UNLINK: u8 = 5;
const K_STDOUT: u8 = 6;
const HEAD_BYTES: usize = 18;

/// Decode a whole log.
pub fn decode(bytes: &[u8]) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let head = bytes
            .get(at..at + HEAD_BYTES)
            .ok_or_else(|| format!("record at byte {at}: header cut short"))?;
        let kind = head[0];
        let file = DbFile::from_byte(head[1]);
        let offset = u64::from_le_bytes(head[2..10].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(head[10..18].try_into().expect("8 bytes"));
        let body_start = at + HEAD_BYTES;
        let carries_data = kind == K_WRITE || kind == K_STDOUT;
        let body_len = if carries_data {
            usize::try_from(len).map_err(|_| format!("record at byte {at}: length {len}"))?
        } else {
            0
        };
        let body = bytes
            .get(body_start..body_start + body_len)
            .ok_or_else(|| format!("record at byte {at}: {len} data bytes cut short"))?;
        let need_file = || file.ok_or_else(|| format!("record at byte {at}: file {}", head[1]));
        events.push(match kind {
            K_CREATE => Event::Create(need_file()?),
            K_WRITE => Event::Write {
                file: need_file()?,
                offset,
                data: body.to_vec(),
            },
            K_SYNC => Event::Sync(need_file()?),
            K_TRUNCATE => Event::Truncate {
                file: need_file()?,
                size: offset,
            },
            K_UNLINK => Event::Unlink(need_file()?),
            K_STDOUT => Event::Stdout(body.to_vec()),
            other => return Err(format!("record at byte {at}: unknown kind {other}")),
        });
        at = body_start + body_len;
    }
    Ok(events)
}

/// The acks in the log's stdout: `(index of the event that completed the line, seq)`.
/// An ack counts from the write that printed its newline.
pub fn acks(events: &[Event], actor: &str) -> Result<Vec<(usize, u64)>, String> {
    let mut line = Vec::new();
    let mut acks = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let Event::Stdout(bytes) = event else {
            continue;
        };
        for &b in bytes {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            line.clear();
            let mut parts = text.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("ack"), Some(a), Some(seq)) if a == actor => {
                    let seq = seq.parse().map_err(|_| format!("bad ack line {text:?}"))?;
                    acks.push((i, seq));
                }
                // Other output (`migrate` says what it did) is not an ack.
                _ => {}
            }
        }
    }
    Ok(acks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, file: u8, offset: u64, data: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, file];
        r.extend(offset.to_le_bytes());
        r.extend((data.len() as u64).to_le_bytes());
        r.extend(data);
        r
    }

    #[test]
    fn a_log_decodes_to_its_events_in_order() {
        let mut bytes = record(K_CREATE, 1, 0, b"");
        bytes.extend(record(K_WRITE, 1, 4096, b"frame"));
        bytes.extend(record(K_SYNC, 1, 0, b""));
        bytes.extend(record(K_STDOUT, 255, 0, b"ack store:x 1\nack st"));
        bytes.extend(record(K_STDOUT, 255, 0, b"ore:x 2\n"));
        let events = decode(&bytes).unwrap();
        assert_eq!(
            events[1],
            Event::Write {
                file: DbFile::Wal,
                offset: 4096,
                data: b"frame".to_vec()
            }
        );
        assert_eq!(acks(&events, "store:x").unwrap(), vec![(3, 1), (4, 2)]);
    }

    #[test]
    fn a_cut_short_or_unknown_record_is_an_error_naming_its_offset() {
        let whole = record(K_WRITE, 0, 0, b"page");
        let e = decode(&whole[..whole.len() - 1]).unwrap_err();
        assert!(e.contains("record at byte 0"), "{e}");
        let e = decode(&record(9, 0, 0, b"")).unwrap_err();
        assert!(e.contains("unknown kind 9"), "{e}");
        let e = decode(&record(K_SYNC, 7, 0, b"")).unwrap_err();
        assert!(e.contains("file 7"), "{e}");
    }
}
