//! The one mechanism behind both history tables (`sale_history`, `order_history`): pick the
//! records in memory that are causally stable, write them to their table, commit, then take
//! them out of memory; read them back by id or by customer; put them back into memory before
//! an op names them. `HistoryTable` says what differs between the two tables; `store::history`
//! (sales, and the evictor running both passes) and `store::order_history` implement it.
//!
//! Invariants: a row is committed before its record leaves memory, so memory never lacks what
//! the file lacks. Each row carries the number of the eviction that wrote it (one count for
//! both tables, `State::evictions` after it); rows numbered above the replica's count are not
//! its own (it was rebuilt from an older snapshot): they are never read, and the rebuild
//! deletes them (`forget_after`). A record rehydrated keeps its row; its next eviction
//! rewrites it.

use super::StoreError;
use crate::domain::{CustomerId, Replica, SaleId, State};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::sync::RwLock;

/// Records recalled for the counter, kept in memory: sale id (an order's as a sale) -> the
/// evictor's pass when pinned.
pub(super) type Pinned = BTreeMap<SaleId, u64>;

/// What the shared mechanism needs to know of one history table: its name and columns, the
/// record its rows store, which records are stable, and how one leaves or re-enters `State`.
/// Every table has the columns `id`, `store`, `customer`, `eviction` and `body`.
pub(super) trait HistoryTable {
    /// The record's id (`SaleId`, `OrderId`).
    type Id: Clone + Ord + std::fmt::Display;
    /// What a row's `body` stores (`SaleRecord`, `Order`).
    type Record: serde::Serialize + serde::de::DeserializeOwned;
    /// The table's name.
    const TABLE: &'static str;
    /// The column a customer's rows are ordered by, oldest first.
    const TIME_COLUMN: &'static str;
    /// The layout byte opening a row's `body` (`encode_body`).
    const BODY_FORMAT: u8;
    /// `INSERT OR REPLACE` of one row; `insert` binds its parameters.
    const INSERT: &'static str;
    /// What a record is called in messages: "sale", "order".
    const NOUN: &'static str;

    fn id_str(id: &Self::Id) -> &str;

    /// Execute `insert` (`INSERT`) for `record`'s row, numbered `eviction`, body `body`.
    fn insert(
        insert: &mut rusqlite::Statement<'_>,
        record: &Self::Record,
        eviction: i64,
        body: Vec<u8>,
    ) -> rusqlite::Result<usize>;

    /// The record `id`, if it is in memory.
    fn held<'s>(state: &'s State, id: &Self::Id) -> Option<&'s Self::Record>;

    /// Records in memory that are causally stable, not pinned and evictable now, oldest
    /// first, at most `batch_max`.
    fn stable(
        conn: &Connection,
        replica: &Replica,
        pinned: &Pinned,
        batch_max: usize,
    ) -> Result<Vec<Self::Id>, StoreError>;

    /// Take `id` out of memory (`None`: not held, or not evictable).
    fn evict(replica: &mut Replica, id: &Self::Id) -> Option<Self::Record>;

    /// Put a record this replica evicted back into memory.
    fn rehydrate(replica: &mut Replica, record: Self::Record);

    /// The evicted record `id`, for a recall; a row that does not decode is an error naming it.
    fn load(
        conn: &Connection,
        id: &Self::Id,
        evictions: u64,
    ) -> Result<Option<Self::Record>, StoreError> {
        load::<Self, _>(conn, id, evictions, |e| e)
    }
}

/// A history row's `body`: the layout byte `format`, then postcard over the record.
pub fn encode_body<T: serde::Serialize>(format: u8, record: &T) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    postcard::to_extend(record, vec![format]).unwrap_or_else(|_| vec![format])
}

/// A row's `body` back as the record it stores, if it has the layout `format`.
pub fn decode_body<T: serde::de::DeserializeOwned>(format: u8, bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&f, rest)) if f == format => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((f, _)) => Err(format!("format {f}, this binary reads {format}")),
        None => Err("empty body".to_string()),
    }
}

/// No eviction on this replica's lineage: no history row is its own, so none is read (rows
/// are numbered from its first eviction, `State::evictions` >= 1).
pub(super) fn nothing_evicted(replica: &Replica) -> bool {
    replica.state().evictions() == 0
}

/// The row of record `id` as its record; one that does not decode is an error naming it.
pub(super) fn decoded<T: HistoryTable + ?Sized>(
    id: &str,
    body: &[u8],
) -> Result<T::Record, StoreError> {
    decode_body(T::BODY_FORMAT, body).map_err(|detail| StoreError::History {
        record: id.to_string(),
        detail,
    })
}

/// A row that does not decode, as readers returning `rusqlite::Result` report it.
pub(super) fn as_sqlite(e: StoreError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, e.into())
}

