//! Returns and exchanges at the counter (DESIGN.md §12, §17): `GET /api/v1/sales/{id}` and
//! `POST /api/v1/returns`.
//!
//! A return is exact at the store holding the sale's return rights; elsewhere the terminal
//! first asks the holder for them through HQ (`sync::rights`, at most `RIGHTS_WAIT`), and
//! failing that a manager may take it unverified within `[returns]` limits. The return, the
//! exchange's new sale, the return receipt and the drawer kick commit in one transaction.
//! `X-Storenode-Lookup` says whether HQ was asked, as for customer searches.

use super::auth::{Role, Session};
use super::body::{bounded, FieldCodes, Typed};
use super::customers::LOOKUP_HEADER;
use super::error::ApiError;
use super::print::{FiscalMark, PrintJob, ReceiptLine};
use super::sales::{lines_of, price_lines, till_field_code, LineBody, TenderBody};
use super::stock::resolve;
use super::till;
use super::TerminalState;
use crate::domain::fiscal::InvoiceRecord;
use crate::domain::op::Tender;
use crate::domain::returns::{plan_return, ReturnAsk};
use crate::domain::till::TillDoc;
use crate::domain::validate::{LINES_MAX, QTY_MAX};
use crate::domain::{Payload, ReturnId, SaleId, State, StoreId};
use crate::fiscal::{with_invoice, InvoiceFor};
use crate::store::now_ms;
use crate::sync::rights::{fetch_rights, RightsFetch};
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

/// Longest a counter waits for a sale's return rights to arrive from their holder.
const RIGHTS_WAIT: Duration = Duration::from_secs(3);

fn tender_str(t: Tender) -> &'static str {
    match t {
        Tender::Cash => "cash",
        Tender::Card => "card",
    }
}

fn unknown_sale(id: &str) -> ApiError {
    ApiError::not_found(
        "unknown_sale",
        format!("no sale or collected order {id} is known here"),
    )
}

/// The §17 sale answer, plus what a return screen needs (`returnable`, names, holder).
pub(crate) fn sale_json(s: &State, sale: &SaleId) -> Option<Value> {
    let sold = s.sold(sale)?;
    let lines: Vec<Value> = sold
        .lines
        .iter()
        .map(|l| {
            let p = s.product(&l.sku);
            json!({
                "sku": l.sku.as_str(),
                "name": p.map(|p| p.name),
                "ean": p.map(|p| p.ean.to_string()),
                "qty": l.qty,
                "price_cents": l.unit_cents,
                "vat_bp": l.vat_bp,
                "returned": s.returned_qty(sale, &l.sku),
                "returnable": s.returnable(sale, &l.sku).unwrap_or(0),
            })
        })
        .collect();
    // What was paid: a sale known here after its discounts, else the lines as sold.
    let total: i64 = s.sales.get(sale).map_or_else(
        || {
            sold.lines
                .iter()
                .map(|l| l.unit_cents * i64::from(l.qty))
                .sum()
        },
        |r| r.total_cents(),
    );
    let returns: Vec<Value> = s
        .returns
        .of_sale(sale)
        .iter()
        .map(|r| {
            json!({
                "id": r.id.as_str(), "store": r.store.as_str(), "at": r.at.wall_ms(),
                "refund_cents": r.refund_cents(), "verified": r.verified,
            })
        })
        .collect();
    let conflicts: Vec<Value> = s
        .returns
        .double_returns
        .values()
        .filter(|d| &d.sale == sale)
        .map(|d| json!({"kind": "double_return", "sku": d.sku.as_str(), "sold": d.sold, "returned": d.returned}))
        .collect();
    Some(json!({
        "id": sale.as_str(),
        "store": sold.store.as_str(),
        "invoice": sold.invoice.as_ref().map(|i| i.numserie.as_str()),
        "customer": sold.customer.as_ref().map(|c| c.as_str()),
        "tender": tender_str(sold.tender),
        "total_cents": total,
        "at": sold.at_ms,
        "lines": lines,
        "return_holder": s.return_holder(sale).map(|h| h.to_string()),
        "returns": returns,
        "conflicts": conflicts,
    }))
}

async fn ensure_rights(state: &TerminalState, sale: &SaleId, hint: Option<StoreId>) -> RightsFetch {
    fetch_rights(
        state.node(),
        state.link().link().online,
        state.store(),
        sale,
        hint,
        RIGHTS_WAIT,
    )
    .await
}

/// Bring `sale` back into memory if it left it (`store::history`): what follows reads and
/// plans from memory. A failure only costs the local answer (the rights are then asked of
/// HQ), so it is logged, not returned.
async fn recall(state: &TerminalState, sale: &SaleId) {
    if let Err(e) = state.node().recall(vec![sale.clone()]).await {
        tracing::warn!(error = %e, "an evicted sale was not recalled");
    }
}

/// `GET /api/v1/sales/{id}`: a sale or collected order; another store's is fetched from its
/// holder through HQ (which makes this store the holder, ready for the return).
pub async fn show(
    AxState(state): AxState<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
) -> Response {
    let (lookup, answer) = find_sale(&state, &id).await;
    ([(LOOKUP_HEADER, lookup)], answer).into_response()
}

