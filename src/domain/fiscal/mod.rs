//! VERI*FACTU invoice records (DESIGN.md section 13): Spanish tax ids, the `Huella` of each
//! record, the chain that links them, and the QR URL of a receipt. Pure: the caller passes the
//! time (`Stamp::at(now_ms, zone)`) and reads and writes nothing.
//!
//! Invariants: a store issues records only through its `FiscalChain` head (next position, its
//! previous `Huella`, the next number of the series), so its chain has no gap, no duplicate
//! and no reordering; `verify` and `merge` apply the same `check_next` to every record.

pub mod chain;
pub mod huella;
pub mod nif;
pub mod record;

#[cfg(test)]
mod tests;

pub use chain::{verify, BreakReason, ChainBreak, FiscalChain, Verifier};
pub use nif::{NifError, TaxId};
pub use record::{
    qr_url, InvoiceDraft, InvoiceRecord, InvoiceRef, InvoiceType, IssuedInvoice, Issuer,
    RecordKind, Stamp, VatLine,
};

impl FiscalChain {
    /// The next record of this chain for `draft`, issued by `issuer` at `stamp`.
    pub fn issue(&self, issuer: &Issuer, draft: InvoiceDraft, stamp: &Stamp) -> InvoiceRecord {
        let cuota_cents = draft.vat.iter().map(|v| v.cuota_cents).sum();
        let importe_cents = draft.importe_cents();
        let mut record = InvoiceRecord {
            position: self.records + 1,
            kind: RecordKind::Alta,
            issuer_nif: issuer.nif.to_string(),
            issuer_name: issuer.name.clone(),
            series: issuer.series.clone(),
            number: self.next_number(&issuer.series),
            fecha: stamp.fecha.clone(),
            tipo: draft.tipo,
            cuota_cents,
            importe_cents,
            vat: draft.vat,
            customer_tax_id: draft.customer_tax_id.map(|t| t.to_string()),
            rectifies: draft.rectifies,
            reference: draft.reference,
            generated_at: stamp.generated_at.clone(),
            previous: self.last_huella.clone(),
            huella: String::new(),
        };
        record.huella = record.computed_huella();
        record
    }
}
