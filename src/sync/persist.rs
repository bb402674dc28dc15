//! The sync engines' side tables (migrations/0003_sync.sql): plain functions over a
//! connection or transaction, run inside `Node::query` / `Node::write`.

use super::route::RouteAction;
use crate::domain::{ActorId, CustomerId, StoreId};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::{BTreeMap, BTreeSet};

pub use super::protocol::hq::HqLoaded;
use super::protocol::hq::IngestRoute;
pub use super::protocol::store::{KEY_DOWN_IDX, KEY_HQ_ACKED_SEQ};

/// Run a statement prepared once per connection: HQ's routing write runs these for every op
/// it routes, and parsing the SQL each time was most of its cost.
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

pub fn get_u64(conn: &Connection, key: &str) -> rusqlite::Result<u64> {
    let v: Option<i64> = conn
        .prepare_cached("SELECT value FROM sync_state WHERE key = ?1")?
        .query_row(params![key], |r| r.get(0))
        .optional()?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

pub fn set_u64(tx: &Transaction, key: &str, value: u64) -> rusqlite::Result<()> {
    exec(
        tx,
        "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value as i64],
    )?;
    Ok(())
}

/// Raise `key` to `value`; a lower value never overwrites a higher one, so cursor writes
/// issued without waiting for each other may land in any order.
/// Set the store's down cursor back to epoch 0, index 0 (`storenode store reset-hq-cursor`,
/// the store stopped): the only write that lowers it. Returns the cursor it held.
pub fn reset_down_cursor(tx: &Transaction) -> rusqlite::Result<u64> {
    let before = get_u64(tx, KEY_DOWN_IDX)?;
    exec(
        tx,
        "INSERT INTO sync_state (key, value) VALUES (?1, 0)
         ON CONFLICT(key) DO UPDATE SET value = 0",
        params![KEY_DOWN_IDX],
    )?;
    Ok(before)
}

pub fn raise_u64(tx: &Transaction, key: &str, value: u64) -> rusqlite::Result<()> {
    exec(
        tx,
        "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
        params![key, value as i64],
    )?;
    Ok(())
}

/// Persist a monotonic cursor in the background: the engine goes on without waiting for the
/// commit. The cursor only saves work after a restart (ingest is idempotent, so resuming from
/// an older position just resends), so it need not be durable before the engine acts on it.
pub fn raise_in_background(node: &crate::store::Node, key: &'static str, value: u64) {
    let node = node.clone();
    tokio::spawn(async move {
        if let Err(e) = node.write(move |tx| raise_u64(tx, key, value)).await {
            tracing::error!(key, error = %e, "cannot record a sync cursor");
        }
    });
}

pub fn load_hq(conn: &Connection) -> rusqlite::Result<HqLoaded> {
    let mut out = HqLoaded::default();
    let mut stmt = conn.prepare("SELECT actor, seq FROM sync_routed")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (actor, seq) = row?;
        if let Ok(actor) = ActorId::parse(&actor) {
            out.routed.insert(actor, seq.max(0) as u64);
        }
    }
    let mut stmt = conn.prepare("SELECT store, customer FROM sync_scope")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (store, customer) = row?;
        if let (Ok(s), Ok(c)) = (StoreId::parse(&store), CustomerId::parse(&customer)) {
            out.scope.insert((s, c));
        }
    }
    let mut stmt = conn.prepare("SELECT store FROM sync_stores")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    for row in rows {
        if let Ok(s) = StoreId::parse(&row?) {
            out.stores.insert(s);
        }
    }
    let mut stmt = conn.prepare("SELECT store, MAX(idx) FROM downlog GROUP BY store")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (store, idx) = row?;
        if let Ok(s) = StoreId::parse(&store) {
            out.downlog_last.insert(s, idx.max(0) as u64);
        }
    }
    Ok(out)
}

fn append(tx: &Transaction, store: &str, actor: &str, seq: u64) -> rusqlite::Result<()> {
    exec(
        tx,
        "INSERT INTO downlog (store, idx, actor, seq)
         VALUES (?1, (SELECT COALESCE(MAX(idx), 0) + 1 FROM downlog WHERE store = ?1), ?2, ?3)",
        params![store, actor, seq as i64],
    )?;
    Ok(())
}

