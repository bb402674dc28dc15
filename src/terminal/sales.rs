//! `POST /api/v1/sales`: a till sale from the store's own rights, with a receipt and, for
//! cash, a drawer kick. Selling a customer's cart removes the sold lines from it. With
//! `[fiscal]` configured the sale is an invoice: its record (F2, or F1 with
//! `customer_tax_id`) is issued in the same transaction and printed on the receipt.

use super::auth::Session;
use super::body::{bounded, FieldCodes, Typed};
use super::error::ApiError;
use super::print::{FiscalMark, PrintJob, ReceiptLine};
use super::stock::resolve;
use super::till;
use super::TerminalState;
use crate::domain::fiscal::{InvoiceDraft, InvoiceRecord, TaxId};
use crate::domain::op::{SaleLine, Tender};
use crate::domain::till::pricing::net_lines;
use crate::domain::till::{SalePricing, TillDoc};
use crate::domain::validate::{LINES_MAX, QTY_MAX};
use crate::domain::{CustomerId, Payload, SaleId};
use crate::fiscal::{with_invoice, InvoiceFor};
use crate::store::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};

/// A line as the till sends it (a sale, an exchange, a parked ticket): a sku or barcode as
/// scanned, units, and the manual discount in percent.
#[derive(Debug, Clone, Deserialize)]
pub struct LineBody {
    pub sku: String,
    /// Checked against `1..=QTY_MAX` by `price_lines`, which names the bounds.
    pub qty: i64,
    pub discount_pct: Option<f64>,
}

/// `"cash"` or `"card"`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenderBody {
    Cash,
    Card,
}

impl From<TenderBody> for Tender {
    fn from(t: TenderBody) -> Tender {
        match t {
            TenderBody::Cash => Tender::Cash,
            TenderBody::Card => Tender::Card,
        }
    }
}

/// A manager's approval of discounts over the associate's limit, given on the same screen.
#[derive(Debug, Clone, Deserialize)]
pub struct ApprovalBody {
    pub staff: String,
    pub pin: String,
}

/// The body of `POST /api/v1/sales` (DESIGN.md §11, §17, §18).
#[derive(Debug, Deserialize)]
pub struct SaleBody {
    pub lines: Vec<LineBody>,
    pub tender: TenderBody,
    pub customer: Option<String>,
    pub customer_tax_id: Option<String>,
    pub ticket_discount_pct: Option<f64>,
    pub approval: Option<ApprovalBody>,
}

/// The 422 code of a field of a till line, a tender or an approval, wherever it appears.
pub(super) fn till_field_code(field: &str) -> &'static str {
    match field {
        "lines" | "exchange" => "invalid_lines",
        "sku" => "invalid_sku",
        "qty" => "invalid_qty",
        "discount_pct" | "ticket_discount_pct" => "invalid_discount",
        "tender" => "invalid_tender",
        "customer" => "invalid_customer",
        "approval" | "staff" => "invalid_staff",
        "pin" => "invalid_pin",
        _ => "invalid_field",
    }
}

impl FieldCodes for SaleBody {
    fn code(field: &str) -> &'static str {
        match field {
            "customer_tax_id" => "invalid_customer_tax_id",
            _ => till_field_code(field),
        }
    }
}

/// `lines` (or `exchange`) holds 1 to `LINES_MAX` lines, or a 422 naming the field.
pub(super) fn lines_of<'a>(lines: &'a [LineBody], field: &str) -> Result<&'a [LineBody], ApiError> {
    if !lines.is_empty() && lines.len() <= LINES_MAX {
        Ok(lines)
    } else {
        Err(ApiError::unprocessable(
            "invalid_lines",
            format!("{field} must hold 1-{LINES_MAX} lines"),
        )
        .with("field", field))
    }
}

/// Sale lines priced now from the catalog, with their names; a sku given twice is one line.
/// Shared by the till sale and an exchange's new sale.
pub(super) fn price_lines(
    state: &TerminalState,
    lines: &[LineBody],
) -> Result<Vec<(SaleLine, String)>, ApiError> {
    let mut out: Vec<(SaleLine, String)> = Vec::with_capacity(lines.len());
    for line in lines {
        let product = resolve(state, &line.sku)?;
        let qty = bounded(line.qty, "qty", "invalid_qty", 1, i64::from(QTY_MAX))? as u32;
        match out.iter_mut().find(|(l, _)| l.sku == product.sku) {
            Some((l, _)) => l.qty = l.qty.saturating_add(qty),
            None => out.push((
                SaleLine {
                    sku: product.sku.clone(),
                    qty,
                    unit_cents: product.price_cents,
                    vat_bp: product.vat_bp,
                },
                product.name.clone(),
            )),
        }
    }
    Ok(out)
}

