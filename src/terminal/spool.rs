//! The print sink of a real node: each job becomes ESC/POS bytes (devices::escpos documents)
//! and a row of the durable print queue (migrations/0002), written in the transaction of the
//! sale or order step that causes it;
//! the devices print worker sharing `wake` sends it to the printer and retries until it prints.

use super::print::{sale_reference, DeviceStatus, PrintJob, PrintSink, StagedJob};
use crate::devices::escpos::{self, EscPos, PickupMark, StoreHeader, Tender, COLUMNS_80MM};
use crate::devices::print_queue::{self, PrinterHealth, QueueError};
use crate::store::now_ms;
use std::sync::Arc;
use tokio::sync::{watch, Notify};

/// Dot size of one QR module on a transfer note (as on bag labels).
const NOTE_QR_MODULE_DOTS: u8 = 6;

/// Drawer pulse: on and off time of the solenoid.
const DRAWER_ON_MS: u16 = 100;
const DRAWER_OFF_MS: u16 = 200;

/// One printer's queue as the sink sees it: the name the print worker drains, its wake-up,
/// and its health (from `PrintWorker::spawn`) for the device list of `/status`.
pub struct PrinterQueue {
    pub name: String,
    pub wake: Arc<Notify>,
    pub health: Option<watch::Receiver<PrinterHealth>>,
}

/// Queues the terminal's jobs: receipts and drawer kicks on the receipt printer (a counter
/// has one ESC/POS printer with the drawer wired to it), bag labels on the label printer when
/// there is one, else on the receipt printer too.
pub struct QueuePrintSink {
    receipt: PrinterQueue,
    label: Option<PrinterQueue>,
    header: StoreHeader,
}

impl QueuePrintSink {
    pub fn new(
        receipt: PrinterQueue,
        label: Option<PrinterQueue>,
        header: StoreHeader,
    ) -> QueuePrintSink {
        QueuePrintSink {
            receipt,
            label,
            header,
        }
    }

    /// The queue a job of `kind` goes to.
    fn queue_for(&self, kind: &str) -> &PrinterQueue {
        match (&self.label, kind) {
            (Some(label), "bag_label") => label,
            _ => &self.receipt,
        }
    }

    fn render(&self, job: &PrintJob) -> (&'static str, Vec<u8>) {
        match job {
            PrintJob::Receipt {
                store,
                reference,
                lines,
                total_cents,
                tender,
                at_ms,
                fiscal,
                ..
            } => {
                let receipt = escpos::Receipt {
                    store: self.header.clone(),
                    number: reference.clone(),
                    issued_at: match fiscal {
                        Some(f) => f.issued_at.clone(),
                        None => utc_minute(*at_ms),
                    },
                    lines: lines
                        .iter()
                        .map(|l| escpos::ReceiptLine {
                            name: l.name.clone(),
                            qty: l.qty,
                            unit_cents: l.unit_cents,
                            vat_bp: l.vat_bp,
                        })
                        .collect(),
                    tender: match tender.as_str() {
                        "cash" => Tender::Cash {
                            given_cents: *total_cents,
                        },
                        "card" => Tender::Card { last4: None },
                        _ => Tender::Prepaid,
                    },
                    pickup: None,
                    sale_ref: Some(sale_reference(store, reference)),
                    footer: vec!["Gracias por su visita".to_string()],
                    invoice: fiscal.as_ref().map(|f| escpos::InvoiceBlock {
                        issuer_name: f.name.clone(),
                        nif: f.nif.clone(),
                        number: f.invoice.clone(),
                        tipo: f.tipo.clone(),
                        rectifies: f.rectifies.clone(),
                        qr: f.qr.clone(),
                    }),
                };
                ("receipt", receipt.to_escpos(COLUMNS_80MM))
            }
            PrintJob::ReturnReceipt { .. } => ("return_receipt", self.return_receipt(job)),
            PrintJob::BagLabel {
                order,
                customer,
                pickup_code,
                qr,
                ..
            } => {
                let label = escpos::BagLabel {
                    order_id: order.clone(),
                    initials: initials(customer),
                    bag: (1, 1),
                    pickup: PickupMark {
                        code: pickup_code.clone(),
                        qr: qr.clone(),
                    },
                };
                ("bag_label", label.to_escpos())
            }
            PrintJob::TransferNote {
                transfer,
                from,
                to,
                staff,
                lines,
                qr,
            } => {
                let mut p = EscPos::new();
                p.init().bold(true).line("TRASPASO / TRANSFER").bold(false);
                p.line(transfer).line(&format!("{from} -> {to}"));
                p.line(&format!("Empleado {staff}"));
                for (sku, qty) in lines {
                    p.line(&format!("{qty:>5} x {sku}"));
                }
                p.qr(qr, NOTE_QR_MODULE_DOTS, escpos::QrEcc::M);
                p.line(qr).feed(3).cut();
                ("transfer_note", p.finish())
            }
            PrintJob::CashReport {
                store,
                title,
                session,
                staff,
                invoices,
                rows,
            } => {
                let mut p = EscPos::new();
                p.init().bold(true).line(title).bold(false);
                p.line(store)
                    .line(session)
                    .line(&format!("Empleado {staff}"));
                p.line(&"-".repeat(COLUMNS_80MM));
                for (label, cents) in rows {
                    p.line(&escpos::document::two_columns(
                        label,
                        &escpos::format_cents(*cents),
                        COLUMNS_80MM,
                    ));
                }
                p.line(&"-".repeat(COLUMNS_80MM)).line(invoices);
                p.feed(3).cut();
                ("cash_report", p.finish())
            }
            PrintJob::DrawerKick => (
                "drawer",
                EscPos::new()
                    .init()
                    .drawer_kick(DRAWER_ON_MS, DRAWER_OFF_MS)
                    .finish(),
            ),
        }
    }
}

