//! Snapshots of the replica: the node starts from the last one plus the ops logged after it
//! (the log's tail) instead of replaying every op since the first.
//!
//! Invariants: a snapshot is written from the in-memory replica inside a writer transaction,
//! with `through` the last rowid of the ops that replica holds (the writer tracks it), and only
//! if that is still the log's last rowid in that same transaction, so it is exactly the replica
//! after every op up to `through` in log order (the order the writer applied them), and it
//! commits or rolls back with them. It is a cache of the log, never its source: one that
//! does not decode, was written in another `FORMAT`, or whose tail does not apply on it, is
//! ignored (with a warning) and the whole log is replayed. An erasure deletes it in the
//! erasure's transaction (`secure_delete` zeroes its bytes); the next one is written from
//! memory, which keeps nothing personal of an erased customer.

use crate::domain::version::VersionVector;
use crate::domain::{ActorId, Hlc, Replica, State};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// Layout of the encoded replica. The bytes are postcard over the domain's own types, which
/// is not self-describing: change this whenever a type inside `State` changes shape (the
/// golden case in tests/formats.rs fails when one does), so old snapshots are ignored rather
/// than misread.
pub const FORMAT: u8 = 8;

/// A writer idle with at least this many ops logged since the last snapshot writes one.
pub const TAIL_OPS_IDLE_MIN: u64 = 1_000;
/// A busy writer writes one between groups once this many ops were logged since the last: a
/// start then replays at most about this many ops (more for a large state, see below).
pub const TAIL_OPS_MAX: u64 = 20_000;
/// A busy writer whose next request comes before it idles (`IDLE_MS` in the writer: a
/// catch-up's ingests, submitters that never pause) puts off a due snapshot until the tail is this long: a snapshot stalls
/// every request behind it, and at a small state it took 12 % of a catch-up's ingest when due
/// every `TAIL_OPS_MAX` ops. A start after a crash then replays up to this many ops where the
/// state is small; a large state's own threshold is longer still.
pub const TAIL_OPS_BACKLOG_MAX: u64 = 4 * TAIL_OPS_MAX;
/// Snapshot bytes written per op logged, at most, on average: a large state is snapshotted
/// less often (its tail grows to `bytes / SNAPSHOT_BYTES_PER_OP_MAX` ops), so writing
/// snapshots costs about what the log itself does (~230 B of file per op). A clean close
/// always writes one, so only a crash replays a long tail: at 100k SKUs (~17 MiB) that is
/// ~140k ops, 1.7 s to open on the bench machine (`bench footprint`, open_after_crash). At
/// 512 B the tail was 35k ops (0.74 s) and snapshots took a sixth of the writer's CPU.
pub const SNAPSHOT_BYTES_PER_OP_MAX: u64 = 128;

/// A busy writer makes an eviction pass (`store::history`: causally stable sales and
/// finished orders leave memory) once this many ops were logged since its last pass, on its
/// own cadence, not the snapshot's (every 20k-30k ops at 100k SKUs): at the mixed workload's
/// ~0.4 sales per op, memory then holds at most ~1,600 sales (~0.8 MiB) more than it keeps
/// on purpose.
pub const EVICT_PASS_OPS: u64 = 4_096;

/// What is encoded, borrowed from the live replica.
#[derive(Serialize)]
struct BodyRef<'a> {
    clock: Hlc,
    seen: &'a VersionVector,
    state: &'a State,
}

/// What is decoded: the same fields, owned.
#[derive(Deserialize)]
struct Body {
    clock: Hlc,
    seen: VersionVector,
    state: State,
}

/// Why a stored snapshot cannot be used (the log is then replayed whole).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Written by a binary with another layout.
    #[error("snapshot format {found}, this binary reads {FORMAT}")]
    Format { found: i64 },
    /// The bytes do not decode as this binary's replica.
    #[error("snapshot does not decode: {0}")]
    Decode(#[from] postcard::Error),
}

/// The replica's clock, version vector and state as bytes.
pub fn encode(replica: &Replica) -> Vec<u8> {
    let body = BodyRef {
        clock: replica.clock(),
        seen: replica.version(),
        state: replica.state(),
    };
    // Serializing plain data into a growing Vec cannot fail.
    postcard::to_allocvec(&body).unwrap_or_default()
}

/// `actor`'s replica from bytes written by `encode`.
pub fn decode(actor: ActorId, bytes: &[u8]) -> Result<Replica, SnapshotError> {
    let body: Body = postcard::from_bytes(bytes)?;
    Ok(Replica::restore(actor, body.clock, body.seen, body.state))
}

