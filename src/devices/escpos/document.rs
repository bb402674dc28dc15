//! Printed documents: customer receipt, pick list and bag label, rendered to ESC/POS bytes.
//!
//! Documents are plain data filled by the caller (the store owns prices, the clock and the
//! pickup key); `to_escpos` lays them out for a paper width in characters. Prices are VAT
//! inclusive integer cents, as at a Spanish till; the VAT table derives base and tax per rate.

use super::builder::{Align, EscPos, QrEcc};

/// Characters per line in font A on 80 mm paper (Epson TM-T20/T88).
pub const COLUMNS_80MM: usize = 48;
/// Dots per QR module: large enough for phone and counter scanners at arm's length.
pub const QR_MODULE_DOTS: u8 = 6;

/// Formats cents the Spanish way: `1.234,56 €`, `-0,50 €`.
pub fn format_cents(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let euros = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in euros.chars().enumerate() {
        if i > 0 && (euros.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped},{:02} €", abs % 100)
}

/// Formats a VAT rate in basis points: 2100 -> `21 %`, 550 -> `5,5 %`.
pub fn format_vat(bp: u32) -> String {
    let (whole, frac) = (bp / 100, bp % 100);
    match frac {
        0 => format!("{whole} %"),
        f if f % 10 == 0 => format!("{whole},{} %", f / 10),
        f => format!("{whole},{f:02} %"),
    }
}

/// `left` and `right` on one line of `width` characters, cutting `left` if needed.
pub fn two_columns(left: &str, right: &str, width: usize) -> String {
    let right_len = right.chars().count();
    let room = width.saturating_sub(right_len + 1);
    let left: String = left.chars().take(room).collect();
    let pad = width.saturating_sub(left.chars().count() + right_len);
    format!("{left}{}{right}", " ".repeat(pad))
}

/// The store as printed at the top of a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHeader {
    /// Trading name, printed large.
    pub name: String,
    /// Address lines.
    pub address: Vec<String>,
    /// Company tax id (NIF/CIF), required on Spanish simplified invoices.
    pub tax_id: String,
}

/// One sold item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptLine {
    /// Product name as the customer knows it.
    pub name: String,
    /// Units sold.
    pub qty: u32,
    /// Price of one unit, VAT included, in cents.
    pub unit_cents: i64,
    /// VAT rate in basis points (2100 = 21 %).
    pub vat_bp: u32,
}

impl ReceiptLine {
    /// qty x unit price.
    pub fn total_cents(&self) -> i64 {
        i64::from(self.qty) * self.unit_cents
    }
}

/// How the customer paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tender {
    /// Cash, with the amount handed over (change is computed).
    Cash {
        /// Cents handed over.
        given_cents: i64,
    },
    /// Card, with the last four digits if the terminal gave them.
    Card {
        /// Last four digits of the card.
        last4: Option<String>,
    },
    /// Paid online before pickup.
    Prepaid,
}

/// A pickup code and its QR, printed on pickup receipts and bag labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupMark {
    /// The 6-character code staff can type.
    pub code: String,
    /// The signed `PU1:...` payload.
    pub qr: String,
}

/// The VERI*FACTU part of a receipt that is an invoice (DESIGN.md section 13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceBlock {
    /// Issuer's legal name and NIF (they replace the header's tax id).
    pub issuer_name: String,
    pub nif: String,
    /// `NumSerieFactura`.
    pub number: String,
    /// `TipoFactura`: F1, F2, R1 or R5.
    pub tipo: String,
    /// The invoice a rectifying one corrects.
    pub rectifies: Option<String>,
    /// The AEAT validation URL the QR encodes.
    pub qr: String,
}

impl InvoiceBlock {
    fn title(&self) -> &'static str {
        match self.tipo.as_str() {
            "F1" => "Factura",
            "R1" | "R5" => "Factura rectificativa",
            _ => "Factura simplificada",
        }
    }
}