/// The evicted record `id`, if this replica (having made `evictions` evictions) evicted it.
/// SQLite's errors pass as they are; a row that does not decode goes through `bad`.
pub(super) fn load<T: HistoryTable + ?Sized, E: From<rusqlite::Error>>(
    conn: &Connection,
    id: &T::Id,
    evictions: u64,
    bad: impl Fn(StoreError) -> E,
) -> Result<Option<T::Record>, E> {
    let sql = format!(
        "SELECT body FROM {} WHERE id = ?1 AND eviction <= ?2",
        T::TABLE
    );
    let body: Option<Vec<u8>> = conn
        .prepare_cached(&sql)?
        .query_row(params![T::id_str(id), evictions as i64], |r| r.get(0))
        .optional()?;
    body.map(|b| decoded::<T>(T::id_str(id), &b).map_err(&bad))
        .transpose()
}

/// The evicted records of `customer`, oldest first. A row that does not decode is an error
/// naming the record.
pub(super) fn of_customer<T: HistoryTable>(
    conn: &Connection,
    customer: &CustomerId,
    evictions: u64,
) -> rusqlite::Result<Vec<T::Record>> {
    let sql = format!(
        "SELECT id, body FROM {} WHERE customer = ?1 AND eviction <= ?2 ORDER BY {}",
        T::TABLE,
        T::TIME_COLUMN
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![customer.as_str(), evictions as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, body) = row?;
        out.push(decoded::<T>(&id, &body).map_err(as_sqlite)?);
    }
    Ok(out)
}

/// Delete the rows of evictions a replica rebuilt with `evictions` evictions never made.
pub(super) fn forget_after<T: HistoryTable>(
    conn: &Connection,
    evictions: u64,
) -> rusqlite::Result<usize> {
    let sql = format!("DELETE FROM {} WHERE eviction > ?1", T::TABLE);
    conn.execute(&sql, params![evictions as i64])
}

/// Put the evicted records `ids` back into `replica`; those in memory, and those never
/// evicted here, are left alone.
pub(super) fn recall<'a, T: HistoryTable>(
    conn: &Connection,
    replica: &mut Replica,
    ids: impl IntoIterator<Item = &'a T::Id>,
) -> Result<(), StoreError>
where
    T::Id: 'a,
{
    if nothing_evicted(replica) {
        return Ok(());
    }
    for id in ids {
        recall_one::<T>(conn, replica, id)?;
    }
    Ok(())
}

/// `recall` for one record, on a replica that evicted something.
pub(super) fn recall_one<T: HistoryTable>(
    conn: &Connection,
    replica: &mut Replica,
    id: &T::Id,
) -> Result<(), StoreError> {
    if T::held(replica.state(), id).is_some() {
        return Ok(());
    }
    if let Some(record) = T::load(conn, id, replica.state().evictions())? {
        T::rehydrate(replica, record);
    }
    Ok(())
}

/// The tail of `HistoryTable::stable`: of `candidates` (sort key, id), oldest first, the first
/// `take` that are `evictable`.
pub(super) fn oldest<K: Ord, I: Ord + Clone>(
    mut candidates: Vec<(K, &I)>,
    take: usize,
    evictable: impl Fn(&I) -> bool,
) -> Vec<I> {
    candidates.sort_unstable();
    candidates
        .into_iter()
        .filter(|(_, id)| evictable(id))
        .take(take)
        .map(|(_, id)| id.clone())
        .collect()
}

/// One eviction pass over table `T`: the stable records' rows committed in a transaction of
/// their own, numbered from the replica's next eviction, then the records taken out of memory
/// in that order. Returns how many left memory (at most `batch_max`).
pub(super) fn evict_pass<T: HistoryTable>(
    conn: &mut Connection,
    replica: &RwLock<Replica>,
    pinned: &Pinned,
    batch_max: usize,
) -> Result<usize, StoreError> {
    let (ids, first) = {
        let r = replica.read().unwrap_or_else(|p| p.into_inner());
        let ids = T::stable(conn, &r, pinned, batch_max)?;
        (ids, r.state().evictions() + 1)
    };
    if ids.is_empty() {
        return Ok(0);
    }
    let tx = rusqlite::Transaction::new(conn, rusqlite::TransactionBehavior::Immediate)?;
    {
        let r = replica.read().unwrap_or_else(|p| p.into_inner());
        let mut insert = tx.prepare_cached(T::INSERT)?;
        for (n, id) in (first..).zip(&ids) {
            let Some(record) = T::held(r.state(), id) else {
                continue;
            };
            let body = encode_body(T::BODY_FORMAT, record);
            T::insert(&mut insert, record, n as i64, body)?;
        }
    }
    tx.commit()?;
    let mut r = replica.write().unwrap_or_else(|p| p.into_inner());
    let mut evicted = 0;
    for id in &ids {
        // Only this thread changes the replica, so each is still evictable; were one not,
        // the rows after it carry numbers above the count and are simply not used.
        if T::evict(&mut r, id).is_none() {
            debug_assert!(false, "{} {id} stopped being evictable", T::NOUN);
            break;
        }
        evicted += 1;
    }
    Ok(evicted)
}