impl QueuePrintSink {
    /// A return (or exchange) receipt: returned lines at minus what was paid, the exchange's
    /// lines at their price, the net paid or refunded, and the new sale's reference.
    fn return_receipt(&self, job: &PrintJob) -> Vec<u8> {
        let PrintJob::ReturnReceipt {
            store,
            reference,
            sale,
            exchange_sale,
            returned,
            exchange,
            net_cents,
            tender,
            verified,
            at_ms,
            fiscal,
            ..
        } = job
        else {
            return Vec::new();
        };
        let line = |l: &super::print::ReceiptLine, sign: i64, prefix: &str| escpos::ReceiptLine {
            name: format!("{prefix}{}", l.name),
            qty: l.qty,
            unit_cents: sign * l.unit_cents,
            vat_bp: l.vat_bp,
        };
        let mut lines: Vec<escpos::ReceiptLine> =
            returned.iter().map(|l| line(l, -1, "DEV ")).collect();
        lines.extend(exchange.iter().map(|l| line(l, 1, "")));
        let mut footer = vec![format!("Devolución del ticket {sale}")];
        if !verified {
            footer.push("Devolución no verificada (encargado)".to_string());
        }
        let receipt = escpos::Receipt {
            store: self.header.clone(),
            number: reference.clone(),
            issued_at: match fiscal {
                Some(f) => f.issued_at.clone(),
                None => utc_minute(*at_ms),
            },
            lines,
            tender: match tender.as_str() {
                "cash" => Tender::Cash {
                    given_cents: *net_cents,
                },
                _ => Tender::Card { last4: None },
            },
            pickup: None,
            sale_ref: exchange_sale.as_ref().map(|s| sale_reference(store, s)),
            footer,
            invoice: fiscal.as_ref().map(|f| escpos::InvoiceBlock {
                issuer_name: f.name.clone(),
                nif: f.nif.clone(),
                number: f.invoice.clone(),
                tipo: f.tipo.clone(),
                rectifies: f.rectifies.clone(),
                qr: f.qr.clone(),
            }),
        };
        receipt.to_escpos(COLUMNS_80MM)
    }
}

/// "Lucía Pérez Gómez" -> "L.P.G." (a bag on an open shelf shows no full name).
fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(3)
        .map(|c| format!("{}.", c.to_uppercase()))
        .collect()
}

/// `2026-11-23 10:42 UTC` from milliseconds since the epoch (civil-from-days, no time zone
/// database on the node).
pub fn utc_minute(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02} {h:02}:{m:02} UTC")
}

impl PrintSink for QueuePrintSink {
    fn stage(&self, job: PrintJob) -> StagedJob {
        let (kind, bytes) = self.render(&job);
        let printer = self.queue_for(kind).name.clone();
        let now = now_ms() as i64;
        Box::new(
            move |tx| match print_queue::enqueue(tx, &printer, kind, &bytes, now) {
                Ok(_) => Ok(()),
                Err(QueueError::Db(e)) => Err(e),
                Err(other) => {
                    tracing::error!(printer, kind, error = %other, "print job skipped");
                    Ok(())
                }
            },
        )
    }

    fn committed(&self) {
        for queue in std::iter::once(&self.receipt).chain(&self.label) {
            queue.wake.notify_one();
        }
    }

    fn devices(&self) -> Vec<DeviceStatus> {
        std::iter::once(&self.receipt)
            .chain(&self.label)
            .map(device_status)
            .collect()
    }
}

fn device_status(queue: &PrinterQueue) -> DeviceStatus {
    let health = queue.health.as_ref().map(|h| h.borrow().clone());
    let (ok, detail) = match &health {
        Some(h) => (
            h.online != Some(false),
            match (&h.last_error, h.pending) {
                (Some(e), n) => format!("{e} · {n} pending"),
                (None, 0) => "ready".to_string(),
                (None, n) => format!("{n} pending"),
            },
        ),
        None => (true, "queued".to_string()),
    };
    DeviceStatus {
        name: queue.name.clone(),
        kind: "printer".into(),
        ok,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_carry_a_utc_date_and_labels_only_initials() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minute(1_795_430_520_000), "2026-11-23 10:42 UTC");
        assert_eq!(initials("Lucía Pérez Gómez"), "L.P.G.");
    }
}
