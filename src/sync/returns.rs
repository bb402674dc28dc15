//! HQ's answers to stores asking for rights back (`RightsReturnRequested`), exactly once.
//!
//! The request is an op in HQ's log; the answer is HQ's `StockTransfer` back to the store
//! (`reaction::plan_return`). The `ReturnRequested` effect exists only in memory, so a crash
//! between applying a request and answering it would lose the answer. Instead HQ answers from
//! the log: every request above a persisted mark (`sync_state.hq_returns_rowid`, the op log's
//! rowid) is answered in order, and the answer op and the mark move in one transaction, so a
//! request is answered once whatever crashes when. The engine runs this at start (the rescan)
//! and whenever an ingested batch carried a request; both run on the engine's task, one at a
//! time. Migration 0006 sets the mark past requests an older binary already answered.
//!
//! Each answer also records which request it answers (`hq_rights_answers`, the answer's
//! transaction). On a log shared by several HQ processes that row is the only "answered"
//! mark that counts (`answer_shared`): the journal copies it into PostgreSQL with the op, where
//! its primary key refuses a second answer, and a process reads PostgreSQL's marks before
//! answering, so a new lease holder answers what a dead holder ingested and left, once.

use crate::domain::reaction::plan_return;
use crate::domain::{Payload, StoreId};
use crate::store::codec::decode_op;
use crate::store::pg::rights::{Answers, RequestId};
use crate::store::pg::PgError;
use crate::store::{Node, StoreError, SubmitError};
use rusqlite::OptionalExtension;

/// Key of the mark in `sync_state`.
pub const KEY_RETURNS_ROWID: &str = "hq_returns_rowid";
/// Requests read per pass.
const REQUESTS_PER_PASS: usize = 500;

/// Why pending requests could not all be answered (the rest are retried on the next pass).
#[derive(Debug, thiserror::Error)]
pub enum ReturnsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("answering a return request: {0}")]
    Submit(#[from] SubmitError),
    /// The shared answers in PostgreSQL could not be read or written (`answer_shared`).
    #[error("the shared answers to return requests: {0}")]
    Shared(#[from] PgError),
}

/// A request found in the log above the mark.
struct Pending {
    rowid: i64,
    /// The request's op.
    id: RequestId,
    store: StoreId,
    sku: crate::domain::Sku,
    qty: u32,
}

fn set_mark(tx: &rusqlite::Connection, rowid: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO sync_state (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = max(value, ?2)",
        rusqlite::params![KEY_RETURNS_ROWID, rowid],
    )?;
    Ok(())
}

/// Record that the request `id` is answered by HQ's op `answer_seq` (in its transaction).
fn record_answer(
    tx: &rusqlite::Connection,
    id: &RequestId,
    answer_seq: u64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO hq_rights_answers (actor, seq, answer_seq) VALUES (?1, ?2, ?3)",
        rusqlite::params![id.0.as_str(), id.1 as i64, answer_seq as i64],
    )?;
    Ok(())
}

/// Read the mark, the requests above it, and the log's last rowid (one snapshot).
fn pending(conn: &rusqlite::Connection) -> rusqlite::Result<(Vec<Pending>, i64, i64)> {
    pending_after(conn, 0)
}