/// Persist routing decisions and the new routing position in one transaction. Returns the
/// last down-log index of every store that got entries.
pub fn apply_routes(
    tx: &Transaction,
    actions: &[RouteAction],
    routed: &[(ActorId, u64)],
) -> rusqlite::Result<BTreeMap<StoreId, u64>> {
    let mut touched = BTreeSet::new();
    for action in actions {
        match action {
            RouteAction::Append { store, op } => {
                append(tx, store.as_str(), op.actor.as_str(), op.seq)?;
                touched.insert(store.clone());
            }
            RouteAction::Index { customer, op } => {
                exec(
                    tx,
                    "INSERT OR IGNORE INTO sync_customer_ops (customer, actor, seq) VALUES (?1, ?2, ?3)",
                    params![customer.as_str(), op.actor.as_str(), op.seq as i64],
                )?;
            }
            RouteAction::EnterScope { store, customer } => {
                exec(
                    tx,
                    "INSERT OR IGNORE INTO sync_scope (store, customer) VALUES (?1, ?2)",
                    params![store.as_str(), customer.as_str()],
                )?;
                let mut stmt = tx.prepare(
                    "SELECT actor, seq FROM sync_customer_ops
                     WHERE customer = ?1 AND actor != ?2 ORDER BY actor, seq",
                )?;
                let past: Vec<(String, i64)> = stmt
                    .query_map(params![customer.as_str(), store.actor().as_str()], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                for (actor, seq) in past {
                    append(tx, store.as_str(), &actor, seq.max(0) as u64)?;
                }
                touched.insert(store.clone());
            }
        }
    }
    for (actor, seq) in routed {
        exec(
            tx,
            "INSERT INTO sync_routed (actor, seq) VALUES (?1, ?2)
             ON CONFLICT(actor) DO UPDATE SET seq = excluded.seq",
            params![actor.as_str(), *seq as i64],
        )?;
    }
    let mut last = BTreeMap::new();
    for store in touched {
        let idx: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(idx), 0) FROM downlog WHERE store = ?1")?
            .query_row(params![store.as_str()], |r| r.get(0))?;
        last.insert(store, idx.max(0) as u64);
    }
    Ok(last)
}

/// Persist the routing decided with an ingest (`IngestRoute`), in the ingest's transaction,
/// if every op it routes is in the log: none of the ingest's ops was refused (a refused op is
/// not in the log, and the ops after it must wait for it). `None`: not written, and the
/// protocol reloads its routing state.
pub fn apply_ingest_route(
    tx: &Transaction,
    ingested: &crate::store::Ingested,
    route: &IngestRoute,
) -> rusqlite::Result<Option<BTreeMap<StoreId, u64>>> {
    if !ingested.rejected.is_empty() {
        return Ok(None);
    }
    apply_routes(tx, &route.actions, &route.cursors).map(Some)
}

/// Record stores as having a down-log.
pub fn add_stores(tx: &Transaction, stores: &[StoreId]) -> rusqlite::Result<()> {
    for store in stores {
        exec(
            tx,
            "INSERT OR IGNORE INTO sync_stores (store) VALUES (?1)",
            params![store.as_str()],
        )?;
    }
    Ok(())
}

/// The store's cursors (`StoreProtocol::new`).
pub fn load_store(conn: &Connection) -> rusqlite::Result<super::protocol::store::StoreCursors> {
    Ok(super::protocol::store::StoreCursors {
        hq_acked: get_u64(conn, KEY_HQ_ACKED_SEQ)?,
        down_idx: get_u64(conn, KEY_DOWN_IDX)?,
    })
}

