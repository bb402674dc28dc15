//! Print jobs the terminal asks for (receipts, bag labels, drawer kicks) and the sink that
//! takes them. A job is written in the same transaction as the sale or order step that causes
//! it: once the associate sees "sold", its receipt is queued, crash or not. The devices module
//! renders jobs to ESC/POS and queues them durably; `MemoryPrintSink` keeps them in memory for
//! tests and nodes without a printer.

use serde::Serialize;
use std::sync::{Arc, Mutex};

/// A job made ready to be written inside the transaction of the change that causes it.
pub type StagedJob = Box<dyn FnOnce(&rusqlite::Transaction) -> rusqlite::Result<()> + Send>;

/// One printed line of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptLine {
    pub sku: String,
    pub name: String,
    pub qty: u32,
    pub unit_cents: i64,
    pub vat_bp: u32,
}

/// The invoice part of a receipt: issuer, number, local time and the AEAT's QR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FiscalMark {
    pub nif: String,
    pub name: String,
    /// `NumSerieFactura`.
    pub invoice: String,
    /// `TipoFactura`: F1, F2, R1, R5.
    pub tipo: String,
    /// Local date and time of issue as printed.
    pub issued_at: String,
    /// The invoice a rectifying one corrects.
    pub rectifies: Option<String>,
    /// The QR's URL (AEAT validation service).
    pub qr: String,
}

impl FiscalMark {
    /// The mark of `record`, issued with `setup`.
    pub fn of(
        setup: &crate::fiscal::FiscalSetup,
        record: &crate::domain::fiscal::InvoiceRecord,
    ) -> FiscalMark {
        FiscalMark {
            nif: record.issuer_nif.clone(),
            name: record.issuer_name.clone(),
            invoice: record.numserie(),
            tipo: record.tipo.as_str().to_string(),
            issued_at: setup.printed_time(record),
            rectifies: record.rectifies.as_ref().map(|r| r.numserie.clone()),
            qr: setup.qr_url(record),
        }
    }
}

/// What to print.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PrintJob {
    /// A till sale or a handed-over pickup order.
    Receipt {
        store: String,
        /// Sale id or order id.
        reference: String,
        staff: String,
        lines: Vec<ReceiptLine>,
        total_cents: i64,
        /// `cash`, `card`, or `pickup` (paid online).
        tender: String,
        at_ms: u64,
        /// The invoice this receipt is (VERI*FACTU), when the store issues them.
        fiscal: Option<FiscalMark>,
    },
    /// The label stuck on a ready pickup bag.
    BagLabel {
        store: String,
        order: String,
        customer: String,
        pickup_code: String,
        qr: String,
        items: u32,
    },
    /// Open the cash drawer.
    DrawerKick,
    /// The note travelling with a transfer; the receiving store scans its QR (`TR1:<id>`).
    TransferNote {
        transfer: String,
        from: String,
        to: String,
        staff: String,
        /// (sku, qty) per line.
        lines: Vec<(String, u32)>,
        qr: String,
    },
    /// A return or an exchange: the returned lines refunded and, for an exchange, the new
    /// sale's lines, with the net the customer pays (positive) or gets back (negative).
    ReturnReceipt {
        store: String,
        /// Return id.
        reference: String,
        /// The sale or order returned.
        sale: String,
        /// An exchange's new sale: the receipt carries its scannable reference.
        exchange_sale: Option<String>,
        staff: String,
        returned: Vec<ReceiptLine>,
        exchange: Vec<ReceiptLine>,
        net_cents: i64,
        tender: String,
        verified: bool,
        at_ms: u64,
        /// The rectifying invoice (R5/R1), with `[fiscal]`.
        fiscal: Option<FiscalMark>,
    },
    /// A cash session's X (mid-day) or Z (close) report: labelled amounts.
    CashReport {
        store: String,
        title: String,
        session: String,
        staff: String,
        /// First and last invoice numbers of the session, as printed.
        invoices: String,
        rows: Vec<(String, i64)>,
    },
}

/// The scannable reference printed on a receipt as a QR, `SR1:<store>:<sale>`: a return
/// starts by scanning it (`devices::barcode::Scan::SaleReceipt`).
pub fn sale_reference(store: &str, sale: &str) -> String {
    format!("SR1:{store}:{sale}")
}

/// A device's state as `/status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceStatus {
    pub name: String,
    pub kind: String,
    pub ok: bool,
    pub detail: String,
}

/// Where print jobs go.
pub trait PrintSink: Send + Sync + 'static {
    /// Render `job` now; the returned step writes it in the caller's transaction. A job that
    /// cannot be queued (a rendering bug) is logged and skipped: a printer problem never fails
    /// the sale that caused it. Only database errors fail the step.
    fn stage(&self, job: PrintJob) -> StagedJob;
    /// The transaction holding staged jobs committed: start printing them.
    fn committed(&self);
    fn devices(&self) -> Vec<DeviceStatus>;
}

/// Keeps every job in memory, in order (pushed when the staged step runs in its transaction).
#[derive(Debug, Default)]
pub struct MemoryPrintSink {
    jobs: Arc<Mutex<Vec<PrintJob>>>,
}

impl MemoryPrintSink {
    pub fn jobs(&self) -> Vec<PrintJob> {
        match self.jobs.lock() {
            Ok(j) => j.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl PrintSink for MemoryPrintSink {
    fn stage(&self, job: PrintJob) -> StagedJob {
        let jobs = self.jobs.clone();
        Box::new(move |_tx| {
            match jobs.lock() {
                Ok(mut j) => j.push(job),
                Err(p) => p.into_inner().push(job),
            }
            Ok(())
        })
    }
    fn committed(&self) {}
    fn devices(&self) -> Vec<DeviceStatus> {
        vec![DeviceStatus {
            name: "receipt".into(),
            kind: "printer".into(),
            ok: true,
            detail: "memory".into(),
        }]
    }
}
