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
pub const FORMAT: u8 = 7;

/// A writer idle with at least this many ops logged since the last snapshot writes one.
pub const TAIL_OPS_IDLE_MIN: u64 = 1_000;
/// A busy writer writes one between groups once this many ops were logged since the last: a
/// start then replays at most about this many ops (more for a large state, see below).
pub const TAIL_OPS_MAX: u64 = 20_000;
/// Snapshot bytes written per op logged, at most, on average: a large state is snapshotted
/// less often (its tail grows to `bytes / SNAPSHOT_BYTES_PER_OP_MAX` ops), so writing
/// snapshots never costs more than a few times the log itself. A clean close always writes
/// one, so only a crash replays a long tail.
pub const SNAPSHOT_BYTES_PER_OP_MAX: u64 = 512;

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
    let body = encode(replica);
    let bytes = body.len() as u64;
    conn.prepare_cached(
        "INSERT INTO snapshot (id, format, through, written_ms, body)
         VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET format = excluded.format, through = excluded.through,
             written_ms = excluded.written_ms, body = excluded.body",
    )?
    .execute(params![i64::from(FORMAT), through, now_ms as i64, body])?;
    Ok(Some(bytes))
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

/// When the writer should write the next snapshot: counts the ops logged since the last,
/// against thresholds that grow with the last snapshot's size.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    tail_ops: u64,
    /// Size of the last snapshot written (0 before the first this process wrote).
    last_bytes: u64,
}

impl Cadence {
    /// `tail_ops` ops are in the log after the snapshot the node started from (all of them
    /// without one), which is `last_bytes` long (0: none).
    pub fn new(tail_ops: u64, last_bytes: u64) -> Cadence {
        Cadence {
            tail_ops,
            last_bytes,
        }
    }

    /// A group committed `ops` more ops.
    pub fn logged(&mut self, ops: usize) {
        self.tail_ops = self.tail_ops.saturating_add(ops as u64);
    }

    /// The snapshot was deleted: the next chance writes one.
    pub fn dropped(&mut self) {
        self.tail_ops = u64::MAX;
    }

    /// A snapshot of everything committed, `bytes` long, was written.
    pub fn written(&mut self, bytes: u64) {
        self.tail_ops = 0;
        self.last_bytes = bytes;
    }

    /// Ops the tail may grow to before a snapshot is due, at least `floor`.
    fn threshold(&self, floor: u64) -> u64 {
        floor.max(self.last_bytes / SNAPSHOT_BYTES_PER_OP_MAX)
    }

    /// Ops logged since the last snapshot.
    pub fn tail_ops(&self) -> u64 {
        self.tail_ops
    }

    /// Write one now, between groups of a busy writer.
    pub fn due_busy(&self) -> bool {
        self.tail_ops >= self.threshold(TAIL_OPS_MAX)
    }

    /// Write one now, the writer being idle.
    pub fn due_idle(&self) -> bool {
        self.tail_ops >= self.threshold(TAIL_OPS_IDLE_MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_due_when_idle_after_the_idle_minimum_and_always_after_the_maximum() {
        let mut c = Cadence::new(0, 0);
        assert!(!c.due_idle() && !c.due_busy());
        c.logged(TAIL_OPS_IDLE_MIN as usize);
        assert!(c.due_idle() && !c.due_busy());
        c.logged((TAIL_OPS_MAX - TAIL_OPS_IDLE_MIN) as usize);
        assert!(c.due_busy());
        c.written(1_000);
        assert_eq!(c.tail_ops(), 0);
        c.dropped();
        assert!(c.due_busy());
    }

    #[test]
    fn a_large_state_is_snapshotted_after_a_tail_in_proportion_to_its_size() {
        let mut c = Cadence::new(0, 0);
        c.written(100 * TAIL_OPS_MAX * SNAPSHOT_BYTES_PER_OP_MAX);
        c.logged(TAIL_OPS_MAX as usize);
        assert!(!c.due_idle() && !c.due_busy());
        c.logged((99 * TAIL_OPS_MAX) as usize);
        assert!(c.due_idle() && c.due_busy());
    }

    #[test]
    fn bytes_that_are_not_a_snapshot_are_refused_not_misread() {
        let actor = ActorId::parse("store:a").unwrap();
        assert!(decode(actor.clone(), &[]).is_err());
        assert!(decode(actor, &[0xff; 7]).is_err());
    }
}
