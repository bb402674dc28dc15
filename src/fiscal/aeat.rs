//! The durable submission queue to the AEAT's VERI*FACTU endpoint (DESIGN.md section 13).
//!
//! The queue is the journal itself: records above the store's mark in
//! `fiscal_submission_marks` are still to be sent. `Submitter::step` sends the next batch of at
//! most 1,000 records in a SOAP envelope (over mutual TLS with the configured client
//! certificate), keeps each record's answer, moves the mark past the answered records, and
//! sets when the next batch may go: after the `TiempoEsperaEnvio` the answer asks for, or
//! after a backoff that doubles with each failure. The mark and answers are written in one
//! transaction, so a crash resends at most one batch (the AEAT answers a resent record as a
//! duplicate, which counts as registered). `spawn` runs `step` in a loop.

use super::answer::{self, ANSWER_BYTES_MAX};
use super::journal::system_of;
use super::xml::{registration, RECORDS_PER_MESSAGE_MAX};
use crate::config::{load_identity, AeatConfig};
use crate::domain::fiscal::InvoiceRecord;
use crate::domain::StoreId;
use crate::store::fiscal::{self as sql, RecordAnswer, SubmissionMark};
use crate::store::{now_ms, Node, StoreError};
use std::time::Duration;
use tokio::sync::watch;

/// First wait after a failure; it doubles with each failure in a row.
pub const RETRY_BACKOFF_MS_MIN: u64 = 1_000;
/// How long an idle queue sleeps when no commit wakes it.
pub const IDLE_POLL_MS: u64 = 5_000;
/// Longest wait for the AEAT's answer.
pub const REQUEST_TIMEOUT_S: u64 = 60;

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to send.
    Idle,
    /// The AEAT asked to wait (or a backoff runs) until this instant.
    Waiting { until_ms: u64 },
    /// A batch was sent and answered.
    Sent {
        accepted: usize,
        rejected: usize,
        wait_s: u64,
    },
    /// The batch could not be delivered or was refused whole; retried at `retry_at_ms`.
    Failed { error: String, retry_at_ms: u64 },
}

/// Sends one store's records.
pub struct Submitter {
    node: Node,
    store: StoreId,
    url: String,
    client: reqwest::Client,
    backoff_ms_max: u64,
}

impl Submitter {
    /// A submitter for `store`'s records in `node`, to the endpoint of `cfg`.
    pub fn new(node: Node, store: StoreId, cfg: &AeatConfig) -> anyhow::Result<Submitter> {
        let mut client = reqwest::Client::builder()
            .timeout(Duration::from_secs(REQUEST_TIMEOUT_S))
            .connect_timeout(Duration::from_secs(10));
        if let Some(path) = &cfg.client_cert {
            client = client.identity(load_identity(path).map_err(anyhow::Error::msg)?);
        }
        Ok(Submitter {
            node,
            store,
            url: cfg.url.clone(),
            client: client.build()?,
            backoff_ms_max: cfg.retry_backoff_ms_max,
        })
    }

