//! HQ's answers to stores asking for rights back, shared by every HQ process (migration
//! `0007_hq_rights_answers.sql`): which `RightsReturnRequested` ops are answered, by which of
//! HQ's `StockTransfer`s, or with nothing to give.
//!
//! The answer's mark and its op commit in one PostgreSQL transaction (`PgJournal` copies the
//! group's rows from the SQLite side table of the same name), and the table's primary key
//! refuses a second answer: a new lease holder finishes what a dead one left, and never
//! answers a request twice, whichever process crashes when. `Answers` is the sync engine's
//! connection for reading the marks and recording an answer of nothing.

use super::{connect, parse_url, PgError};
use crate::domain::{ActorId, Op, Payload};
use std::collections::BTreeSet;
use tokio_postgres::{Client, Config, GenericClient};

/// A request for rights back, by its op.
pub type RequestId = (ActorId, u64);

/// One answer: the request's op and HQ's `StockTransfer` answering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRow {
    pub actor: String,
    pub seq: u64,
    pub answer_seq: u64,
}

/// The answers the group's own `StockTransfer`s (above `floor`: numbered by this group) give,
/// as the group's SQLite transaction holds them (written by the answer's own request).
pub fn local_answers(
    tx: &rusqlite::Transaction,
    actor: &ActorId,
    floor: u64,
    ops: &[Op],
) -> rusqlite::Result<Vec<AnswerRow>> {
    let mut rows = Vec::new();
    let mut stmt = None;
    for op in ops.iter().filter(|op| &op.actor == actor && op.seq > floor) {
        if !matches!(op.payload, Payload::StockTransfer { .. }) {
            continue;
        }
        let stmt = match &mut stmt {
            Some(s) => s,
            None => stmt.insert(tx.prepare_cached(
                "SELECT actor, seq FROM hq_rights_answers WHERE answer_seq = ?1",
            )?),
        };
        let found = stmt.query_map([op.seq as i64], |r| {
            Ok(AnswerRow {
                actor: r.get(0)?,
                seq: r.get::<_, i64>(1)?.max(0) as u64,
                answer_seq: op.seq,
            })
        })?;
        for row in found {
            rows.push(row?);
        }
    }
    Ok(rows)
}

/// Insert the group's answers; returns the requests another transaction already answered
/// (the caller then fails the group: nothing of it commits).
pub async fn insert_answers(
    tx: &impl GenericClient,
    rows: &[AnswerRow],
) -> Result<Vec<(String, u64)>, tokio_postgres::Error> {
    let mut taken = Vec::new();
    for row in rows {
        let inserted = tx
            .execute(
                "INSERT INTO hq_rights_answers (actor, seq, answer_seq) VALUES ($1, $2, $3)
                 ON CONFLICT (actor, seq) DO NOTHING",
                &[&row.actor, &(row.seq as i64), &(row.answer_seq as i64)],
            )
            .await?;
        if inserted == 0 {
            taken.push((row.actor.clone(), row.seq));
        }
    }
    Ok(taken)
}

