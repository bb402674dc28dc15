//! SQL over the shared op log: insert a group once, read it back in order, rewrite an erased
//! customer's ops. Pure statements; the callers own the connection and the transaction.

use crate::domain::erasure::to_store;
use crate::domain::{ActorId, CustomerId, Op, State};
use crate::store::{decode_op, encode_op};
use std::collections::BTreeSet;
use tokio_postgres::{Client, GenericClient};

/// Insert `ops`, skipping those already stored; returns the `(actor, seq)` newly stored.
pub async fn insert_ops(
    tx: &impl GenericClient,
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
    tx: &impl GenericClient,
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
    tx: &impl GenericClient,
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

/// Lock the row of `actor` in `hq_actor` until the transaction ends (created on first use):
/// every process issuing ops as `actor` takes it first, so they number their ops one at a time.
pub async fn lock_actor(
    tx: &impl GenericClient,
    actor: &ActorId,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO hq_actor (actor) VALUES ($1) ON CONFLICT (actor) DO NOTHING",
        &[&actor.as_str()],
    )
    .await?;
    tx.query_one(
        "SELECT actor FROM hq_actor WHERE actor = $1 FOR UPDATE",
        &[&actor.as_str()],
    )
    .await?;
    Ok(())
}

/// The stored ops of `actor` from `seq` on, in seq order, at most `limit`. Under the actor's
/// lock (or for an actor only ever written under it) the answer has no holes: seq n + 1 is
/// inserted only after the transaction that inserted n committed.
pub async fn actor_ops_from(
    tx: &impl GenericClient,
    actor: &ActorId,
    seq: u64,
    limit: i64,
) -> Result<Vec<Stored>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT gseq, actor, seq, body FROM ops WHERE actor = $1 AND seq >= $2
             ORDER BY seq LIMIT $3",
            &[&actor.as_str(), &(seq as i64), &limit],
        )
        .await?;
    Ok(rows.iter().map(stored).collect())
}

fn stored(r: &tokio_postgres::Row) -> Stored {
    Stored {
        gseq: r.get(0),
        actor: r.get(1),
        seq: r.get::<_, i64>(2) as u64,
        body: r.get(3),
    }
}

/// Wake every process tailing the log (delivered when the transaction commits).
pub async fn notify_tailers(tx: &impl GenericClient) -> Result<(), tokio_postgres::Error> {
    tx.execute("SELECT pg_notify($1, '')", &[&TAIL_CHANNEL])
        .await
        .map(|_| ())
}

/// The `LISTEN`/`NOTIFY` channel of new ops.
pub const TAIL_CHANNEL: &str = "storenode_ops";

/// A position in the log's tail order `(xid, gseq)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct TailCursor {
    pub xid: u64,
    pub gseq: i64,
}

/// One op read from the tail, and whether every transaction before it has ended (`settled`:
/// its xid is below the oldest one still running), so the cursor may move past it.
pub struct Tailed {
    pub at: TailCursor,
    pub settled: bool,
    pub op: Stored,
}

/// Ops after `cursor` in `(xid, gseq)` order, at most `limit`, each marked settled or not.
pub async fn tail_after(
    client: &Client,
    cursor: TailCursor,
    limit: i64,
) -> Result<Vec<Tailed>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT xid::text, gseq, actor, seq, body,
                    xid < pg_snapshot_xmin(pg_current_snapshot()) AS settled
             FROM ops WHERE (xid, gseq) > ($1::text::xid8, $2)
             ORDER BY xid, gseq LIMIT $3",
            &[&cursor.xid.to_string(), &cursor.gseq, &limit],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let xid: String = r.get(0);
        out.push(Tailed {
            at: TailCursor {
                xid: xid.parse().unwrap_or(0),
                gseq: r.get(1),
            },
            settled: r.get(5),
            op: Stored {
                gseq: r.get(1),
                actor: r.get(2),
                seq: r.get::<_, i64>(3) as u64,
                body: r.get(4),
            },
        });
    }
    Ok(out)
}

/// Where tailing may start: every op of a transaction older than the oldest one running now
/// is already visible, so a reader of the whole log that starts after this call needs the
/// tail only from here.
pub async fn tail_start(client: &Client) -> Result<TailCursor, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot())::text", &[])
        .await?;
    let xmin: String = row.get(0);
    Ok(TailCursor {
        xid: xmin.parse::<u64>().unwrap_or(1).saturating_sub(1),
        gseq: i64::MAX,
    })
}

/// The Idempotency-Key rows of these orders.
pub async fn idempotency_of(
    client: &Client,
    order_ids: &[String],
) -> Result<Vec<IdempotencyRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!("SELECT {IDEMPOTENCY_COLUMNS} FROM hq_idempotency WHERE order_id = ANY($1)"),
            &[&order_ids],
        )
        .await?;
    Ok(rows.iter().map(shared_row).collect())
}

fn shared_row(r: &tokio_postgres::Row) -> IdempotencyRow {
    IdempotencyRow {
        key: r.get(0),
        request_hash: r.get(1),
        status: r.get(2),
        response: r.get(3),
        order_id: r.get(4),
        created_ms: r.get(5),
    }
}