    /// Send the next batch if one is due at `now_ms`.
    pub async fn step(&self, now_ms: u64) -> Result<Step, StoreError> {
        let store = self.store.to_string();
        let s = store.clone();
        let mark = self
            .node
            .query(move |c| sql::submission_mark(c, &s))
            .await?;
        if now_ms < mark.next_send_ms {
            return Ok(Step::Waiting {
                until_ms: mark.next_send_ms,
            });
        }
        let (s, after) = (store.clone(), mark.position);
        let (previous, rows) = self
            .node
            .query(move |c| {
                let previous = match after {
                    0 => None,
                    p => sql::record_at(c, &s, p)?,
                };
                Ok((
                    previous,
                    sql::records(c, &s, after, RECORDS_PER_MESSAGE_MAX)?,
                ))
            })
            .await?;
        let mut batch: Vec<InvoiceRecord> = Vec::with_capacity(rows.len());
        for row in rows {
            match row {
                Ok(r) => batch.push(r),
                Err(e) if batch.is_empty() => {
                    return self.failed(mark, now_ms, e.to_string()).await;
                }
                Err(_) => break,
            }
        }
        let Some(first) = batch.first() else {
            return Ok(Step::Idle);
        };
        let body = envelope(&registration(
            &system_of(&store, first),
            previous.as_ref(),
            &batch,
        ));
        let answer = match self.post(body).await {
            Ok(text) => answer::parse(&text).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match answer {
            Err(error) => self.failed(mark, now_ms, error).await,
            Ok(answer) => {
                let answers = answer::answers_for(&answer, &batch);
                if answers.is_empty() {
                    let error = format!(
                        "the answer ({}) names none of the {} records sent",
                        answer.state,
                        batch.len()
                    );
                    return self.failed(mark, now_ms, error).await;
                }
                let accepted = answers.iter().filter(|a| a.status != "rejected").count();
                let rejected = answers.len() - accepted;
                let next = SubmissionMark {
                    position: answers.last().map_or(mark.position, |a| a.position),
                    next_send_ms: now_ms + answer.wait_s * 1000,
                    failures: 0,
                    last_error: None,
                };
                self.save(answers, next, now_ms).await?;
                tracing::info!(
                    store = %self.store,
                    accepted,
                    rejected,
                    wait_s = answer.wait_s,
                    "AEAT answered a submission"
                );
                Ok(Step::Sent {
                    accepted,
                    rejected,
                    wait_s: answer.wait_s,
                })
            }
        }
    }

    async fn post(&self, body: String) -> Result<String, String> {
        let resp = self
            .client
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("cannot reach the AEAT: {e}"))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the AEAT's answer: {e}"))?;
        if bytes.len() > ANSWER_BYTES_MAX {
            return Err(format!("answer of {} bytes is too large", bytes.len()));
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // A SOAP fault comes with a 500: read it for its reason.
        if status.is_success() || text.contains("Fault") {
            Ok(text)
        } else {
            Err(format!("the AEAT answered HTTP {status}"))
        }
    }

    async fn failed(
        &self,
        mark: SubmissionMark,
        now_ms: u64,
        error: String,
    ) -> Result<Step, StoreError> {
        let failures = mark.failures.saturating_add(1);
        let backoff = RETRY_BACKOFF_MS_MIN
            .saturating_mul(1 << (failures - 1).min(30))
            .min(self.backoff_ms_max);
        let retry_at_ms = now_ms + backoff;
        tracing::warn!(store = %self.store, failures, backoff_ms = backoff, %error, "AEAT submission failed");
        let next = SubmissionMark {
            position: mark.position,
            next_send_ms: retry_at_ms,
            failures,
            last_error: Some(error.clone()),
        };
        self.save(Vec::new(), next, now_ms).await?;
        Ok(Step::Failed { error, retry_at_ms })
    }

    async fn save(
        &self,
        answers: Vec<RecordAnswer>,
        mark: SubmissionMark,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let store = self.store.to_string();
        self.node
            .write(move |tx| {
                for a in &answers {
                    sql::save_answer(tx, &store, a, now_ms)?;
                }
                sql::set_submission_mark(tx, &store, &mark)
            })
            .await
    }

    /// Run `step` until `shutdown` turns true: at once after a batch, at the instant a wait
    /// ends, and when a commit may have added records.
    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut events = self.node.subscribe();
            loop {
                let now = now_ms();
                let sleep_ms = match self.step(now).await {
                    Ok(Step::Sent { .. }) => 0,
                    Ok(Step::Waiting { until_ms }) => until_ms.saturating_sub(now),
                    Ok(Step::Failed { retry_at_ms, .. }) => retry_at_ms.saturating_sub(now),
                    Ok(Step::Idle) => IDLE_POLL_MS,
                    Err(e) => {
                        tracing::error!(error = %e, "AEAT queue cannot read the journal");
                        IDLE_POLL_MS
                    }
                };
                if sleep_ms == 0 {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => {}
                    _ = events.recv() => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    return;
                }
            }
        })
    }
}

/// The SOAP envelope around a `RegFactuSistemaFacturacion`.
pub fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Header/><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
}

/// The store's journal and submission state for its `/metrics`: records issued, records not
/// yet answered by the AEAT, failed attempts in a row.
pub async fn render_metrics(node: &Node, store: &StoreId) -> String {
    let records = node.read(|r| r.state().fiscal.get(store).map_or(0, |c| c.records));
    let s = store.to_string();
    let mark = node
        .query(move |c| sql::submission_mark(c, &s))
        .await
        .unwrap_or_default();
    let l = [("store", store.as_str())];
    let mut s = crate::exposition::Scrape::new();
    s.gauge(
        "storenode_fiscal_records",
        "Invoice records in this store's chain",
        &l,
        records,
    );
    s.gauge(
        "storenode_aeat_unanswered",
        "Records the AEAT has not answered yet",
        &l,
        records.saturating_sub(mark.position),
    );
    s.gauge(
        "storenode_aeat_failures",
        "Failed submissions in a row",
        &l,
        u64::from(mark.failures),
    );
    s.encode()
}