/// Write `replica` as the snapshot through rowid `through`, inside the caller's open
/// transaction: `replica` must hold exactly the log's ops up to `through` (the writer's own
/// record of what memory holds, never the log's last rowid as found: a dropped `Node`'s writer
/// finishing its snapshot while a reopened node already logged more ops would otherwise claim
/// ops its replica never saw). Returns the snapshot's size in bytes, or `None` without writing
/// when the log holds ops after `through` that did not come through this replica.
///
/// The bytes are streamed into the row (`stream`), never held whole in memory: with 100k SKUs
/// a snapshot is ~15 MiB, and building it in one `Vec` that SQLite then copied again when
/// bound cost the writer ~3x that in transient heap each time one was due under load.
pub fn write(
    conn: &Connection,
    replica: &Replica,
    through: i64,
    now_ms: u64,
) -> rusqlite::Result<Option<u64>> {
    let last = last_rowid(conn)?;
    if last != through {
        tracing::warn!(
            through,
            last,
            "the log holds ops this replica does not; snapshot not written"
        );
        return Ok(None);
    }
    let body = BodyRef {
        clock: replica.clock(),
        seen: replica.version(),
        state: replica.state(),
    };
    // Counting plain data cannot fail.
    let bytes = postcard::serialize_with_flavor(&body, postcard::ser_flavors::Size::default())
        .unwrap_or_default() as u64;
    // Delete, then insert: an upsert would have SQLite read the old row, the whole previous
    // snapshot, into its heap to rewrite it (tens of MiB at 100k SKUs, under load every few
    // seconds). The zeroblob is written as zeroed pages without a buffer of its size.
    delete(conn)?;
    conn.prepare_cached(
        "INSERT INTO snapshot (id, format, through, written_ms, body)
         VALUES (1, ?1, ?2, ?3, zeroblob(?4))",
    )?
    .execute(params![
        i64::from(FORMAT),
        through,
        now_ms as i64,
        bytes as i64
    ])?;
    stream(conn, &body, bytes)?;
    Ok(Some(bytes))
}

/// Bytes the encoder hands SQLite at a time while streaming a snapshot into its row.
const STREAM_CHUNK_BYTES: usize = 64 * 1024;

/// Encode `body` straight into the snapshot row's `body`, already `bytes` long (zeroes), a
/// chunk at a time. A write that fails, or an encoding of another length than counted, is an
/// error: the caller's transaction then rolls back and the old snapshot stays.
fn stream(conn: &Connection, body: &BodyRef, bytes: u64) -> rusqlite::Result<()> {
    let blob = conn.blob_open(rusqlite::MAIN_DB, c"snapshot", c"body", 1, false)?;
    let mut failed = None;
    let sink = BlobSink {
        blob,
        buf: Vec::with_capacity(STREAM_CHUNK_BYTES),
        at: 0,
        failed: &mut failed,
    };
    let streamed = postcard::serialize_with_flavor(body, sink);
    if let Some(e) = failed {
        return Err(e);
    }
    let at = streamed.map_err(StreamError::Encode)?;
    if at as u64 != bytes {
        let (counted, written) = (bytes, at as u64);
        return Err(StreamError::Length { counted, written }.into());
    }
    Ok(())
}

/// Why a snapshot could not be streamed into its row, beside SQLite's own errors (as a
/// `rusqlite::Error` for the writer, which logs it and retries at the next chance).
#[derive(Debug, thiserror::Error)]
enum StreamError {
    /// The replica did not encode.
    #[error("snapshot does not encode: {0}")]
    Encode(postcard::Error),
    /// The encoding was not as long as counted.
    #[error("snapshot encoded to {written} bytes, counted {counted}")]
    Length { counted: u64, written: u64 },
}

impl From<StreamError> for rusqlite::Error {
    fn from(e: StreamError) -> rusqlite::Error {
        rusqlite::Error::ToSqlConversionFailure(Box::new(e))
    }
}

/// A postcard flavor writing into an open blob through a `STREAM_CHUNK_BYTES` buffer; its
/// output is the number of bytes written.
struct BlobSink<'c, 'f> {
    blob: rusqlite::blob::Blob<'c>,
    buf: Vec<u8>,
    /// Bytes written to the blob so far.
    at: usize,
    /// The write SQLite refused, if one was (postcard's errors cannot carry it).
    failed: &'f mut Option<rusqlite::Error>,
}