/// A customer receipt (simplified invoice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Store header.
    pub store: StoreHeader,
    /// Receipt or sale id.
    pub number: String,
    /// Date and time as printed, formatted by the caller (the domain reads no clock).
    pub issued_at: String,
    /// Items.
    pub lines: Vec<ReceiptLine>,
    /// Payment.
    pub tender: Tender,
    /// Pickup code and QR, for online orders collected here.
    pub pickup: Option<PickupMark>,
    /// The sale's scannable reference (`SR1:<store>:<sale>`), printed as a QR so a return
    /// starts with a scan.
    pub sale_ref: Option<String>,
    /// Closing lines ("Gracias por su visita").
    pub footer: Vec<String>,
    /// The invoice this receipt is, when the store issues VERI*FACTU invoices.
    pub invoice: Option<InvoiceBlock>,
}

/// Per VAT rate: gross, base and tax in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VatRow {
    /// Rate in basis points.
    pub vat_bp: u32,
    /// Base (without VAT).
    pub base_cents: i64,
    /// VAT amount.
    pub vat_cents: i64,
    /// Base + VAT.
    pub gross_cents: i64,
}

impl Receipt {
    /// Sum of all lines, VAT included.
    pub fn total_cents(&self) -> i64 {
        self.lines.iter().map(ReceiptLine::total_cents).sum()
    }

    /// VAT breakdown, one row per rate, ordered by rate. The base is rounded half up from the
    /// gross and the tax is the remainder, so each row adds up exactly to its gross.
    pub fn vat_rows(&self) -> Vec<VatRow> {
        let mut rows: Vec<VatRow> = Vec::new();
        for line in &self.lines {
            match rows.iter_mut().find(|r| r.vat_bp == line.vat_bp) {
                Some(row) => row.gross_cents += line.total_cents(),
                None => rows.push(VatRow {
                    vat_bp: line.vat_bp,
                    base_cents: 0,
                    vat_cents: 0,
                    gross_cents: line.total_cents(),
                }),
            }
        }
        rows.sort_by_key(|r| r.vat_bp);
        for row in &mut rows {
            let divisor = 10_000 + i128::from(row.vat_bp);
            let base = (i128::from(row.gross_cents) * 10_000 * 2 + divisor) / (2 * divisor);
            row.base_cents = i64::try_from(base).unwrap_or(i64::MAX);
            row.vat_cents = row.gross_cents - row.base_cents;
        }
        rows
    }

