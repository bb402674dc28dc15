//! Print jobs the terminal asks for (receipts, bag labels, drawer kicks) and the sink that
//! takes them. The devices module renders them to ESC/POS and queues them durably;
//! `MemoryPrintSink` keeps them in memory for tests and nodes without a printer.

use std::future::Future;
use std::pin::Pin;

/// A boxed future, as object-safe traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
use serde::Serialize;
use std::sync::Mutex;

/// One printed line of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptLine {
    pub sku: String,
    pub name: String,
    pub qty: u32,
    pub unit_cents: i64,
    pub vat_bp: u32,
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
}

/// A device's state as `/status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceStatus {
    pub name: String,
    pub kind: String,
    pub ok: bool,
    pub detail: String,
}

/// Where print jobs go. `enqueue` resolves once the job is queued (not yet printed).
pub trait PrintSink: Send + Sync + 'static {
    fn enqueue(&self, job: PrintJob) -> BoxFuture<'_, Result<(), String>>;
    fn devices(&self) -> Vec<DeviceStatus>;
}

/// Keeps every job in memory, in order.
#[derive(Debug, Default)]
pub struct MemoryPrintSink {
    jobs: Mutex<Vec<PrintJob>>,
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
    fn enqueue(&self, job: PrintJob) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match self.jobs.lock() {
                Ok(mut j) => j.push(job),
                Err(p) => p.into_inner().push(job),
            }
            Ok(())
        })
    }
    fn devices(&self) -> Vec<DeviceStatus> {
        vec![DeviceStatus {
            name: "receipt".into(),
            kind: "printer".into(),
            ok: true,
            detail: "memory".into(),
        }]
    }
}