/// `POST /api/v1/sales` `{"lines": [{"sku", "qty"}], "customer"?, "tender"}`.
pub async fn create(
    State(state): State<TerminalState>,
    session: Session,
    Typed(body): Typed<SaleBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let lines = price_lines(&state, lines_of(&body.lines, "lines")?)?;
    let tender = Tender::from(body.tender);
    let customer = match &body.customer {
        None => None,
        Some(s) => Some(CustomerId::parse(s).map_err(|_| {
            ApiError::unprocessable("invalid_customer", "customer must be a customer id")
                .with("field", "customer")
        })?),
    };
    let customer_tax_id = parse_tax_id(body.customer_tax_id.as_deref())?;
    till::require_cash_session(&state, &session, tender)?;
    let manual = till::line_discounts(&state, &body.lines, &lines)?;
    let ticket_bp = till::discount_bp(body.ticket_discount_pct, "ticket_discount_pct")?;
    let store = state.store().clone();
    let now = now_ms();
    let mut pricing = till::price_ticket(&state, &lines, &manual, ticket_bp, now);
    pricing.approved_by =
        till::approval(&state, &session, &pricing, body.approval.as_ref()).await?;
    let sale_id = SaleId::parse(&format!("S{now}-{:04x}", rand::thread_rng().gen::<u16>()))
        .map_err(ApiError::internal)?;
    let sale_lines: Vec<SaleLine> = lines.iter().map(|(l, _)| l.clone()).collect();
    let nets = net_lines(&sale_lines, Some(&pricing));
    let total_cents: i64 = nets.iter().sum();
    let mut payloads = Vec::with_capacity(3);
    payloads.extend(till::taken_at(
        &state,
        &session,
        TillDoc::Sale(sale_id.clone()),
    ));
    if !pricing.is_empty() {
        // Before the sale: every replica knows the discounts when it applies the sale.
        payloads.push(Payload::SalePriced {
            store: store.clone(),
            sale_id: sale_id.clone(),
            pricing: pricing.clone(),
        });
    }
    payloads.push(Payload::Sale {
        store: store.clone(),
        sale_id: sale_id.clone(),
        lines: sale_lines,
        tender,
        customer: customer.clone(),
    });
    if let Some(c) = &customer {
        // Sold at the counter: those lines leave the online cart (an add made meanwhile stays).
        payloads.extend(state.read(|r| {
            let cart = r.state().carts.get(c);
            lines
                .iter()
                .filter_map(|(l, _)| {
                    let observed = cart?.observed(&l.sku);
                    (!observed.is_empty()).then(|| Payload::CartRemove {
                        customer: c.clone(),
                        sku: l.sku.clone(),
                        observed,
                    })
                })
                .collect::<Vec<_>>()
        }));
    }
    let receipt_lines = receipt_lines(&lines, &pricing);
    let staff = session.staff.clone();
    let store_name = store.to_string();
    let reference = sale_id.to_string();
    let setup = state.config().fiscal.clone();
    let jobs = move |record: Option<&InvoiceRecord>| {
        let fiscal = setup
            .as_deref()
            .zip(record)
            .map(|(setup, r)| FiscalMark::of(setup, r));
        let mut jobs = vec![PrintJob::Receipt {
            store: store_name,
            reference,
            staff,
            lines: receipt_lines,
            total_cents,
            tender: match tender {
                Tender::Cash => "cash".into(),
                Tender::Card => "card".into(),
            },
            at_ms: now,
            fiscal,
        }];
        if tender == Tender::Cash {
            jobs.push(PrintJob::DrawerKick);
        }
        jobs
    };
    let invoice = match state.config().fiscal.clone() {
        None => {
            state.submit_printing(payloads, jobs(None)).await?;
            None
        }
        Some(setup) => {
            // VAT on what was paid: each line's net after its discounts.
            let draft = InvoiceDraft::sale(
                sale_id.as_str(),
                lines.iter().zip(&nets).map(|((l, _), n)| (1, *n, l.vat_bp)),
                customer_tax_id,
            );
            let build = with_invoice(setup, store.clone(), payloads, InvoiceFor::Sale(draft));
            let (_, record) = state.submit_invoiced(build, jobs).await?;
            record.map(|r| r.numserie())
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": sale_id.as_str(),
            "total_cents": total_cents,
            "invoice": invoice,
            "tender": if tender == Tender::Cash { "cash" } else { "card" },
            "customer": customer.as_ref().map(|c| c.as_str()),
            "discount_cents": pricing.discount_cents(),
            "lines": till::lines_json(&lines, &pricing),
        })),
    ))
}

/// The receipt's lines: each sold line, then what came off it as a line of its own (negative,
/// at the same VAT rate), so the receipt's totals and VAT rows match the invoice.
fn receipt_lines(lines: &[(SaleLine, String)], pricing: &SalePricing) -> Vec<ReceiptLine> {
    let mut out = Vec::with_capacity(lines.len() * 2);
    for (i, (l, name)) in lines.iter().enumerate() {
        out.push(ReceiptLine {
            sku: l.sku.to_string(),
            name: name.clone(),
            qty: l.qty,
            unit_cents: l.unit_cents,
            vat_bp: l.vat_bp,
        });
        let Some(d) = pricing.lines.get(i).filter(|d| d.cents() > 0) else {
            continue;
        };
        let label = match (&d.promotion, d.manual_bp, d.ticket_cents) {
            (Some(p), 0, 0) => format!("  Promo {p}"),
            (None, bp, 0) => format!("  Dto. {}", percent(bp)),
            (None, 0, _) => format!("  Dto. ticket {}", percent(pricing.ticket_bp)),
            _ => "  Descuento".to_string(),
        };
        out.push(ReceiptLine {
            sku: l.sku.to_string(),
            name: label,
            qty: 1,
            unit_cents: -d.cents(),
            vat_bp: l.vat_bp,
        });
    }
    out
}

/// `1250` basis points as `12,5 %`.
fn percent(bp: u32) -> String {
    if bp.is_multiple_of(100) {
        format!("{} %", bp / 100)
    } else {
        format!(
            "{},{} %",
            bp / 100,
            format!("{:02}", bp % 100).trim_end_matches('0')
        )
    }
}

/// The optional `customer_tax_id`: a NIF, NIE or CIF whose check character holds.
fn parse_tax_id(text: Option<&str>) -> Result<Option<TaxId>, ApiError> {
    text.map(|s| {
        TaxId::parse(s).map_err(|e| {
            ApiError::unprocessable("invalid_customer_tax_id", e.to_string())
                .with("field", "customer_tax_id")
        })
    })
    .transpose()
}
