//! VERI*FACTU at the store node: the issuer set up from `[fiscal]`, and the payload builders
//! that put an invoice record in the same transaction as the sale or return it invoices.
//!
//! Calling protocol: build the change's payloads as usual, then hand them to `with_invoice`
//! and the result to `Node::submit_built`. The writer runs the builder against the replica
//! as its group transaction has it, so the record takes the next position, number and
//! previous `Huella` of the store's chain, and commits with the change or not at all.
//! `aeat` sends the records to the tax agency; `journal` verifies and exports a database's.

pub mod aeat;
pub mod answer;
pub mod journal;
pub mod xml;

use crate::config::FiscalConfig;
use crate::domain::fiscal::{
    qr_url, FiscalChain, InvoiceDraft, InvoiceRecord, IssuedInvoice, Issuer, Stamp,
};
use crate::domain::{DomainError, Payload, Replica, StoreId};
use crate::store::BuildPayloads;
use std::sync::Arc;

/// The store's fiscal identity, ready to issue records.
#[derive(Debug, Clone)]
pub struct FiscalSetup {
    pub issuer: Issuer,
    /// Address lines for the receipt.
    pub address: Vec<String>,
    pub zone: jiff::tz::TimeZone,
    pub qr_base_url: String,
}

impl FiscalSetup {
    /// From a config that `check-config` accepted.
    pub fn from_config(c: &FiscalConfig) -> anyhow::Result<FiscalSetup> {
        Ok(FiscalSetup {
            issuer: Issuer {
                nif: c.tax_id()?,
                name: c.name.trim().to_string(),
                series: c.series.clone(),
            },
            address: c.address.clone(),
            zone: c.zone()?,
            qr_base_url: c.qr_base_url.clone(),
        })
    }

    /// The receipt's QR URL for `record`.
    pub fn qr_url(&self, record: &InvoiceRecord) -> String {
        qr_url(
            &self.qr_base_url,
            &record.issuer_nif,
            &record.numserie(),
            &record.fecha,
            record.importe_cents,
        )
    }

    /// Date and time of issue as printed: `01-01-2024 19:20`.
    pub fn printed_time(&self, record: &InvoiceRecord) -> String {
        let hm = record.generated_at.get(11..16).unwrap_or("");
        format!("{} {hm}", record.fecha)
    }

    /// The `Invoice` op that puts `draft` next in `store`'s chain, at `now_ms`.
    pub fn invoice(
        &self,
        chain: &FiscalChain,
        store: &StoreId,
        now_ms: u64,
        draft: InvoiceDraft,
    ) -> Result<Payload, DomainError> {
        let stamp = Stamp::at(now_ms, &self.zone).map_err(|e| DomainError::InvalidField {
            field: "invoice",
            reason: e.to_string(),
        })?;
        Ok(Payload::Invoice {
            store: store.clone(),
            record: Box::new(chain.issue(&self.issuer, draft, &stamp)),
        })
    }
}

/// What the invoice issued with a change is for.
#[derive(Debug, Clone)]
pub enum InvoiceFor {
    /// A till sale (`InvoiceDraft::sale`).
    Sale(InvoiceDraft),
    /// A return or exchange: a rectifying invoice (R5, or R1 for a full invoice) naming the
    /// invoice of `sale`. `original` is that invoice when the caller has it (a sale of another
    /// store, fetched from HQ); otherwise it is looked up in this replica's chains. `net_lines`
    /// are `(gross cents VAT included, vat_bp)`: negative for refunded units, positive for
    /// units an exchange adds.
    Rectifying {
        reference: String,
        sale: String,
        original: Option<IssuedInvoice>,
        net_lines: Vec<(i64, u32)>,
    },
}

/// The invoice issued for `reference` (a sale or return id) in any chain this replica holds.
pub fn issued_invoice(replica: &Replica, reference: &str) -> Option<IssuedInvoice> {
    replica
        .state()
        .fiscal
        .values()
        .find_map(|chain| chain.invoice_for(reference).cloned())
}

/// A builder for `Node::submit_built`: `payloads`, then the invoice `what` asks for as the
/// next record of `store`'s chain. For a rectification whose original sale has no invoice
/// (sold before `[fiscal]` was configured) the R5 names no invoice.
pub fn with_invoice(
    setup: Arc<FiscalSetup>,
    store: StoreId,
    mut payloads: Vec<Payload>,
    what: InvoiceFor,
) -> BuildPayloads {
    Box::new(move |replica: &Replica, now_ms: u64| {
        let draft = match what {
            InvoiceFor::Sale(draft) => draft,
            InvoiceFor::Rectifying {
                reference,
                sale,
                original,
                net_lines,
            } => {
                let original = original.or_else(|| issued_invoice(replica, &sale));
                InvoiceDraft::rectifying(&reference, original.as_ref(), net_lines)
            }
        };
        let fresh = FiscalChain::default();
        let chain = replica.state().fiscal.get(&store).unwrap_or(&fresh);
        payloads.push(setup.invoice(chain, &store, now_ms, draft)?);
        Ok(payloads)
    })
}

/// The invoice record among committed ops, if any.
pub fn record_of(ops: &[crate::domain::Op]) -> Option<InvoiceRecord> {
    ops.iter().find_map(|op| match &op.payload {
        Payload::Invoice { record, .. } => Some((**record).clone()),
        _ => None,
    })
}
