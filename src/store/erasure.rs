//! Erasure on disk: the op log of a replica that applied a `CustomerErase` keeps no personal
//! data of that customer (DESIGN.md section 14).
//!
//! The writer stores every op through `stored_form` (anonymous when its customer is erased
//! here) and, in the same transaction as an erasure, rewrites the customer's ops already in
//! the log (`rewrite_log`). `PRAGMA secure_delete` (set on the writer) zeroes the bytes the
//! rewrite frees, and the writer truncates the WAL after a group that erased someone, so old
//! page images do not outlive the commit either.

use super::{decode_op, encode_op};
use crate::domain::erasure::{to_store, PERSONAL_KINDS};
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

/// Rewrite, in place, every op in the log that carries personal data of `customer`, who is
/// erased in `state`. Returns how many ops were rewritten.
///
/// Scans only the kinds that can carry personal data; erasures are rare, so a scan of those
/// ops beats an index kept on every write.
pub fn rewrite_log(
    tx: &Transaction,
    state: &State,
    customer: &CustomerId,
) -> rusqlite::Result<usize> {
    let mut found: Vec<(i64, Vec<u8>)> = Vec::new();
    {
        let mut stmt = tx.prepare_cached("SELECT rowid, body FROM ops WHERE kind IN (?1, ?2)")?;
        let mut rows = stmt.query(params![PERSONAL_KINDS[0], PERSONAL_KINDS[1]])?;
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
