//! A store's chain of invoice records: its head (what the next record must name), the check
//! every record passes, and the verification of a whole chain that names the first bad record.
//!
//! At the store, a record that fails `check_next` is refused before it exists (in
//! `validate`), so the store only ever issues a sound chain. At HQ, records arrive by sync and
//! `merge` takes them in chain order whatever the order of arrival; a record that fails the
//! check marks the chain broken at that record (the merge never refuses an op).

use super::record::{InvoiceRecord, InvoiceType, IssuedInvoice, RecordKind};
use std::collections::BTreeMap;

/// Why a record does not follow the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum BreakReason {
    /// A record is missing, repeated or out of place.
    #[error("position {got}, expected {expected} (a record is missing, repeated or moved)")]
    Position { got: u64, expected: u64 },
    /// `HuellaAnterior` is not the previous record's `Huella`.
    #[error("HuellaAnterior {got:?} is not the previous record's Huella {expected:?}")]
    Previous { got: String, expected: String },
    /// `Huella` does not match the record's own fields: the record was changed.
    #[error("Huella {got} does not match its fields (they hash to {expected})")]
    Huella { got: String, expected: String },
    /// The invoice number skips or repeats one of its series.
    #[error("invoice number {got} of series {series:?}, expected {expected}")]
    Number {
        series: String,
        got: u64,
        expected: u64,
    },
    /// A cancellation names an invoice the chain has not issued.
    #[error("cancels invoice {0}, which this chain never issued")]
    UnknownInvoice(String),
}

/// The first record at which a chain stops holding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("record {position} ({numserie}): {reason}")]
pub struct ChainBreak {
    pub position: u64,
    pub numserie: String,
    pub reason: BreakReason,
}

/// Records taken in order, held back while an earlier one is missing (bounded by the store's
/// own outbox; HQ receives each store's ops in seq order, this only covers a resend).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FiscalChain {
    /// Records in the chain so far.
    pub records: u64,
    /// `Huella` of the last record, empty before the first.
    pub last_huella: String,
    /// `NumSerieFactura` of the last record.
    pub last_numserie: String,
    /// Last invoice number per series.
    numbers: BTreeMap<String, u64>,
    /// The first record that broke the chain, if any.
    pub broken_at: Option<ChainBreak>,
    pending: BTreeMap<u64, InvoiceRecord>,
    /// Registrations by the sale or return they are for.
    invoices: BTreeMap<String, IssuedInvoice>,
}

impl FiscalChain {
    /// The number the next registration of `series` gets.
    pub fn next_number(&self, series: &str) -> u64 {
        self.numbers.get(series).copied().unwrap_or(0) + 1
    }

    /// Records that arrived ahead of a missing one.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The invoice issued for a sale or return id.
    pub fn invoice_for(&self, reference: &str) -> Option<&IssuedInvoice> {
        self.invoices.get(reference)
    }

    /// Does `r` follow this chain exactly?
    pub fn check_next(&self, r: &InvoiceRecord) -> Result<(), BreakReason> {
        if r.position != self.records + 1 {
            return Err(BreakReason::Position {
                got: r.position,
                expected: self.records + 1,
            });
        }
        if r.previous != self.last_huella {
            return Err(BreakReason::Previous {
                got: r.previous.clone(),
                expected: self.last_huella.clone(),
            });
        }
        let computed = r.computed_huella();
        if r.huella != computed {
            return Err(BreakReason::Huella {
                got: r.huella.clone(),
                expected: computed,
            });
        }
        let last = self.numbers.get(&r.series).copied().unwrap_or(0);
        match r.kind {
            RecordKind::Alta if r.number != last + 1 => Err(BreakReason::Number {
                series: r.series.clone(),
                got: r.number,
                expected: last + 1,
            }),
            RecordKind::Anulacion if r.number == 0 || r.number > last => {
                Err(BreakReason::UnknownInvoice(r.numserie()))
            }
            _ => Ok(()),
        }
    }

    /// Take a record from sync or the log: in position order, the first failure recorded.
    pub fn merge(&mut self, record: InvoiceRecord) {
        if record.position <= self.records {
            return; // already in the chain (op ids make this unreachable; harmless)
        }
        self.pending.insert(record.position, record);
        while let Some(next) = self.pending.remove(&(self.records + 1)) {
            if let Err(reason) = self.check_next(&next) {
                if self.broken_at.is_none() {
                    self.broken_at = Some(ChainBreak {
                        position: next.position,
                        numserie: next.numserie(),
                        reason,
                    });
                }
            }
            self.advance(&next);
        }
    }

    /// Move the head past `r` (checked or not).
    fn advance(&mut self, r: &InvoiceRecord) {
        self.records = r.position;
        self.last_huella = r.huella.clone();
        self.last_numserie = r.numserie();
        if r.kind == RecordKind::Alta {
            let n = self.numbers.entry(r.series.clone()).or_default();
            *n = (*n).max(r.number);
            self.invoices.insert(
                r.reference.clone(),
                IssuedInvoice {
                    position: r.position,
                    numserie: r.numserie(),
                    fecha: r.fecha.clone(),
                    tipo: r.tipo,
                    importe_cents: r.importe_cents,
                    customer_tax_id: r.customer_tax_id.clone(),
                },
            );
        }
    }
}

/// Checks a chain read back from storage one record at a time, in position order.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    chain: FiscalChain,
}

impl Verifier {
    /// The next record: every hash, link and number must hold.
    pub fn push(&mut self, r: &InvoiceRecord) -> Result<(), ChainBreak> {
        if let Err(reason) = self.chain.check_next(r) {
            return Err(ChainBreak {
                position: if matches!(reason, BreakReason::Position { .. }) {
                    self.chain.records + 1
                } else {
                    r.position
                },
                numserie: r.numserie(),
                reason,
            });
        }
        self.chain.advance(r);
        Ok(())
    }

    /// Records checked so far.
    pub fn records(&self) -> u64 {
        self.chain.records
    }
}

/// Check a whole chain read back from storage, in position order. `Ok(n)` is the number of
/// records.
pub fn verify<'a>(records: impl IntoIterator<Item = &'a InvoiceRecord>) -> Result<u64, ChainBreak> {
    let mut v = Verifier::default();
    for r in records {
        v.push(r)?;
    }
    Ok(v.records())
}

/// Is `tipo` a rectifying type?
pub fn is_rectifying(tipo: InvoiceType) -> bool {
    matches!(tipo, InvoiceType::R1 | InvoiceType::R5)
}