/// Down-log entries `after_idx+1, after_idx+2, ...` of `store` as ops, stopping at the first
/// hole or unreadable body (both logged).
pub fn downlog_ops(
    conn: &Connection,
    store: &StoreId,
    after_idx: u64,
    limit: usize,
) -> rusqlite::Result<Vec<crate::domain::Op>> {
    let rows = downlog_read(conn, store, after_idx, limit)?;
    let mut ops = Vec::with_capacity(rows.len());
    for (idx, body) in rows {
        if idx != after_idx + 1 + ops.len() as u64 {
            tracing::error!(store = %store, idx, "hole in the down-log");
            break;
        }
        match crate::store::decode_op(&body) {
            Ok(op) => ops.push(op),
            Err(e) => {
                tracing::error!(store = %store, idx, error = %e, "unreadable op in the down-log");
                break;
            }
        }
    }
    Ok(ops)
}

/// Down-log entries of `store` after `after_idx`, with the op bodies from the op log.
pub fn downlog_read(
    conn: &Connection,
    store: &StoreId,
    after_idx: u64,
    limit: usize,
) -> rusqlite::Result<Vec<(u64, Vec<u8>)>> {
    // Read once per down-batch on HQ's reader connection: keep the parsed statement.
    let mut stmt = conn.prepare_cached(
        "SELECT d.idx, o.body FROM downlog d
         JOIN ops o ON o.actor = d.actor AND o.seq = d.seq
         WHERE d.store = ?1 AND d.idx > ?2 ORDER BY d.idx LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![store.as_str(), after_idx as i64, limit as i64],
        |r| Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, Vec<u8>>(1)?)),
    )?;
    rows.collect()
}

/// The last index of `store`'s down-log such that every entry up to it is covered by `vv` (a
/// store's contiguous seq per actor, from its ack): a new lease holder streams the entries
/// after it (`HqAction::FindDownStart`); the store skips any of them it holds already. One
/// pass over the store's down-log, once per lease taken.
pub fn downlog_start(
    conn: &Connection,
    store: &StoreId,
    vv: &BTreeMap<ActorId, u64>,
) -> rusqlite::Result<u64> {
    let mut stmt =
        conn.prepare("SELECT idx, actor, seq FROM downlog WHERE store = ?1 ORDER BY idx")?;
    let mut rows = stmt.query(params![store.as_str()])?;
    let mut start = 0;
    while let Some(row) = rows.next()? {
        let (idx, actor, seq): (i64, String, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let have = ActorId::parse(&actor)
            .ok()
            .and_then(|a| vv.get(&a).copied());
        let covered = have.is_some_and(|have| seq.max(0) as u64 <= have);
        if idx as u64 != start + 1 || !covered {
            break;
        }
        start = idx as u64;
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_holder_starts_after_the_last_entry_the_store_holds_with_everything_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::store::Node::open(&dir.path().join("hq.db"), ActorId::hq()).unwrap();
        let norte = StoreId::parse("norte").unwrap();
        let sur = StoreId::parse("sur").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // norte's down-log: hq/1, sur/1, hq/2, hq/3, sur/2.
        let entries = [
            ("hq", 1),
            ("store:sur", 1),
            ("hq", 2),
            ("hq", 3),
            ("store:sur", 2),
        ];
        rt.block_on(node.write(move |tx| {
            for (actor, seq) in entries {
                append(tx, "norte", actor, seq)?;
            }
            Ok(())
        }))
        .unwrap();
        let start = |vv: BTreeMap<ActorId, u64>| {
            let (node, norte) = (node.clone(), norte.clone());
            rt.block_on(node.query(move |c| downlog_start(c, &norte, &vv)))
                .unwrap()
        };
        assert_eq!(start(BTreeMap::new()), 0, "holding nothing: from the start");
        let hq2_sur1 = BTreeMap::from([(ActorId::hq(), 2), (sur.actor(), 1)]);
        assert_eq!(start(hq2_sur1), 3, "hq/3 is the first entry it lacks");
        let hq9_sur0 = BTreeMap::from([(ActorId::hq(), 9)]);
        assert_eq!(start(hq9_sur0), 1, "sur/1 at index 2 is missing");
        let all = BTreeMap::from([(ActorId::hq(), 3), (sur.actor(), 2)]);
        assert_eq!(start(all), 5);
    }
}
