//! Erasure on disk: the op log of a replica that applied a `CustomerErase` keeps no personal
//! data of that customer (DESIGN.md section 14).
//!
//! The writer stores every op through `stored_form` (anonymous when its customer is erased
//! here) and, in the same transaction as an erasure, rewrites the customer's ops already in
//! the log (`rewrite_log`). `PRAGMA secure_delete` (set on the writer) zeroes the bytes the
//! rewrite frees, and the writer truncates the WAL after a group that erased someone, so old
//! page images do not outlive the commit either.

use super::{decode_op, encode_op};
use crate::domain::erasure::to_store;
use crate::domain::{CustomerId, Op, Payload, State};
use rusqlite::{params, Transaction};
use std::borrow::Cow;

/// The form of `op` to write to the log, given the state after applying it.
pub fn stored_form<'a>(op: &'a Op, state: &State) -> Cow<'a, Op> {
    match to_store(op, state) {
        Some(anon) => Cow::Owned(anon),
        None => Cow::Borrowed(op),
    }
}

/// The customer `op` erases, if it is an erasure.
pub fn erased_by(op: &Op) -> Option<&CustomerId> {
    match &op.payload {
        Payload::CustomerErase { customer } => Some(customer),
        _ => None,
    }
}

/// The ops that can carry personal data; the literal kinds let SQLite use the partial index
/// `ops_personal` (migration 0007), which a bound parameter would not.
const PERSONAL_OPS_SQL: &str =
    "SELECT rowid, body FROM ops WHERE kind IN ('customer_update', 'consent_set')";

/// Rewrite, in place, every op in the log that carries personal data of `customer`, who is
/// erased in `state`. Returns how many ops were rewritten.
///
/// Reads only the kinds that can carry personal data (through a partial index kept only for
/// those ops), decoding each to find the customer's: erasures are rare.
pub fn rewrite_log(
    tx: &Transaction,
    state: &State,
    customer: &CustomerId,
) -> rusqlite::Result<usize> {
    let mut found: Vec<(i64, Vec<u8>)> = Vec::new();
    {
        let mut stmt = tx.prepare_cached(PERSONAL_OPS_SQL)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let body: Vec<u8> = row.get(1)?;
            // An op that does not decode was refused at open; nothing of it can be read here.
            let Ok(op) = decode_op(&body) else { continue };
            if op.payload.customer() != Some(customer) {
                continue;
            }
            if let Some(anon) = to_store(&op, state) {
                found.push((row.get(0)?, encode_op(&anon)));
            }
        }
    }
    let mut update = tx.prepare_cached("UPDATE ops SET body = ?2 WHERE rowid = ?1")?;
    for (rowid, body) in &found {
        update.execute(params![rowid, body])?;
    }
    Ok(found.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::erasure::PERSONAL_KINDS;

    #[test]
    fn the_log_query_reads_exactly_the_kinds_that_carry_personal_data() {
        for kind in PERSONAL_KINDS {
            assert!(PERSONAL_OPS_SQL.contains(&format!("'{kind}'")), "{kind}");
        }
        assert_eq!(
            PERSONAL_OPS_SQL.matches('\'').count(),
            2 * PERSONAL_KINDS.len()
        );
    }

    #[test]
    fn the_rewrite_finds_the_ops_through_the_partial_index() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::store::Node::open(&dir.path().join("x.db"), crate::domain::ActorId::hq())
            .unwrap();
        let plan: Vec<String> = node
            .query_blocking(|c| {
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {PERSONAL_OPS_SQL}"))?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(3))?;
                rows.collect()
            })
            .unwrap();
        assert!(plan.iter().any(|p| p.contains("ops_personal")), "{plan:?}");
    }
}