async fn find_sale(
    state: &TerminalState,
    id: &str,
) -> (&'static str, Result<Json<Value>, ApiError>) {
    let Ok(sale) = SaleId::parse(id) else {
        return ("local", Err(unknown_sale(id)));
    };
    recall(state, &sale).await;
    if let Some(v) = state.read(|r| sale_json(r.state(), &sale)) {
        return ("local", Ok(Json(v)));
    }
    let lookup = ensure_rights(state, &sale, None).await.header();
    let v = state.read(|r| sale_json(r.state(), &sale));
    (lookup, v.map(Json).ok_or_else(|| unknown_sale(id)))
}

/// The body of `POST /api/v1/returns` (DESIGN.md §17).
#[derive(Debug, Deserialize)]
pub struct ReturnBody {
    /// A sale id or a handed-over order id.
    sale: String,
    lines: Vec<ReturnLineBody>,
    tender: TenderBody,
    exchange: Option<Vec<LineBody>>,
    /// The selling store, when the counter knows it (a receipt scan): routes the rights request.
    sale_store: Option<String>,
}

/// A returned line: a sku or barcode, units, and whether they go back on the shelf (default).
#[derive(Debug, Deserialize)]
struct ReturnLineBody {
    sku: String,
    qty: i64,
    restock: Option<bool>,
}

impl FieldCodes for ReturnBody {
    fn code(field: &str) -> &'static str {
        match field {
            "sale" => "invalid_sale",
            "restock" => "invalid_restock",
            "sale_store" => "invalid_store",
            _ => till_field_code(field),
        }
    }
}

/// (sku, qty, restock) of the returned lines.
fn parse_returned(
    state: &TerminalState,
    lines: &[ReturnLineBody],
) -> Result<Vec<(crate::domain::Sku, u32, bool)>, ApiError> {
    if lines.is_empty() || lines.len() > LINES_MAX {
        return Err(ApiError::unprocessable(
            "invalid_lines",
            format!("lines must hold 1-{LINES_MAX} lines"),
        )
        .with("field", "lines"));
    }
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let sku = match crate::domain::Sku::parse(&line.sku) {
            Ok(sku) if state.read(|r| r.state().catalog.contains(&sku)) => sku,
            _ => resolve(state, &line.sku)?.sku,
        };
        let qty = bounded(line.qty, "qty", "invalid_qty", 1, i64::from(QTY_MAX))? as u32;
        out.push((sku, qty, line.restock.unwrap_or(true)));
    }
    Ok(out)
}

fn new_id(prefix: char, now: u64) -> String {
    format!("{prefix}{now}-{:04x}", rand::thread_rng().gen::<u16>())
}

fn receipt_line(
    s: &State,
    sku: &crate::domain::Sku,
    qty: u32,
    unit_cents: i64,
    vat_bp: u32,
) -> ReceiptLine {
    ReceiptLine {
        sku: sku.to_string(),
        name: s
            .product(sku)
            .map_or_else(|| sku.to_string(), |p| p.name.to_string()),
        qty,
        unit_cents,
        vat_bp,
    }
}

/// `POST /api/v1/returns`; `X-Storenode-Lookup` says whether the rights were asked of HQ,
/// on a refusal too.
pub async fn create(
    AxState(state): AxState<TerminalState>,
    session: Session,
    body: Result<Typed<ReturnBody>, ApiError>,
) -> Response {
    let mut lookup = "local";
    let answer = match body {
        Ok(Typed(body)) => take_return(&state, &session, body, &mut lookup).await,
        Err(e) => Err(e),
    };
    ([(LOOKUP_HEADER, lookup)], answer).into_response()
}