    /// ESC/POS bytes for a paper `width` in characters, ending with a cut.
    pub fn to_escpos(&self, width: usize) -> Vec<u8> {
        let mut p = EscPos::new();
        p.init().align(Align::Center).bold(true).size(2, 2);
        p.line(&self.store.name).size(1, 1).bold(false);
        match &self.invoice {
            Some(inv) => {
                p.line(&inv.issuer_name);
                for line in &self.store.address {
                    p.line(line);
                }
                p.line(&format!("NIF {}", inv.nif));
            }
            None => {
                for line in &self.store.address {
                    p.line(line);
                }
                p.line(&format!("NIF {}", self.store.tax_id));
            }
        }
        p.align(Align::Left).line(&"-".repeat(width));
        match &self.invoice {
            Some(inv) => {
                p.bold(true)
                    .line(&format!("{} {}", inv.title(), inv.number))
                    .bold(false);
                if let Some(orig) = &inv.rectifies {
                    p.line(&format!("Rectifica la factura {orig}"));
                }
                p.line(&two_columns(
                    &format!("Ticket {}", self.number),
                    &self.issued_at,
                    width,
                ));
            }
            None => {
                p.line(&two_columns(
                    &format!("Ticket {}", self.number),
                    &self.issued_at,
                    width,
                ));
            }
        }
        p.line(&"-".repeat(width));
        for line in &self.lines {
            let total = format_cents(line.total_cents());
            if line.qty == 1 {
                p.line(&two_columns(&line.name, &total, width));
            } else {
                p.line(&line.name);
                let each = format!("  {} x {}", line.qty, format_cents(line.unit_cents));
                p.line(&two_columns(&each, &total, width));
            }
        }
        p.line(&"-".repeat(width));
        p.bold(true).size(1, 2);
        p.line(&two_columns(
            "TOTAL",
            &format_cents(self.total_cents()),
            width,
        ));
        p.size(1, 1).bold(false);
        self.tender_lines(&mut p, width);
        p.feed(1);
        if self.invoice.is_some() {
            p.line("IVA incluido");
        }
        p.line(&vat_header(width));
        for row in self.vat_rows() {
            p.line(&vat_row(&row, width));
        }
        if let Some(pickup) = &self.pickup {
            p.feed(1).align(Align::Center).line("Código de recogida");
            p.bold(true)
                .size(2, 2)
                .line(&pickup.code)
                .size(1, 1)
                .bold(false);
            p.qr(&pickup.qr, QR_MODULE_DOTS, QrEcc::M).feed(1);
        }
        if let Some(sale_ref) = &self.sale_ref {
            p.feed(1)
                .align(Align::Center)
                .line("Devoluciones / Returns");
            p.qr(sale_ref, QR_MODULE_DOTS, QrEcc::M).feed(1);
        }
        if let Some(inv) = &self.invoice {
            p.feed(1).align(Align::Center).line("QR tributario:");
            p.qr(&inv.qr, QR_MODULE_DOTS, QrEcc::M);
            p.bold(true).line("VERI*FACTU").bold(false);
            p.line("Factura verificable en la sede");
            p.line("electrónica de la AEAT").feed(1);
        }
        p.align(Align::Center);
        for line in &self.footer {
            p.line(line);
        }
        p.feed(3).cut();
        p.finish()
    }

    fn tender_lines(&self, p: &mut EscPos, width: usize) {
        match &self.tender {
            Tender::Cash { given_cents } => {
                p.line(&two_columns("Efectivo", &format_cents(*given_cents), width));
                let change = given_cents - self.total_cents();
                p.line(&two_columns("Cambio", &format_cents(change), width));
            }
            Tender::Card { last4 } => {
                let label = match last4 {
                    Some(l) => format!("Tarjeta **** {l}"),
                    None => "Tarjeta".to_string(),
                };
                p.line(&two_columns(
                    &label,
                    &format_cents(self.total_cents()),
                    width,
                ));
            }
            Tender::Prepaid => {
                p.line(&two_columns(
                    "Pagado online",
                    &format_cents(self.total_cents()),
                    width,
                ));
            }
        }
    }
}

fn vat_header(width: usize) -> String {
    vat_columns(["IVA", "Base", "Cuota", "Total"], width)
}

fn vat_row(row: &VatRow, width: usize) -> String {
    vat_columns(
        [
            &format_vat(row.vat_bp),
            &format_cents(row.base_cents),
            &format_cents(row.vat_cents),
            &format_cents(row.gross_cents),
        ],
        width,
    )
}

/// Four columns: the first left-aligned, the others right-aligned in equal widths.
fn vat_columns(cells: [&str; 4], width: usize) -> String {
    let first = width / 4;
    let other = (width - first) / 3;
    let mut s = format!("{:<first$}", cells[0]);
    for cell in &cells[1..] {
        s.push_str(&format!("{cell:>other$}"));
    }
    s
}

/// One line of a pick list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickLine {
    /// Shelf location, e.g. `A3-02`.
    pub location: String,
    /// Stock keeping unit.
    pub sku: String,
    /// EAN to scan.
    pub ean: String,
    /// Product name.
    pub name: String,
    /// Units to pick.
    pub qty: u32,
}

/// The list an associate walks the shop floor with to pick an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickList {
    /// Order id.
    pub order_id: String,
    /// Customer display name.
    pub customer: String,
    /// When it was printed, formatted by the caller.
    pub printed_at: String,
    /// Lines, in walking order.
    pub lines: Vec<PickLine>,
}

