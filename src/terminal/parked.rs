//! Parked tickets (DESIGN.md §18): the till puts a ticket on hold (its scanned lines and
//! discounts), serves someone else, and resumes it later. Parked tickets live in the store's
//! `parked_sales` table, so they survive a restart; resuming takes the ticket out in one
//! statement, so two tills never resume the same one. A parked ticket is not a sale: no op,
//! no stock taken, nothing replicated.

use super::auth::Session;
use super::body::{FieldCodes, Typed};
use super::error::ApiError;
use super::sales::{lines_of, price_lines, till_field_code, LineBody};
use super::till::discount_bp;
use super::TerminalState;
use crate::domain::CustomerId;
use crate::store::now_ms;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rand::Rng;
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Most tickets parked at once in a store.
pub const PARKED_MAX: i64 = 50;
/// Longest label an associate gives a parked ticket.
const LABEL_LEN_MAX: usize = 60;

/// A parked line as it will be sold: the sku as scanned, units and the manual discount.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ParkedLine {
    sku: String,
    qty: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount_pct: Option<f64>,
}

/// What is kept of a parked ticket: enough to send it to `POST /api/v1/sales` unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ticket {
    lines: Vec<ParkedLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket_discount_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<String>,
}

/// The body of `POST /api/v1/sales/parked`: a sale's lines, discounts and customer, a label.
#[derive(Debug, Deserialize)]
pub struct ParkBody {
    lines: Vec<LineBody>,
    ticket_discount_pct: Option<f64>,
    customer: Option<String>,
    label: Option<String>,
}

impl FieldCodes for ParkBody {
    fn code(field: &str) -> &'static str {
        match field {
            "label" => "invalid_label",
            _ => till_field_code(field),
        }
    }
}

/// The ticket in the request, checked as a sale would check it (skus, quantities, discounts).
fn ticket(state: &TerminalState, body: &ParkBody) -> Result<Ticket, ApiError> {
    let raw = lines_of(&body.lines, "lines")?;
    price_lines(state, raw)?;
    let mut lines = Vec::with_capacity(raw.len());
    for l in raw {
        let bp = discount_bp(l.discount_pct, "discount_pct")?;
        lines.push(ParkedLine {
            sku: l.sku.clone(),
            // In 1..=QTY_MAX: `price_lines` checked it.
            qty: u32::try_from(l.qty).unwrap_or(0),
            discount_pct: (bp > 0).then(|| f64::from(bp) / 100.0),
        });
    }
    let ticket_bp = discount_bp(body.ticket_discount_pct, "ticket_discount_pct")?;
    let customer = match &body.customer {
        None => None,
        Some(c) if CustomerId::parse(c).is_ok() => Some(c.clone()),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_customer",
                "customer must be a customer id",
            )
            .with("field", "customer"))
        }
    };
    Ok(Ticket {
        lines,
        ticket_discount_pct: (ticket_bp > 0).then(|| f64::from(ticket_bp) / 100.0),
        customer,
    })
}

fn parked_json(id: &str, staff: &str, label: &str, parked_ms: i64, ticket: &Ticket) -> Value {
    json!({
        "id": id,
        "staff": staff,
        "label": label,
        "parked_at": parked_ms,
        "lines": ticket.lines,
        "ticket_discount_pct": ticket.ticket_discount_pct,
        "customer": ticket.customer,
    })
}

/// `POST /api/v1/sales/parked` `{"lines", "ticket_discount_pct"?, "customer"?, "label"?}`:
/// 201 with the parked ticket; 409 `too_many_parked` past `PARKED_MAX`.
pub async fn park(
    State(state): State<TerminalState>,
    session: Session,
    Typed(body): Typed<ParkBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ticket = ticket(&state, &body)?;
    let label = match body.label {
        None => String::new(),
        Some(s) if s.chars().count() <= LABEL_LEN_MAX => s.trim().to_string(),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_label",
                format!("label must be text of at most {LABEL_LEN_MAX} characters"),
            )
            .with("field", "label"))
        }
    };
    let now = now_ms() as i64;
    let id = format!("P{now}-{:04x}", rand::thread_rng().gen::<u16>());
    let text = serde_json::to_string(&ticket).map_err(ApiError::internal)?;
    let (key, staff, name) = (id.clone(), session.staff.clone(), label.clone());
    let parked = state
        .db(move |c| {
            let n: i64 = c.query_row("SELECT count(*) FROM parked_sales", [], |r| r.get(0))?;
            if n >= PARKED_MAX {
                return Ok(false);
            }
            c.execute(
                "INSERT INTO parked_sales (id, staff, label, ticket, parked_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![key, staff, name, text, now],
            )?;
            Ok(true)
        })
        .await?;
    if !parked {
        return Err(ApiError::conflict(
            "too_many_parked",
            format!("at most {PARKED_MAX} tickets may be parked; resume or discard one"),
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(parked_json(&id, &session.staff, &label, now, &ticket)),
    ))
}

type Row = (String, String, String, String, i64);

fn row_json(row: Row) -> Option<Value> {
    let (id, staff, label, text, at) = row;
    let ticket: Ticket = serde_json::from_str(&text).ok()?;
    Some(parked_json(&id, &staff, &label, at, &ticket))
}

/// `GET /api/v1/sales/parked`: the store's parked tickets, oldest first.
pub async fn list(
    State(state): State<TerminalState>,
    _session: Session,
) -> Result<Json<Value>, ApiError> {
    let rows: Vec<Row> = state
        .db_read(|c| {
            let mut stmt = c.prepare(
                "SELECT id, staff, label, ticket, parked_ms FROM parked_sales
                 ORDER BY parked_ms, id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            rows.collect()
        })
        .await?;
    Ok(Json(Value::Array(
        rows.into_iter().filter_map(row_json).collect(),
    )))
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found("unknown_parked_sale", format!("no parked ticket {id}"))
}

/// Take the parked ticket out of the table (resumed or discarded), in one statement.
async fn take(state: &TerminalState, id: String) -> Result<Value, ApiError> {
    let key = id.clone();
    let row: Option<Row> = state
        .db(move |c| {
            c.query_row(
                "DELETE FROM parked_sales WHERE id = ?1
                 RETURNING id, staff, label, ticket, parked_ms",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
        })
        .await?;
    row.and_then(row_json).ok_or_else(|| unknown(&id))
}

/// `POST /api/v1/sales/parked/{id}/resume`: 200 with the ticket, which is no longer parked;
/// 404 `unknown_parked_sale`.
pub async fn resume(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    take(&state, id).await.map(Json)
}

/// `DELETE /api/v1/sales/parked/{id}`: the ticket is discarded; 404 when unknown.
pub async fn discard(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    take(&state, id).await.map(|_| StatusCode::NO_CONTENT)
}
