//! Each store's VERI*FACTU chain as HQ sees it (DESIGN.md sections 13 and 17): HQ's replica
//! checks every record as it arrives (`FiscalChain::merge`), and this module shows the result
//! on `GET /api/v1/journal/{store}`, in `/metrics` and on the dashboard.

use super::error::ApiError;
use super::HqState;
use crate::domain::StoreId;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

/// One store's chain state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalView {
    pub store: StoreId,
    pub records: u64,
    pub last_invoice: Option<String>,
    pub last_huella: Option<String>,
    /// `record <n> (<numserie>): <reason>` of the first bad record.
    pub broken_at: Option<String>,
    /// Records received ahead of a missing one.
    pub pending: usize,
}

impl JournalView {
    pub fn intact(&self) -> bool {
        self.broken_at.is_none()
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "store": self.store.as_str(),
            "records": self.records,
            "last_invoice": self.last_invoice,
            "last_huella": self.last_huella,
            "chain": if self.intact() { "intact" } else { "broken" },
            "pending": self.pending,
        });
        if let Some(at) = &self.broken_at {
            v["broken_at"] = json!(at);
        }
        v
    }
}

/// The chain of `store` in HQ's replica.
pub fn view(state: &HqState, store: &StoreId) -> JournalView {
    state.node.read(|r| {
        let chain = r.state().fiscal.get(store);
        let some = |s: &String| (!s.is_empty()).then(|| s.clone());
        JournalView {
            store: store.clone(),
            records: chain.map_or(0, |c| c.records),
            last_invoice: chain.and_then(|c| some(&c.last_numserie)),
            last_huella: chain.and_then(|c| some(&c.last_huella)),
            broken_at: chain.and_then(|c| c.broken_at.as_ref().map(ToString::to_string)),
            pending: chain.map_or(0, |c| c.pending()),
        }
    })
}

/// `GET /api/v1/journal/{store}`.
pub async fn show(
    State(state): State<HqState>,
    Path(store): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = super::api::known_store(&state, &store)?;
    Ok(Json(view(&state, &store).to_json()))
}

/// Gauges per configured store: `storenode_fiscal_chain_intact` (1, or 0 once a record broke
/// the chain) and `storenode_fiscal_records`.
pub fn render_metrics(state: &HqState) -> String {
    let mut s = crate::exposition::Scrape::new();
    for store in &state.settings.stores {
        let v = view(state, store);
        let l = [("store", store.as_str())];
        s.gauge(
            "storenode_fiscal_chain_intact",
            "1 while every invoice record received from the store chains and hashes correctly, \
             0 from the first bad one",
            &l,
            u64::from(v.intact()),
        );
        s.gauge(
            "storenode_fiscal_records",
            "Invoice records received from the store",
            &l,
            v.records,
        );
    }
    s.encode()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, madrid, send};
    use crate::domain::fiscal::{FiscalChain, InvoiceDraft, Issuer, Stamp, TaxId};
    use crate::domain::{Op, Payload};
    use axum::http::{Method, StatusCode};

    fn issuer() -> Issuer {
        Issuer {
            nif: TaxId::parse("89890001K").unwrap(),
            name: "Tiendas Demo SL".into(),
            series: "MAD1".into(),
        }
    }

    fn stamp() -> Stamp {
        Stamp {
            fecha: "29-11-2026".into(),
            generated_at: "2026-11-29T10:00:00+01:00".into(),
        }
    }

    #[tokio::test]
    async fn the_journal_shows_an_intact_chain_then_the_first_record_that_broke_it() {
        let mut f = fixture().await;
        let (status, body) = send(
            &f.state,
            Method::GET,
            "/api/v1/journal/madrid-centro",
            None,
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["records"], 0);
        assert_eq!(body["chain"], "intact");
        for i in 0..2 {
            let chain = f
                .madrid
                .state()
                .fiscal
                .get(&madrid())
                .cloned()
                .unwrap_or_default();
            let draft = InvoiceDraft::sale(&format!("S{i}"), [(1, 121, 2100)], None);
            let record = chain.issue(&issuer(), draft, &stamp());
            f.store_does(vec![Payload::Invoice {
                store: madrid(),
                record: Box::new(record),
            }])
            .await;
        }
        let (_, body) = send(
            &f.state,
            Method::GET,
            "/api/v1/journal/madrid-centro",
            None,
            &[],
        )
        .await;
        assert_eq!(body["records"], 2);
        assert_eq!(body["last_invoice"], "MAD1-2");
        assert_eq!(body["chain"], "intact");
        assert!(body.get("broken_at").is_none());

        // A record changed on its way (its amount no longer matches its Huella): HQ takes it,
        // as a merge never refuses, and reports the chain broken at that record.
        let chain: FiscalChain = f.madrid.state().fiscal.get(&madrid()).cloned().unwrap();
        let mut record = chain.issue(
            &issuer(),
            InvoiceDraft::sale("S9", [(1, 500, 2100)], None),
            &stamp(),
        );
        record.importe_cents = 5;
        let op = Op {
            actor: madrid().actor(),
            seq: f.madrid.next_seq(),
            hlc: f.madrid.clock(),
            payload: Payload::Invoice {
                store: madrid(),
                record: Box::new(record),
            },
        };
        let ingested = f.state.node.ingest(vec![op]).await.unwrap();
        assert_eq!(ingested.applied, 1);
        let (_, body) = send(
            &f.state,
            Method::GET,
            "/api/v1/journal/madrid-centro",
            None,
            &[],
        )
        .await;
        assert_eq!(body["chain"], "broken");
        assert_eq!(body["records"], 3);
        let at = body["broken_at"].as_str().unwrap();
        assert!(at.starts_with("record 3 (MAD1-3): Huella"), "{at}");

        let metrics = super::render_metrics(&f.state);
        assert!(metrics.contains("storenode_fiscal_chain_intact{store=\"madrid-centro\"} 0"));
        assert!(metrics.contains("storenode_fiscal_chain_intact{store=\"sevilla-nervion\"} 1"));
        assert!(metrics.contains("storenode_fiscal_records{store=\"madrid-centro\"} 3"));
        let (status, body) =
            send(&f.state, Method::GET, "/api/v1/journal/nowhere", None, &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_store"))
        );
        let (_, page) = send(&f.state, Method::GET, "/", None, &[]).await;
        assert!(page
            .as_str()
            .unwrap()
            .contains("BROKEN at record 3 (MAD1-3)"));
    }
}
