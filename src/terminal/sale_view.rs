//! `GET /api/v1/sales/{id}`: a till sale of this store as DESIGN.md section 17 shows it, with
//! the invoice number it was issued under. (Fetching another store's sale from HQ is the
//! returns work's; here an unknown id is `404 unknown_sale`.)

use super::auth::Session;
use super::error::ApiError;
use super::TerminalState;
use crate::domain::op::Tender;
use crate::domain::SaleId;
use crate::fiscal::issued_invoice;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

pub async fn show(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let unknown = || ApiError::not_found("unknown_sale", format!("no sale {id:?} here"));
    let sale_id = SaleId::parse(&id).map_err(|_| unknown())?;
    let view = state.read(|r| {
        let sale = r.state().sales.get(&sale_id)?;
        let invoice = issued_invoice(r, sale_id.as_str()).map(|i| i.numserie);
        Some(json!({
            "id": sale.id.as_str(),
            "store": sale.store.as_str(),
            "invoice": invoice,
            "customer": sale.customer.as_ref().map(|c| c.as_str()),
            "tender": match sale.tender { Tender::Cash => "cash", Tender::Card => "card" },
            "total_cents": sale.total_cents(),
            "lines": sale.lines.iter().map(|l| json!({
                "sku": l.sku.as_str(),
                "qty": l.qty,
                "price_cents": l.unit_cents,
                "returned": 0,
            })).collect::<Vec<_>>(),
        }))
    });
    view.map(Json).ok_or_else(unknown)
}