/// The requests for rights back of the SQLite file that its own mark says were answered:
/// those at or below `sync_state.hq_returns_rowid` (`sync::returns`). An HQ moving from SQLite
/// answered them before the shared table existed.
pub fn local_answered(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<RequestId>> {
    let mut stmt = conn.prepare(
        "SELECT actor, seq FROM ops WHERE kind = 'rights_return_requested' AND rowid <=
           (SELECT coalesce(max(value), 0) FROM sync_state WHERE key = 'hq_returns_rowid')",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (actor, seq) = row?;
        if let Ok(actor) = ActorId::parse(&actor) {
            out.push((actor, seq.max(0) as u64));
        }
    }
    Ok(out)
}

/// Mark `requests` answered (with nothing recorded as their answer), keeping existing marks.
pub async fn insert_answered(
    client: &impl GenericClient,
    requests: &[RequestId],
) -> Result<u64, tokio_postgres::Error> {
    let actors: Vec<&str> = requests.iter().map(|(a, _)| a.as_str()).collect();
    let seqs: Vec<i64> = requests.iter().map(|(_, s)| *s as i64).collect();
    client
        .execute(
            "INSERT INTO hq_rights_answers (actor, seq)
             SELECT * FROM unnest($1::text[], $2::int8[])
             ON CONFLICT (actor, seq) DO NOTHING",
            &[&actors, &seqs],
        )
        .await
}

/// The sync engine's view of the shared answers (one connection, made again after a failure).
pub struct Answers {
    config: Config,
    client: Option<Client>,
}

impl Answers {
    /// Answers in the database at `url`; connects on first use.
    pub fn new(url: &str) -> Result<Answers, PgError> {
        Ok(Answers {
            config: parse_url(url)?,
            client: None,
        })
    }

    async fn client(&mut self) -> Result<&Client, PgError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(connect(&self.config).await?);
        }
        self.client
            .as_ref()
            .ok_or_else(|| PgError::Query("no connection".to_string()))
    }

    fn failed(&mut self, e: tokio_postgres::Error) -> PgError {
        self.client = None;
        PgError::query(e)
    }

    /// Which of `requests` some process has answered (with a transfer or with nothing).
    pub async fn answered(
        &mut self,
        requests: &[RequestId],
    ) -> Result<BTreeSet<RequestId>, PgError> {
        if requests.is_empty() {
            return Ok(BTreeSet::new());
        }
        let actors: Vec<&str> = requests.iter().map(|(a, _)| a.as_str()).collect();
        let seqs: Vec<i64> = requests.iter().map(|(_, s)| *s as i64).collect();
        let rows = self
            .client()
            .await?
            .query(
                "SELECT a.actor, a.seq FROM hq_rights_answers a
                 JOIN unnest($1::text[], $2::int8[]) AS r(actor, seq)
                   ON a.actor = r.actor AND a.seq = r.seq",
                &[&actors, &seqs],
            )
            .await;
        let rows = rows.map_err(|e| self.failed(e))?;
        let found: BTreeSet<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(requests
            .iter()
            .filter(|(actor, seq)| found.contains(&(actor.as_str().to_string(), *seq as i64)))
            .cloned()
            .collect())
    }

    /// Record that `request` was answered with nothing to give (HQ held no rights); a mark
    /// another process already wrote is kept.
    pub async fn answered_with_nothing(&mut self, request: &RequestId) -> Result<(), PgError> {
        let (actor, seq) = request;
        let done = self
            .client()
            .await?
            .execute(
                "INSERT INTO hq_rights_answers (actor, seq) VALUES ($1, $2)
                 ON CONFLICT (actor, seq) DO NOTHING",
                &[&actor.as_str(), &(*seq as i64)],
            )
            .await;
        done.map_err(|e| self.failed(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Replica, Sku, StoreId};

    fn transfer(replica: &mut Replica, seq_at: u64) -> Op {
        let store = StoreId::parse("norte").unwrap();
        let mut op = replica
            .prepare(
                1_000,
                Payload::CatalogPut {
                    sku: Sku::parse("SKU-1").unwrap(),
                    ean: crate::domain::Ean13::parse("4006381333931").unwrap(),
                    name: "Tea".into(),
                    price_cents: 250,
                    vat_bp: 1000,
                },
            )
            .unwrap()
            .0;
        op.seq = seq_at;
        op.payload = Payload::StockTransfer {
            store: store.clone(),
            sku: Sku::parse("SKU-1").unwrap(),
            to: store.actor(),
            qty: 1,
        };
        op
    }

    #[test]
    fn only_the_groups_own_new_transfers_carry_their_answers_to_postgresql() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::schema::migrate(&mut conn, 0).unwrap();
        conn.execute_batch(
            "INSERT INTO hq_rights_answers (actor, seq, answer_seq) VALUES ('norte', 7, 4);
             INSERT INTO hq_rights_answers (actor, seq, answer_seq) VALUES ('norte', 9, 5);",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        let mut hq = Replica::new(ActorId::hq());
        let (read_back, own) = (transfer(&mut hq, 4), transfer(&mut hq, 5));
        // Seq 4 came from the log (at or below the floor), seq 5 is this group's.
        let rows = local_answers(&tx, &ActorId::hq(), 4, &[read_back, own.clone()]).unwrap();
        assert_eq!(
            rows,
            vec![AnswerRow {
                actor: "norte".to_string(),
                seq: 9,
                answer_seq: 5
            }]
        );
        // Another actor's transfer (ingested) never does.
        let rows = local_answers(&tx, &ActorId::parse("store:norte").unwrap(), 0, &[own]).unwrap();
        assert!(rows.is_empty());
    }
}