/// [`pending`], reading from `after` when it is above the mark (a pass's later chunks).
fn pending_after(
    conn: &rusqlite::Connection,
    after: i64,
) -> rusqlite::Result<(Vec<Pending>, i64, i64)> {
    let mark: i64 = conn
        .query_row(
            "SELECT value FROM sync_state WHERE key = ?1",
            [KEY_RETURNS_ROWID],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let last: i64 = conn.query_row("SELECT coalesce(max(rowid), 0) FROM ops", [], |r| r.get(0))?;
    let mut stmt = conn.prepare(
        "SELECT rowid, body FROM ops WHERE rowid > ?1 AND rowid <= ?2
         AND kind = 'rights_return_requested' ORDER BY rowid LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        rusqlite::params![mark.max(after), last, REQUESTS_PER_PASS as i64],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (rowid, body) = row?;
        let op = decode_op(&body).map(|op| (op.actor, op.seq, op.payload));
        match op {
            Ok((actor, seq, Payload::RightsReturnRequested { store, sku, qty })) => {
                out.push(Pending {
                    rowid,
                    id: (actor, seq),
                    store,
                    sku,
                    qty,
                })
            }
            // Replay at open already refused unreadable logs; skip rather than stall.
            Ok(_) | Err(_) => {
                tracing::warn!(rowid, "unreadable return request in the op log; skipped")
            }
        }
    }
    Ok((out, mark, last))
}

/// Tries at answering one request: the plan reads HQ's rights, which an order placed through
/// the API at the same moment may take; the plan is then made again.
const ANSWER_TRIES: usize = 3;

/// Answer one request and, with `mark`, move the mark past it (in the answer's transaction);
/// whether a transfer was issued.
async fn answer_once(node: &Node, p: &Pending, mark: bool) -> Result<bool, ReturnsError> {
    let rowid = p.rowid;
    let mut tries = 0;
    loop {
        tries += 1;
        let plan = node.read(|r| plan_return(r.state(), &p.store, &p.sku, p.qty));
        let Some(payload) = plan else {
            if mark {
                node.write(move |tx| set_mark(tx, rowid)).await?;
            }
            return Ok(false);
        };
        let id = p.id.clone();
        let recorded = move |tx: &rusqlite::Transaction, ops: &[crate::domain::Op]| {
            if mark {
                set_mark(tx, rowid)?;
            }
            match ops.first() {
                Some(op) => record_answer(tx, &id, op.seq),
                None => Ok(()),
            }
        };
        match node.submit_with(vec![payload], recorded).await {
            Ok(_) => {
                tracing::info!(store = %p.store, sku = %p.sku, qty = p.qty, "returned rights a store asked for");
                return Ok(true);
            }
            Err(SubmitError::Domain(e)) if tries < ANSWER_TRIES => {
                tracing::debug!(store = %p.store, sku = %p.sku, error = %e, "return plan went stale; planning again");
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Answer every request in HQ's log not answered yet; returns how many transfers were issued.
/// A request HQ holds no rights for is marked answered with nothing to give.
pub async fn answer_pending(node: &Node) -> Result<usize, ReturnsError> {
    answer_pending_for(node, |_| true).await
}

/// [`answer_pending`] for the requests of the stores `serves` (the stores whose lease this HQ
/// process holds, `crate::sync::lease`); the mark moves past the others too, which their
/// holders answer.
pub async fn answer_pending_for(
    node: &Node,
    serves: impl Fn(&StoreId) -> bool,
) -> Result<usize, ReturnsError> {
    let mut issued = 0;
    loop {
        let (requests, mark, last) = node.query(pending).await?;
        let full_pass = requests.len() == REQUESTS_PER_PASS;
        for p in requests.into_iter().filter(|p| serves(&p.store)) {
            if answer_once(node, &p, true).await? {
                issued += 1;
            }
        }
        if !full_pass {
            // Everything up to `last` is answered: skip the ops in between next time.
            if last > mark {
                node.write(move |tx| set_mark(tx, last)).await?;
            }
            return Ok(issued);
        }
    }
}

/// [`answer_pending_for`] on a log several HQ processes share (`[storage] url`): whether a
/// request is answered is read from PostgreSQL (`store::pg::rights`), never from this
/// process's memory or mark, so a new lease holder answers what a dead holder ingested and
/// left, and nothing some process answered is answered again. The local mark moves only past
/// requests answered by some process: one of a store served elsewhere and not answered yet
/// holds it there (its holder answers it; this process reads it again on the next pass).
pub async fn answer_shared(
    node: &Node,
    answers: &mut Answers,
    serves: impl Fn(&StoreId) -> bool,
) -> Result<usize, ReturnsError> {
    let mut issued = 0;
    let mut after = 0;
    let mut first_open: Option<i64> = None;
    loop {
        let (requests, _, last) = node.query(move |c| pending_after(c, after)).await?;
        let full_pass = requests.len() == REQUESTS_PER_PASS;
        let ids: Vec<RequestId> = requests.iter().map(|p| p.id.clone()).collect();
        let done = answers.answered(&ids).await?;
        for p in requests.iter().filter(|p| !done.contains(&p.id)) {
            if !serves(&p.store) {
                first_open.get_or_insert(p.rowid);
                continue;
            }
            if answer(node, answers, p).await? {
                issued += 1;
            }
        }
        match requests.last() {
            Some(p) if full_pass => after = p.rowid,
            _ => {
                // Every request up to `last` is answered but those from `first_open` on.
                let mark = first_open.map_or(last, |open| open - 1);
                node.write(move |tx| set_mark(tx, mark)).await?;
                return Ok(issued);
            }
        }
    }
}

/// Answer one request no process has answered (the transfer's mark commits with it in
/// PostgreSQL; nothing to give is marked on its own); whether a transfer was issued.
async fn answer(node: &Node, answers: &mut Answers, p: &Pending) -> Result<bool, ReturnsError> {
    if answer_once(node, p, false).await? {
        return Ok(true);
    }
    answers.answered_with_nothing(&p.id).await?;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::op::ReceiveReason;
    use crate::domain::{ActorId, Ean13, Replica, Sku};
    use std::time::{Duration, Instant};

    fn store() -> StoreId {
        StoreId::parse("norte").unwrap()
    }
    fn sku() -> Sku {
        Sku::parse("SKU-1").unwrap()
    }

    /// HQ's node holding a store's receipt of 10, 3 of them lent to HQ, and the store's
    /// request to have 2 back: applied, never reacted to (HQ crashed right after).
    async fn hq_with_a_request(path: &std::path::Path) -> Replica {
        let hq = Node::open(path, ActorId::hq()).unwrap();
        let put = hq
            .submit(vec![Payload::CatalogPut {
                sku: sku(),
                ean: Ean13::parse("4006381333931").unwrap(),
                name: "Tea".into(),
                price_cents: 250,
                vat_bp: 1000,
            }])
            .await
            .unwrap()
            .ops;
        let mut st = Replica::new(store().actor());
        st.apply(&put[0]).unwrap();
        let mut ops = Vec::new();
        for p in [
            Payload::StockReceive {
                store: store(),
                sku: sku(),
                qty: 10,
                reason: ReceiveReason::Delivery,
            },
            Payload::StockTransfer {
                store: store(),
                sku: sku(),
                to: ActorId::hq(),
                qty: 3,
            },
            Payload::RightsReturnRequested {
                store: store(),
                sku: sku(),
                qty: 2,
            },
        ] {
            ops.push(st.prepare(1_000, p).unwrap().0);
        }
        let ingested = hq.ingest(ops).await.unwrap();
        assert_eq!(ingested.applied, 3);
        st
    }

    fn hq_rights(node: &Node) -> i64 {
        node.read(|r| r.state().rights(&store(), &sku(), &ActorId::hq()))
    }

    async fn answers(node: &Node) -> i64 {
        node.query(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM ops WHERE actor = 'hq' AND kind = 'stock_transfer'",
                [],
                |r| r.get(0),
            )
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_request_applied_before_a_crash_is_answered_once_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hq.db");
        let mut st = hq_with_a_request(&path).await;
        // Reopen (the crash lost the in-memory effect): the rescan answers the request.
        let hq = Node::open(&path, ActorId::hq()).unwrap();
        assert_eq!(hq_rights(&hq), 3);
        assert_eq!(answer_pending(&hq).await.unwrap(), 1);
        assert_eq!(hq_rights(&hq), 1);
        assert_eq!(answers(&hq).await, 1);
        // Again, and after another restart: nothing more.
        assert_eq!(answer_pending(&hq).await.unwrap(), 0);
        drop(hq);
        let hq = Node::open(&path, ActorId::hq()).unwrap();
        assert_eq!(answer_pending(&hq).await.unwrap(), 0);
        assert_eq!(answers(&hq).await, 1);
        assert_eq!(hq_rights(&hq), 1);
        // A later request is answered on its own, with what HQ still holds (1 of 5 asked).
        let (op, _) = st
            .prepare(
                2_000,
                Payload::RightsReturnRequested {
                    store: store(),
                    sku: sku(),
                    qty: 5,
                },
            )
            .unwrap();
        hq.ingest(vec![op]).await.unwrap();
        assert_eq!(answer_pending(&hq).await.unwrap(), 1);
        assert_eq!(hq_rights(&hq), 0);
        // HQ holds nothing now: a third request is marked answered with nothing to give.
        let (op, _) = st
            .prepare(
                3_000,
                Payload::RightsReturnRequested {
                    store: store(),
                    sku: sku(),
                    qty: 1,
                },
            )
            .unwrap();
        hq.ingest(vec![op]).await.unwrap();
        assert_eq!(answer_pending(&hq).await.unwrap(), 0);
        assert_eq!(answers(&hq).await, 2);
    }

    #[tokio::test]
    async fn the_hq_sync_engine_rescans_at_start_even_without_a_broker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hq.db");
        hq_with_a_request(&path).await;
        let hq = Node::open(&path, ActorId::hq()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = super::super::HqSyncConfig::new("acme", vec![store()], "127.0.0.1", port);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let sync = super::super::spawn_hq_sync(hq.clone(), cfg, shutdown);
        let deadline = Instant::now() + Duration::from_secs(10);
        while answers(&hq).await == 0 {
            assert!(Instant::now() < deadline, "the rescan did not answer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send_replace(true);
        sync.join().await;
        assert_eq!(answer_pending(&hq).await.unwrap(), 0);
        assert_eq!(answers(&hq).await, 1);
        assert_eq!(hq_rights(&hq), 1);
    }
}
