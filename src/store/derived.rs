//! Derived rows behind the log: the commit that acknowledges an op writes the op row (and an
//! invoice's journal record); the materialised rows it changed (stock, catalog, orders, sales,
//! customers, carts) are only named here and written later, in bigger batches, by the same
//! writer.
//!
//! Invariants: a batch is written from the in-memory replica, which then matches the file, and
//! moves the `derived_through` mark (the log's last rowid, in `meta`) in the same transaction,
//! so every op at or below the mark has its rows on disk. Keys stay pending until the
//! transaction carrying their rows has committed. After a crash, `recover` names the rows of
//! every op above the mark and writes them from the replayed replica before the node serves
//! anyone. Acknowledged = fsynced op row is unchanged: the op log is the source of truth and
//! the rows are a function of it.

use super::materialize::{self, RowKey};
use super::{decode_op, StoreError};
use crate::domain::{Op, State};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::BTreeSet;

/// Pending keys that make the writer write them in the group it is committing.
pub const DERIVED_KEYS_MAX: usize = 4096;
/// An idle writer writes pending rows after this long without a request.
pub const DERIVED_IDLE_MS: u64 = 20;

/// Move the mark to the log's end (`WHERE true`: SQLite's parser would otherwise take the
/// `ON` of the upsert for a join constraint).
const MARK_SQL: &str = "INSERT INTO meta (key, value)
     SELECT 'derived_through', coalesce(max(rowid), 0) FROM ops WHERE true
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// The derived rows named by committed (or committing) ops and not written yet.
#[derive(Debug, Default)]
pub struct Pending {
    /// Sorted, so a batch walks each table's pages in key order.
    keys: BTreeSet<RowKey>,
}

impl Pending {
    /// Name the rows `op` changes.
    pub fn note(&mut self, op: &Op) {
        materialize::keys_for(op, |k| {
            self.keys.insert(k);
        });
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Enough keys gathered that the group being committed should carry them.
    pub fn due(&self) -> bool {
        self.keys.len() >= DERIVED_KEYS_MAX
    }

    /// Write every pending row as `state` has it, and the mark, inside the caller's open
    /// transaction. The keys stay pending: call `clear` once that transaction committed.
    pub fn write(&self, conn: &Connection, state: &State) -> rusqlite::Result<()> {
        let mut rows = materialize::RowWriter::new(conn)?;
        for key in &self.keys {
            rows.write(state, key)?;
        }
        conn.prepare_cached(MARK_SQL)?.execute([])?;
        Ok(())
    }

    /// The rows written by the last `write` are committed.
    pub fn clear(&mut self) {
        self.keys.clear();
    }
}

/// The log's rowid up to which every op's rows are written (`None`: no mark yet).
pub fn mark(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'derived_through'",
        [],
        |r| r.get(0),
    )
    .optional()
}

/// At open, after the replay: write the rows of every op above the mark from `state` (the
/// replica replayed from the whole log) and move the mark. A file without a mark was written
/// before rows were deferred (every row written with its op) or is new: it gets the mark at
/// the log's end. Returns how many ops were above the mark.
pub fn recover(conn: &mut Connection, state: &State) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(mark) = mark(&tx)? else {
        tx.execute(MARK_SQL, [])?;
        tx.commit()?;
        return Ok(0);
    };
    let mut pending = Pending::default();
    let mut behind = 0u64;
    {
        let mut stmt = tx.prepare("SELECT actor, seq, body FROM ops WHERE rowid > ?1")?;
        let mut rows = stmt.query(params![mark])?;
        while let Some(row) = rows.next()? {
            let body: Vec<u8> = row.get(2)?;
            let op = decode_op(&body).map_err(|source| StoreError::Codec {
                actor: row.get(0).unwrap_or_default(),
                seq: row.get::<_, i64>(1).unwrap_or_default() as u64,
                source,
            })?;
            pending.note(&op);
            behind += 1;
        }
    }
    if behind > 0 {
        pending.write(&tx, state)?;
        tx.commit()?;
        tracing::info!(
            ops = behind,
            "derived rows of the log's tail rewritten at open"
        );
    }
    Ok(behind)
}