impl PickList {
    /// ESC/POS bytes, ending with a cut.
    pub fn to_escpos(&self, width: usize) -> Vec<u8> {
        let mut p = EscPos::new();
        p.init()
            .align(Align::Center)
            .bold(true)
            .size(2, 2)
            .line("PICKING");
        p.size(1, 1).line(&format!("Pedido {}", self.order_id));
        p.bold(false).line(&self.customer).line(&self.printed_at);
        p.align(Align::Left).line(&"-".repeat(width));
        for line in &self.lines {
            let head = format!("[ ] {:>3} x {}", line.qty, line.name);
            p.bold(true)
                .line(&two_columns(&head, &line.location, width));
            p.bold(false)
                .line(&format!("        {}  EAN {}", line.sku, line.ean));
        }
        p.line(&"-".repeat(width));
        let units: u64 = self.lines.iter().map(|l| u64::from(l.qty)).sum();
        p.line(&format!("{} líneas, {units} unidades", self.lines.len()));
        p.feed(3).cut();
        p.finish()
    }
}

/// A label stuck on the bag of a ready pickup order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BagLabel {
    /// Order id.
    pub order_id: String,
    /// Customer initials only (privacy on a shelf anyone can see).
    pub initials: String,
    /// Bag n of total.
    pub bag: (u32, u32),
    /// Pickup code and QR.
    pub pickup: PickupMark,
}

impl BagLabel {
    /// ESC/POS bytes, ending with a cut.
    pub fn to_escpos(&self) -> Vec<u8> {
        let mut p = EscPos::new();
        p.init().align(Align::Center).bold(true).size(3, 3);
        p.line(&self.initials).size(1, 1);
        p.line(&format!("Pedido {}", self.order_id));
        p.line(&format!("Bolsa {} de {}", self.bag.0, self.bag.1));
        p.bold(false).qr(&self.pickup.qr, QR_MODULE_DOTS, QrEcc::M);
        p.line(&self.pickup.code).feed(2).cut();
        p.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_the_spanish_way() {
        assert_eq!(format_cents(1234), "12,34 €");
        assert_eq!(format_cents(123456789), "1.234.567,89 €");
        assert_eq!(format_cents(-50), "-0,50 €");
        assert_eq!(format_cents(0), "0,00 €");
        assert_eq!(format_vat(2100), "21 %");
        assert_eq!(format_vat(550), "5,5 %");
    }

    #[test]
    fn vat_rows_add_up_to_the_gross_per_rate() {
        let line = |qty, unit_cents, vat_bp| ReceiptLine {
            name: "x".into(),
            qty,
            unit_cents,
            vat_bp,
        };
        let receipt = Receipt {
            store: StoreHeader {
                name: "S".into(),
                address: vec![],
                tax_id: "B1".into(),
            },
            number: "1".into(),
            issued_at: "".into(),
            lines: vec![line(2, 1295, 1000), line(1, 121, 2100), line(3, 99, 400)],
            tender: Tender::Card { last4: None },
            pickup: None,
            sale_ref: None,
            footer: vec![],
            invoice: None,
        };
        let rows = receipt.vat_rows();
        assert_eq!(
            rows.iter().map(|r| r.vat_bp).collect::<Vec<_>>(),
            [400, 1000, 2100]
        );
        assert_eq!(rows[2].base_cents, 100);
        assert_eq!(rows[2].vat_cents, 21);
        assert_eq!(rows[1].base_cents + rows[1].vat_cents, 2590);
        assert_eq!(receipt.total_cents(), 2590 + 121 + 297);
    }

    #[test]
    fn two_columns_fill_the_width() {
        assert_eq!(two_columns("Pan", "1,00 €", 12), "Pan   1,00 €");
        assert_eq!(
            two_columns("Jamón ibérico", "9,00 €", 12).chars().count(),
            12
        );
    }
}