impl BlobSink<'_, '_> {
    /// Hand the buffered bytes to SQLite.
    fn drain(&mut self) -> postcard::Result<()> {
        if self.failed.is_some() {
            return Err(postcard::Error::SerializeBufferFull);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.blob.write_at(&self.buf, self.at) {
            *self.failed = Some(e);
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.at += self.buf.len();
        self.buf.clear();
        Ok(())
    }
}

impl postcard::ser_flavors::Flavor for BlobSink<'_, '_> {
    type Output = usize;

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.buf.push(data);
        if self.buf.len() >= STREAM_CHUNK_BYTES {
            self.drain()?;
        }
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= STREAM_CHUNK_BYTES {
            self.drain()?;
        }
        Ok(())
    }

    fn finalize(mut self) -> postcard::Result<usize> {
        self.drain()?;
        Ok(self.at)
    }
}

/// The log's last rowid, read in the caller's transaction (0: an empty log).
pub fn last_rowid(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(rowid), 0) FROM ops")?
        .query_row([], |r| r.get(0))
}

/// Size of the stored snapshot in bytes (0: none).
pub fn stored_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let bytes: Option<i64> = conn
        .query_row("SELECT length(body) FROM snapshot WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(bytes.map_or(0, |b| b.max(0) as u64))
}

/// Drop the snapshot (an erasure: it may hold the customer's data).
pub fn delete(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM snapshot")?.execute([])?;
    Ok(())
}

/// The stored snapshot as `actor`'s replica and the rowid it covers the log through; `None`
/// when there is none or it cannot be used (said in the log, the caller replays the log).
pub fn load(conn: &Connection, actor: &ActorId) -> rusqlite::Result<Option<(Replica, i64)>> {
    let row: Option<(i64, i64, Vec<u8>)> = conn
        .query_row(
            "SELECT format, through, body FROM snapshot WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((format, through, body)) = row else {
        return Ok(None);
    };
    let decoded = if format == i64::from(FORMAT) {
        decode(actor.clone(), &body)
    } else {
        Err(SnapshotError::Format { found: format })
    };
    match decoded {
        Ok(replica) => Ok(Some((replica, through))),
        Err(e) => {
            tracing::warn!(error = %e, "snapshot ignored; replaying the whole log");
            Ok(None)
        }
    }
}

/// When the writer should write the next snapshot, and make its next eviction pass: counts
/// the ops logged since the last of each, against thresholds (the snapshot's grows with the
/// last snapshot's size).
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    tail_ops: u64,
    /// Size of the last snapshot written (0 before the first this process wrote).
    last_bytes: u64,
    /// Ops logged since the last eviction pass.
    pass_ops: u64,
    /// Records left memory since the last snapshot: it no longer matches memory.
    evicted: bool,
}

impl Cadence {
    /// `tail_ops` ops are in the log after the snapshot the node started from (all of them
    /// without one), which is `last_bytes` long (0: none).
    pub fn new(tail_ops: u64, last_bytes: u64) -> Cadence {
        Cadence {
            tail_ops,
            last_bytes,
            pass_ops: tail_ops,
            evicted: false,
        }
    }

    /// A group committed `ops` more ops.
    pub fn logged(&mut self, ops: usize) {
        self.tail_ops = self.tail_ops.saturating_add(ops as u64);
        self.pass_ops = self.pass_ops.saturating_add(ops as u64);
    }

    /// The snapshot was deleted: the next chance writes one.
    pub fn dropped(&mut self) {
        self.tail_ops = u64::MAX;
    }

    /// A snapshot of everything committed, `bytes` long, was written.
    pub fn written(&mut self, bytes: u64) {
        self.tail_ops = 0;
        self.last_bytes = bytes;
        self.evicted = false;
    }

    /// An eviction pass ran and moved `evicted` sales and orders out of memory.
    pub fn passed(&mut self, evicted: usize) {
        self.pass_ops = 0;
        self.evicted |= evicted > 0;
    }

    /// Ops the tail may grow to before a snapshot is due, at least `floor`.
    fn threshold(&self, floor: u64) -> u64 {
        floor.max(self.last_bytes / SNAPSHOT_BYTES_PER_OP_MAX)
    }

    /// The longest tail a busy writer lets grow after a snapshot `bytes` long: what a start
    /// after a crash replays at worst.
    pub fn longest_tail(bytes: u64) -> u64 {
        Cadence::new(0, bytes).threshold(TAIL_OPS_BACKLOG_MAX)
    }

    /// Ops logged since the last snapshot.
    pub fn tail_ops(&self) -> u64 {
        self.tail_ops
    }

    /// The last snapshot lags memory: ops were logged, or records left memory, since.
    pub fn stale(&self) -> bool {
        self.tail_ops > 0 || self.evicted
    }

    /// Write one now, between groups of a busy writer; `backlog`: the next request came
    /// before the writer idled.
    pub fn due_busy(&self, backlog: bool) -> bool {
        let floor = if backlog {
            TAIL_OPS_BACKLOG_MAX
        } else {
            TAIL_OPS_MAX
        };
        self.tail_ops >= self.threshold(floor)
    }

    /// Write one now, the writer being idle.
    pub fn due_idle(&self) -> bool {
        self.tail_ops >= self.threshold(TAIL_OPS_IDLE_MIN)
    }

