//! Rebuilding the in-memory replica at open from the snapshot and the op log's tail after it
//! (the whole log without a usable snapshot), and appending one op to the log.
//! The replay runs on a thread of its own so what it allocates goes back to the OS after.

use super::{decode_op, encode_op, snapshot, StoreError};
use crate::domain::{ActorId, Op, Replica};
use rusqlite::{params, Connection};
use std::time::Instant;

/// Free heap at the top of a malloc arena above this goes back to the kernel (glibc).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_TRIM_THRESHOLD_BYTES: i32 = 4 << 20;

/// Buffers from this size up get pages of their own from the kernel, mapped at `malloc` and
/// unmapped at `free` (glibc). Fixing the trim threshold also stops glibc from raising its
/// 128 KiB default as buffers are freed; at that default a decoded sync batch (500 ops, 164
/// KiB) was mapped and unmapped each time, faulting in zeroed pages and flushing every core's
/// TLB: a quarter of the sync engines' samples in `bench catch-up`. Batches this size and
/// smaller now come from the arenas and are reused.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_MMAP_THRESHOLD_BYTES: i32 = 1 << 20;

/// Replay the log for `open` without leaving the replay's garbage resident. The replay runs on a
/// thread of its own, so its allocations (decoded ops, half-full map nodes, the page cache it
/// fills) land in that thread's malloc arena; the packed replica is then cloned here and the
/// original dropped, which frees that arena as a whole, and the freed pages go back to the OS.
/// An idle node's resident memory is then its state, not what building it left behind.
pub(super) fn replay_packed(
    conn: Connection,
    actor: ActorId,
) -> Result<(Connection, Replica, Replayed), StoreError> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` and `malloc_trim` only change when glibc gives free pages back to the
    // kernel; they touch no live allocation and may be called at any time from any thread.
    // A fixed trim threshold replaces glibc's dynamic one, which the replay's large transient
    // buffers would raise to tens of MiB (and with it the size below which big buffers are
    // carved from the arena instead of mapped), so the freed replay arena would stay resident.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES);
    }
    let replayed = std::thread::Builder::new()
        .name("storenode-replay".into())
        .spawn(move || {
            let started = Instant::now();
            let replica = replay_counted(&conn, actor).and_then(|(mut r, replayed)| {
                let replayed_ms = started.elapsed().as_millis() as u64;
                r.compact();
                conn.execute_batch("PRAGMA shrink_memory")?;
                tracing::info!(
                    tail_ops = replayed.tail_ops,
                    replayed_ms,
                    packed_ms = started.elapsed().as_millis() as u64,
                    "replica loaded"
                );
                Ok((r, replayed))
            });
            (conn, replica, ArenaTrimmer::new())
        })
        .map_err(|e| StoreError::Thread(format!("cannot start the replay thread: {e}")))?
        .join()
        .map_err(|_| StoreError::Thread("the replay thread panicked".to_string()))?;
    let (conn, built, trimmer) = replayed;
    let (built, replayed) = built?;
    let started = Instant::now();
    let replica = built.clone();
    drop(built);
    drop(trimmer);
    tracing::debug!(
        copied_ms = started.elapsed().as_millis() as u64,
        "replica moved out of the replay arena"
    );
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: see `mallopt` above.
    unsafe {
        libc::malloc_trim(0);
    }
    Ok((conn, replica, replayed))
}

/// A buffer allocated on the replay thread and freed after the replay's replica, so glibc trims
/// the replay's arena. Freeing the replica leaves most of its small chunks in the arena's
/// fastbins; `malloc_trim` then merges them into the arena's top chunk, which it does not give
/// back for a thread's arena (measured: 13.6 MiB stayed resident at 100k SKUs). Freeing a chunk
/// of at least 64 KiB (glibc's `FASTBIN_CONSOLIDATION_THRESHOLD`) merges the fastbins and trims
/// that arena's top down to the trim threshold. Below the 128 KiB mmap threshold, so it is
/// carved from the arena rather than mapped.
struct ArenaTrimmer {
    _buffer: Vec<u8>,
}

impl ArenaTrimmer {
    const BYTES: usize = 96 << 10;

    fn new() -> ArenaTrimmer {
        ArenaTrimmer {
            _buffer: std::hint::black_box(vec![1u8; ArenaTrimmer::BYTES]),
        }
    }
}

/// What a replay covered, beside the replica it built.
#[derive(Debug, Clone, Copy)]
pub(super) struct Replayed {
    /// Ops applied on top of the snapshot (the log's tail; the whole log without one).
    pub tail_ops: u64,
    /// The log's last rowid the replica holds (0: none): what a snapshot of it is `through`.
    pub through: i64,
}

/// Rebuild the replica: from the snapshot, if there is a usable one, then every op logged
/// after it, in the order ops were applied.
pub(super) fn replay(conn: &Connection, actor: ActorId) -> Result<(Replica, i64), StoreError> {
    replay_counted(conn, actor).map(|(replica, replayed)| (replica, replayed.through))
}

/// `replay`, and what it covered. The snapshot is a cache: if the tail after it does not apply
/// (a snapshot whose `through` and state disagree), the whole log is replayed instead, and
/// the writer's next snapshot replaces the bad one.
pub(super) fn replay_counted(
    conn: &Connection,
    actor: ActorId,
) -> Result<(Replica, Replayed), StoreError> {
    let (replica, replayed) = replay_on_snapshot(conn, actor)?;
    // Rows of evictions this replica did not make (memory was rebuilt from an older
    // snapshot, or from the log alone) are not its history: its sales are in memory again.
    if let Err(e) = super::history::forget_after(conn, replica.state().evictions()) {
        tracing::warn!(error = %e, "stale history rows not deleted");
    }
    Ok((replica, replayed))
}

fn replay_on_snapshot(
    conn: &Connection,
    actor: ActorId,
) -> Result<(Replica, Replayed), StoreError> {
    let started = Instant::now();
    let Some((replica, through)) = snapshot::load(conn, &actor)? else {
        return replay_after(conn, Replica::new(actor), 0);
    };
    tracing::debug!(
        through,
        loaded_ms = started.elapsed().as_millis() as u64,
        "snapshot loaded"
    );
    match replay_after(conn, replica, through) {
        Err(e @ (StoreError::Replay { .. } | StoreError::Codec { .. })) => {
            tracing::warn!(
                through,
                error = %e,
                "the log's tail does not apply on the snapshot; replaying the whole log"
            );
            replay_after(conn, Replica::new(actor), 0)
        }
        replayed => replayed,
    }
}

/// Rebuild the replica from every op of the log, ignoring any snapshot (to check one).
pub fn replay_whole(conn: &Connection, actor: ActorId) -> Result<Replica, StoreError> {
    replay_after(conn, Replica::new(actor), 0).map(|(replica, _)| replica)
}

/// Apply to `replica` the ops logged after rowid `through`, in log order.
fn replay_after(
    conn: &Connection,
    mut replica: Replica,
    through: i64,
) -> Result<(Replica, Replayed), StoreError> {
    let mut stmt =
        conn.prepare("SELECT actor, seq, body, rowid FROM ops WHERE rowid > ?1 ORDER BY rowid")?;
    let mut rows = stmt.query(params![through])?;
    let mut replayed = Replayed {
        tail_ops: 0,
        through,
    };
    while let Some(row) = rows.next()? {
        let who: String = row.get(0)?;
        let seq: i64 = row.get(1)?;
        let body: Vec<u8> = row.get(2)?;
        replayed.through = row.get(3)?;
        let op = decode_op(&body).map_err(|source| StoreError::Codec {
            actor: who.clone(),
            seq: seq as u64,
            source,
        })?;
        super::history::recall_op(conn, &mut replica, &op)?;
        replica.apply(&op).map_err(|source| StoreError::Replay {
            actor: who,
            seq: seq as u64,
            source,
        })?;
        replayed.tail_ops += 1;
    }
    Ok((replica, replayed))
}

/// The op log's insert, prepared once for a whole group transaction: a group writes up to
/// thousands of op rows, and taking the statement from the cache and giving it back for each
/// one was a tenth of a catch-up's ingest.
pub(super) struct OpRows<'c>(rusqlite::CachedStatement<'c>);

impl<'c> OpRows<'c> {
    pub(super) fn new(conn: &'c rusqlite::Connection) -> rusqlite::Result<OpRows<'c>> {
        conn.prepare_cached(
            "INSERT INTO ops (actor, seq, hlc_wall, hlc_counter, kind, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map(OpRows)
    }

    /// Insert one op into the log.
    pub(super) fn insert(&mut self, op: &Op) -> rusqlite::Result<()> {
        self.0.execute(params![
            op.actor.as_str(),
            op.seq as i64,
            op.hlc.wall_ms() as i64,
            op.hlc.counter(),
            op.payload.kind(),
            encode_op(op),
        ])?;
        Ok(())
    }
}
