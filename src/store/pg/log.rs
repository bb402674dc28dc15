//! SQL over the shared op log: insert a group once, read it back in order, rewrite an erased
//! customer's ops. Pure statements; the callers own the connection and the transaction.

use crate::domain::erasure::to_store;
use crate::domain::{ActorId, CustomerId, Op, State};
use crate::store::{decode_op, encode_op};
use std::collections::BTreeSet;
use tokio_postgres::{Client, Transaction};

/// Insert `ops`, skipping those already stored; returns the `(actor, seq)` newly stored.
pub async fn insert_ops(
    tx: &Transaction<'_>,
    ops: &[Op],
) -> Result<BTreeSet<(String, u64)>, tokio_postgres::Error> {
    let mut actors = Vec::with_capacity(ops.len());
    let mut seqs = Vec::with_capacity(ops.len());
    let mut walls = Vec::with_capacity(ops.len());
    let mut counters = Vec::with_capacity(ops.len());
    let mut kinds = Vec::with_capacity(ops.len());
    let mut bodies = Vec::with_capacity(ops.len());
    for op in ops {
        actors.push(op.actor.as_str().to_string());
        seqs.push(op.seq as i64);
        walls.push(op.hlc.wall_ms() as i64);
        counters.push(i64::from(op.hlc.counter()));
        kinds.push(op.payload.kind().to_string());
        bodies.push(encode_op(op));
    }
    let rows = tx
        .query(
            "INSERT INTO ops (actor, seq, hlc_wall, hlc_counter, kind, body)
             SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::text[],
                                  $6::bytea[])
             ON CONFLICT (actor, seq) DO NOTHING
             RETURNING actor, seq",
            &[&actors, &seqs, &walls, &counters, &kinds, &bodies],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
        .collect())
}

/// Rewrite, in place, every stored op carrying personal data of `customer`, who is erased in
/// `state` (the same rewrite `store::erasure::rewrite_log` does in the SQLite file).
pub async fn rewrite_erased(
    tx: &Transaction<'_>,
    state: &State,
    customer: &CustomerId,
) -> Result<usize, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT actor, seq, body FROM ops WHERE kind IN ('customer_update', 'consent_set')",
            &[],
        )
        .await?;
    let mut rewritten = 0;
    for row in rows {
        let body: Vec<u8> = row.get(2);
        // An op that does not decode cannot be read by anyone; restore refuses it.
        let Ok(op) = decode_op(&body) else { continue };
        if op.payload.customer() != Some(customer) {
            continue;
        }
        if let Some(anon) = to_store(&op, state) {
            let (actor, seq): (String, i64) = (row.get(0), row.get(1));
            tx.execute(
                "UPDATE ops SET body = $3 WHERE actor = $1 AND seq = $2",
                &[&actor, &seq, &encode_op(&anon)],
            )
            .await?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// One stored op read back with its place in the log.
pub struct Stored {
    pub gseq: i64,
    pub actor: String,
    pub seq: u64,
    pub body: Vec<u8>,
}

/// Ops after `gseq`, in log order, at most `limit`.
pub async fn ops_after(
    client: &Client,
    gseq: i64,
    limit: i64,
) -> Result<Vec<Stored>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT gseq, actor, seq, body FROM ops WHERE gseq > $1 ORDER BY gseq LIMIT $2",
            &[&gseq, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Stored {
            gseq: r.get(0),
            actor: r.get(1),
            seq: r.get::<_, i64>(2) as u64,
            body: r.get(3),
        })
        .collect())
}

/// Highest stored seq of `actor` (0: none).
pub async fn max_seq(client: &Client, actor: &ActorId) -> Result<u64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT coalesce(max(seq), 0) FROM ops WHERE actor = $1",
            &[&actor.as_str()],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// Number of stored ops.
pub async fn op_count(client: &Client) -> Result<u64, tokio_postgres::Error> {
    let row = client.query_one("SELECT count(*) FROM ops", &[]).await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// One row of `hq_idempotency` (the HQ API's Idempotency-Keys), as both databases hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRow {
    pub key: String,
    pub request_hash: String,
    pub status: i32,
    pub response: String,
    pub order_id: String,
    pub created_ms: i64,
}

const IDEMPOTENCY_COLUMNS: &str = "key, request_hash, status, response, order_id, created_ms";

/// The key rows of `order_id` in the SQLite file (the group's transaction).
pub fn local_idempotency(
    tx: &rusqlite::Transaction,
    order_id: &str,
) -> rusqlite::Result<Vec<IdempotencyRow>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {IDEMPOTENCY_COLUMNS} FROM hq_idempotency WHERE order_id = ?1"
    ))?;
    let rows = stmt.query_map([order_id], local_row)?;
    rows.collect()
}

fn local_row(r: &rusqlite::Row) -> rusqlite::Result<IdempotencyRow> {
    Ok(IdempotencyRow {
        key: r.get(0)?,
        request_hash: r.get(1)?,
        status: r.get(2)?,
        response: r.get(3)?,
        order_id: r.get(4)?,
        created_ms: r.get(5)?,
    })
}

/// Every key row of the SQLite file.
pub fn all_local_idempotency(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<IdempotencyRow>> {
    let mut stmt = conn.prepare(&format!("SELECT {IDEMPOTENCY_COLUMNS} FROM hq_idempotency"))?;
    let rows = stmt.query_map([], local_row)?;
    rows.collect()
}

/// Store `rows` in the SQLite file, keeping any key it already has.
pub fn restore_local_idempotency(
    tx: &rusqlite::Transaction,
    rows: &[IdempotencyRow],
) -> rusqlite::Result<usize> {
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT OR IGNORE INTO hq_idempotency ({IDEMPOTENCY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    ))?;
    let mut n = 0;
    for row in rows {
        n += stmt.execute(rusqlite::params![
            row.key,
            row.request_hash,
            row.status,
            row.response,
            row.order_id,
            row.created_ms
        ])?;
    }
    Ok(n)
}

/// Insert key rows into PostgreSQL; returns the keys it already held for another order.
pub async fn insert_idempotency(
    tx: &Transaction<'_>,
    rows: &[IdempotencyRow],
) -> Result<Vec<String>, tokio_postgres::Error> {
    let mut taken = Vec::new();
    for row in rows {
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO hq_idempotency ({IDEMPOTENCY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (key) DO NOTHING"
                ),
                &[
                    &row.key,
                    &row.request_hash,
                    &row.status,
                    &row.response,
                    &row.order_id,
                    &row.created_ms,
                ],
            )
            .await?;
        if inserted == 0 {
            let same: i64 = tx
                .query_one(
                    "SELECT count(*) FROM hq_idempotency WHERE key = $1 AND order_id = $2",
                    &[&row.key, &row.order_id],
                )
                .await?
                .get(0);
            if same == 0 {
                taken.push(row.key.clone());
            }
        }
    }
    Ok(taken)
}

/// Every key row of PostgreSQL.
pub async fn all_idempotency(
    client: &Client,
) -> Result<Vec<IdempotencyRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!("SELECT {IDEMPOTENCY_COLUMNS} FROM hq_idempotency"),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| IdempotencyRow {
            key: r.get(0),
            request_hash: r.get(1),
            status: r.get(2),
            response: r.get(3),
            order_id: r.get(4),
            created_ms: r.get(5),
        })
        .collect())
}