    /// Make an eviction pass now, between groups of a busy writer, whatever the snapshot's
    /// cadence: sales and orders leave memory at the pace they arrive.
    pub fn due_pass(&self) -> bool {
        self.pass_ops >= EVICT_PASS_OPS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_due_when_idle_after_the_idle_minimum_and_always_after_the_maximum() {
        let mut c = Cadence::new(0, 0);
        assert!(!c.due_idle() && !c.due_busy(false));
        c.logged(TAIL_OPS_IDLE_MIN as usize);
        assert!(c.due_idle() && !c.due_busy(false));
        c.logged((TAIL_OPS_MAX - TAIL_OPS_IDLE_MIN) as usize);
        assert!(c.due_busy(false));
        c.written(1_000);
        assert_eq!(c.tail_ops(), 0);
        c.dropped();
        assert!(c.due_busy(false) && c.due_busy(true));
    }

    #[test]
    fn a_writer_with_a_backlog_puts_a_due_snapshot_off_to_a_longer_tail() {
        let mut c = Cadence::new(0, 1_000);
        c.logged(TAIL_OPS_MAX as usize);
        assert!(c.due_busy(false) && !c.due_busy(true));
        c.logged((TAIL_OPS_BACKLOG_MAX - TAIL_OPS_MAX) as usize);
        assert!(c.due_busy(true));
        assert_eq!(Cadence::longest_tail(1_000), TAIL_OPS_BACKLOG_MAX);
        let large = 10 * TAIL_OPS_BACKLOG_MAX * SNAPSHOT_BYTES_PER_OP_MAX;
        assert_eq!(Cadence::longest_tail(large), 10 * TAIL_OPS_BACKLOG_MAX);
    }

    #[test]
    fn a_large_state_is_snapshotted_after_a_tail_in_proportion_to_its_size() {
        let mut c = Cadence::new(0, 0);
        c.written(100 * TAIL_OPS_MAX * SNAPSHOT_BYTES_PER_OP_MAX);
        c.logged(TAIL_OPS_MAX as usize);
        assert!(!c.due_idle() && !c.due_busy(false));
        c.logged((99 * TAIL_OPS_MAX) as usize);
        assert!(c.due_idle() && c.due_busy(false) && c.due_busy(true));
    }

    #[test]
    fn an_eviction_pass_is_due_on_its_own_cadence_and_makes_the_snapshot_stale() {
        let mut c = Cadence::new(0, 0);
        assert!(!c.due_pass() && !c.stale());
        c.logged(EVICT_PASS_OPS as usize);
        assert!(c.due_pass() && !c.due_busy(false));
        c.written(1_000);
        assert!(c.due_pass(), "a snapshot is not a pass");
        c.passed(0);
        assert!(!c.due_pass() && !c.stale(), "nothing left memory");
        c.passed(3);
        assert!(c.stale(), "records left memory after the snapshot");
        c.written(1_000);
        assert!(!c.stale());
    }

    #[test]
    fn a_snapshot_streamed_into_its_row_is_the_encoding_and_loads_back() {
        use crate::domain::{Ean13, Payload, Sku};
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::schema::migrate(&mut conn, 0).unwrap();
        let mut hq = Replica::new(ActorId::hq());
        // Enough products that the encoding spans several chunks.
        for i in 0..3_000u64 {
            let put = Payload::CatalogPut {
                sku: Sku::parse(&format!("SKU-{i:06}")).unwrap(),
                ean: Ean13::parse("8412345678905").unwrap(),
                name: format!("Producto de prueba {i}"),
                price_cents: 100 + i as i64,
                vat_bp: 2100,
            };
            hq.prepare(1_700_000_000_000 + i, put).unwrap();
        }
        let encoded = encode(&hq);
        assert!(encoded.len() > 2 * STREAM_CHUNK_BYTES);
        for _ in 0..2 {
            // Twice: the second rewrites the row in place.
            let bytes = write(&conn, &hq, 0, 1).unwrap();
            assert_eq!(bytes, Some(encoded.len() as u64));
        }
        let body: Vec<u8> = conn
            .query_row("SELECT body FROM snapshot WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        assert!(
            body == encoded,
            "the streamed bytes differ from the encoding"
        );
        let (back, through) = load(&conn, hq.actor()).unwrap().unwrap();
        assert_eq!((back.digest(), through), (hq.digest(), 0));
    }

    #[test]
    fn bytes_that_are_not_a_snapshot_are_refused_not_misread() {
        let actor = ActorId::parse("store:a").unwrap();
        assert!(decode(actor.clone(), &[]).is_err());
        assert!(decode(actor, &[0xff; 7]).is_err());
    }
}
