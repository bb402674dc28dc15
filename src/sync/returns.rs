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

use crate::domain::reaction::plan_return;
use crate::domain::{Payload, StoreId};
use crate::store::codec::decode_op;
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
}

/// A request found in the log above the mark.
struct Pending {
    rowid: i64,
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

/// Read the mark, the requests above it, and the log's last rowid (one snapshot).
fn pending(conn: &rusqlite::Connection) -> rusqlite::Result<(Vec<Pending>, i64, i64)> {
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
        rusqlite::params![mark, last, REQUESTS_PER_PASS as i64],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (rowid, body) = row?;
        match decode_op(&body).map(|op| op.payload) {
            Ok(Payload::RightsReturnRequested { store, sku, qty }) => out.push(Pending {
                rowid,
                store,
                sku,
                qty,
            }),
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

/// Answer one request and move the mark past it; whether a transfer was issued.
async fn answer(node: &Node, p: &Pending) -> Result<bool, ReturnsError> {
    let rowid = p.rowid;
    let mut tries = 0;
    loop {
        tries += 1;
        let plan = node.read(|r| plan_return(r.state(), &p.store, &p.sku, p.qty));
        let Some(payload) = plan else {
            node.write(move |tx| set_mark(tx, rowid)).await?;
            return Ok(false);
        };
        match node
            .submit_with(vec![payload], move |tx, _| set_mark(tx, rowid))
            .await
        {
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
            if answer(node, &p).await? {
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