async fn take_return(
    state: &TerminalState,
    session: &Session,
    body: ReturnBody,
    lookup: &mut &'static str,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let sale = SaleId::parse(&body.sale).map_err(|_| {
        ApiError::unprocessable("invalid_sale", "sale must be a sale or order id")
            .with("field", "sale")
    })?;
    let returned = parse_returned(state, &body.lines)?;
    let tender = Tender::from(body.tender);
    let exchange = match &body.exchange {
        None => Vec::new(),
        Some(l) => price_lines(state, lines_of(l, "exchange")?)?,
    };
    let hint = match &body.sale_store {
        None => None,
        Some(s) => Some(StoreId::parse(s).map_err(|_| {
            ApiError::unprocessable("invalid_store", "sale_store must be a store id")
                .with("field", "sale_store")
        })?),
    };
    recall(state, &sale).await;
    *lookup = ensure_rights(state, &sale, hint.clone()).await.header();
    let store = state.store().clone();
    let now = now_ms();
    let return_id = ReturnId::parse(&new_id('R', now)).map_err(ApiError::internal)?;
    let ask = ReturnAsk {
        return_id: return_id.clone(),
        sale: sale.clone(),
        sale_store: hint,
        lines: returned,
        tender,
        manager: session.role == Role::Manager,
        now_ms: now,
    };
    let policy = state.config().returns;
    let ret = state.read(|r| plan_return(r.state(), &store, &policy, ask))?;
    let Payload::Return {
        lines: ret_lines,
        verified,
        customer,
        ..
    } = &ret
    else {
        return Err(ApiError::internal("a return plan that is not a return"));
    };
    let (verified, customer) = (*verified, customer.clone());
    let refund_cents: i64 = ret_lines.iter().map(|l| l.refund_cents).sum();
    let sold = state.read(|r| r.state().sold(&sale));
    let returned_lines: Vec<ReceiptLine> = state.read(|r| {
        ret_lines
            .iter()
            .map(|l| {
                let unit = l.refund_cents / i64::from(l.qty.max(1));
                // VAT as sold; the catalog's only for a sale not known here.
                let vat = sold
                    .as_ref()
                    .and_then(|s| s.lines.iter().find(|x| x.sku == l.sku))
                    .map(|x| x.vat_bp)
                    .or_else(|| r.state().product(&l.sku).map(|p| p.vat_bp))
                    .unwrap_or(0);
                receipt_line(r.state(), &l.sku, l.qty, unit, vat)
            })
            .collect()
    });
    // Net lines of the rectifying invoice: refunded units negative, exchanged ones positive.
    let mut net_lines: Vec<(i64, u32)> = ret_lines
        .iter()
        .zip(&returned_lines)
        .map(|(l, r)| (-l.refund_cents, r.vat_bp))
        .collect();
    let mut payloads: Vec<Payload> =
        till::taken_at(state, session, TillDoc::Return(return_id.clone()))
            .into_iter()
            .chain([ret])
            .collect();
    let mut exchange_sale = None;
    let mut exchange_lines = Vec::new();
    let mut exchange_cents = 0i64;
    if !exchange.is_empty() {
        let id = SaleId::parse(&new_id('S', now)).map_err(ApiError::internal)?;
        exchange_cents = exchange
            .iter()
            .map(|(l, _)| l.unit_cents * i64::from(l.qty))
            .sum();
        exchange_lines = exchange
            .iter()
            .map(|(l, name)| ReceiptLine {
                sku: l.sku.to_string(),
                name: name.clone(),
                qty: l.qty,
                unit_cents: l.unit_cents,
                vat_bp: l.vat_bp,
            })
            .collect();
        net_lines.extend(
            exchange
                .iter()
                .map(|(l, _)| (l.unit_cents * i64::from(l.qty), l.vat_bp)),
        );
        payloads.extend(till::taken_at(state, session, TillDoc::Sale(id.clone())));
        payloads.push(Payload::Sale {
            store: store.clone(),
            sale_id: id.clone(),
            lines: exchange.into_iter().map(|(l, _)| l).collect(),
            tender,
            customer: customer.clone(),
        });
        exchange_sale = Some(id);
    }
    let net_cents = exchange_cents - refund_cents;
    let setup = state.config().fiscal.clone();
    let receipt = PrintJob::ReturnReceipt {
        store: store.to_string(),
        reference: return_id.to_string(),
        sale: sale.to_string(),
        exchange_sale: exchange_sale.as_ref().map(ToString::to_string),
        staff: session.staff.clone(),
        returned: returned_lines,
        exchange: exchange_lines,
        net_cents,
        tender: tender_str(tender).into(),
        verified,
        at_ms: now,
        fiscal: None,
    };
    let jobs = {
        let setup = setup.clone();
        move |record: Option<&InvoiceRecord>| {
            let mut receipt = receipt;
            if let (PrintJob::ReturnReceipt { fiscal, .. }, Some(setup), Some(r)) =
                (&mut receipt, setup.as_deref(), record)
            {
                *fiscal = Some(FiscalMark::of(setup, r));
            }
            let mut jobs = vec![receipt];
            if tender == Tender::Cash && net_cents != 0 {
                jobs.push(PrintJob::DrawerKick);
            }
            jobs
        }
    };
    // With `[fiscal]`, one rectifying invoice (R5, or R1 for a full one) naming the sale's
    // invoice commits with the return and the exchange's sale.
    let invoice = match setup {
        None => {
            state.submit_printing(payloads, jobs(None)).await?;
            None
        }
        Some(setup) => {
            let original = sold.and_then(|s| s.invoice).map(|i| i.issued());
            let what = InvoiceFor::Rectifying {
                reference: return_id.to_string(),
                sale: sale.to_string(),
                original,
                net_lines,
            };
            let build = with_invoice(setup, store.clone(), payloads, what);
            let (_, record) = state.submit_invoiced(build, jobs).await?;
            record.map(|r| r.numserie())
        }
    };
    tracing::info!(sale = %sale, verified, refund_cents, "return taken");
    let mut answer = json!({
        "id": return_id.as_str(),
        "refund_cents": refund_cents,
        "verified": verified,
        "tender": tender_str(tender),
        "store": store.as_str(),
        "returned_sale": sale.as_str(),
        "invoice": invoice,
    });
    if let (Some(id), Value::Object(m)) = (&exchange_sale, &mut answer) {
        m.insert("sale".into(), json!(id.as_str()));
        m.insert("net_cents".into(), json!(net_cents));
    }
    Ok((StatusCode::CREATED, Json(answer)))
}
