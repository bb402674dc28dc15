//! The cash drawer's calls (DESIGN.md §18): open a session with a float, cash in and out with
//! a reason, the X report at any time, and the close with a blind count, which answers and
//! prints the Z report in the close's own transaction; the X report is shown at any time and
//! printed on request. Each call works on the drawer of the
//! caller's till (named at login, `Session::till`); `GET /cash/tills` lists every till's. Reports are derived by
//! `domain::till::cash` from the replica, so a restarted node (or HQ) shows the same figures.

use super::auth::Session;
use super::body::{bounded, FieldCodes, Typed};
use super::error::ApiError;
use super::print::PrintJob;
use super::TerminalState;
use crate::domain::fiscal::VatLine;
use crate::domain::ids::{CashSessionId, TillId};
use crate::domain::op::Tender;
use crate::domain::till::cash::CASH_CENTS_MAX;
use crate::domain::till::{default_till, CashMoveKind, CashReport, CashSession};
use crate::domain::Payload;
use crate::store::now_ms;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Map, Value};

fn tender_name(t: Tender) -> &'static str {
    match t {
        Tender::Cash => "cash",
        Tender::Card => "card",
    }
}

/// A report as the API shows it (`counted_cents` and `difference_cents` only once closed).
pub fn report_json(r: &CashReport) -> Value {
    let by_tender: Map<String, Value> = r
        .by_tender
        .iter()
        .map(|(t, c)| (tender_name(*t).to_string(), json!(c)))
        .collect();
    let vat: Vec<Value> = r
        .vat
        .iter()
        .map(
            |v| json!({"vat_bp": v.vat_bp, "base_cents": v.base_cents, "vat_cents": v.cuota_cents}),
        )
        .collect();
    json!({
        "id": r.id.as_str(),
        "store": r.store.as_str(),
        "till": r.till.as_str(),
        "opened_at": r.opened_ms,
        "closed_at": r.closed_ms,
        "float_cents": r.float_cents,
        "cash_in_cents": r.cash_in_cents,
        "cash_out_cents": r.cash_out_cents,
        "sales": r.sales,
        "sales_cents": r.sales_cents,
        "returns": r.returns,
        "returns_cents": r.returns_cents,
        "discounts_cents": r.discounts_cents,
        "by_tender": by_tender,
        "vat": vat,
        "first_invoice": r.first_invoice,
        "last_invoice": r.last_invoice,
        "expected_cents": r.expected_cents,
        "counted_cents": r.counted_cents,
        "difference_cents": r.difference_cents(),
    })
}

/// The open session as the terminal shows it; `stale` when it was opened on an earlier day
/// (left open overnight), by the store's fiscal time zone (Europe/Madrid without `[fiscal]`).
pub fn session_json(state: &TerminalState, s: &CashSession, now: u64) -> Value {
    json!({
        "id": s.id.as_str(),
        "till": s.till.as_str(),
        "opened_at": s.opened_ms,
        "opened_by": s.opened_by,
        "float_cents": s.float_cents,
        "expected_cents": s.expected_cents(),
        "stale": earlier_day(state, s.opened_ms, now),
    })
}

fn earlier_day(state: &TerminalState, then_ms: u64, now_ms: u64) -> bool {
    let tz = match state.config().fiscal.as_ref() {
        Some(f) => f.zone.clone(),
        None => match jiff::tz::TimeZone::get("Europe/Madrid") {
            Ok(tz) => tz,
            Err(_) => return now_ms.saturating_sub(then_ms) > 86_400_000,
        },
    };
    let day = |ms: u64| {
        i64::try_from(ms)
            .ok()
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map(|t| t.to_zoned_datetime(tz.clone()).date())
    };
    day(then_ms) < day(now_ms)
}

/// The till's open session, if any, for the login answer and the terminal.
pub fn current_json(state: &TerminalState, till: &TillId) -> Value {
    let store = state.store().clone();
    let now = now_ms();
    state.read(|r| {
        r.state()
            .cash
            .current(&store, till)
            .map_or(Value::Null, |s| session_json(state, s, now))
    })
}

/// `GET /api/v1/cash/tills`: every till of the store (configured, or with a session still
/// open) and its open session or null, so a manager sees which drawers are open or stale.
pub async fn tills(State(state): State<TerminalState>, _session: Session) -> Json<Value> {
    let store = state.store().clone();
    let now = now_ms();
    let configured = state.config().till.tills.clone();
    Json(state.read(|r| {
        let book = &r.state().cash;
        let mut tills = configured.clone();
        for s in book.open_of_store(&store) {
            if !tills.contains(&s.till) {
                tills.push(s.till.clone());
            }
        }
        Value::Array(
            tills
                .iter()
                .map(|t| {
                    let open = book
                        .current(&store, t)
                        .map_or(Value::Null, |s| session_json(&state, s, now));
                    json!({"till": t.as_str(), "configured": configured.contains(t), "session": open})
                })
                .collect(),
        )
    }))
}

/// An amount of cash in `min..=CASH_CENTS_MAX`, or a 422 naming the field.
fn cash_cents(n: i64, field: &str, min: i64) -> Result<i64, ApiError> {
    bounded(n, field, "invalid_cents", min, CASH_CENTS_MAX)
}

/// The body of `POST /api/v1/cash/sessions`.
#[derive(Debug, Deserialize)]
pub struct OpenBody {
    float_cents: i64,
}

/// The body of `POST /api/v1/cash/sessions/current/close` (the blind count).
#[derive(Debug, Deserialize)]
pub struct CloseBody {
    counted_cents: i64,
}

/// `"in"` or `"out"`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum MoveKindBody {
    In,
    Out,
}

/// The body of `POST /api/v1/cash/sessions/current/movements`.
#[derive(Debug, Deserialize)]
pub struct MoveBody {
    kind: MoveKindBody,
    cents: i64,
    reason: String,
}

/// The 422 code of each field of the drawer's bodies.
fn cash_code(field: &str) -> &'static str {
    match field {
        "float_cents" | "counted_cents" | "cents" => "invalid_cents",
        "kind" => "invalid_kind",
        "reason" => "invalid_reason",
        _ => "invalid_field",
    }
}

impl FieldCodes for OpenBody {
    fn code(field: &str) -> &'static str {
        cash_code(field)
    }
}

impl FieldCodes for CloseBody {
    fn code(field: &str) -> &'static str {
        cash_code(field)
    }
}

impl FieldCodes for MoveBody {
    fn code(field: &str) -> &'static str {
        cash_code(field)
    }
}

/// `POST /api/v1/cash/sessions` `{"float_cents"}`: 201, or 409 `session_open`.
pub async fn open(
    State(state): State<TerminalState>,
    session: Session,
    Typed(body): Typed<OpenBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let float_cents = cash_cents(body.float_cents, "float_cents", 0)?;
    let now = now_ms();
    let id = CashSessionId::parse(&format!("Z{now}-{:04x}", rand::thread_rng().gen::<u16>()))
        .map_err(ApiError::internal)?;
    let store = state.store().clone();
    let staff = session.staff.clone();
    // The default till keeps the op it always had, so single-till stores log what they did.
    let payload = if session.till == default_till() {
        Payload::CashOpen {
            store,
            session: id.clone(),
            float_cents,
            staff,
            opened_ms: now,
        }
    } else {
        Payload::CashOpenTill {
            store,
            till: session.till.clone(),
            session: id.clone(),
            float_cents,
            staff,
            opened_ms: now,
        }
    };
    state
        .submit_printing(vec![payload], vec![PrintJob::DrawerKick])
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id.as_str(),
            "till": session.till.as_str(),
            "opened_at": now,
            "float_cents": float_cents,
        })),
    ))
}

fn current_id(state: &TerminalState, till: &TillId) -> Result<CashSessionId, ApiError> {
    let store = state.store().clone();
    state
        .read(|r| r.state().cash.current(&store, till).map(|s| s.id.clone()))
        .ok_or_else(|| {
            ApiError::conflict(
                "no_cash_session",
                format!("no cash session is open at till {till}"),
            )
            .with("till", till.as_str())
        })
}

/// `POST /api/v1/cash/sessions/current/movements` `{"kind": "in"|"out", "cents", "reason"}`.
pub async fn movement(
    State(state): State<TerminalState>,
    session: Session,
    Typed(body): Typed<MoveBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let kind = match body.kind {
        MoveKindBody::In => CashMoveKind::In,
        MoveKindBody::Out => CashMoveKind::Out,
    };
    let cents = cash_cents(body.cents, "cents", 1)?;
    let reason = match body.reason.trim() {
        r if !r.is_empty() => r.to_string(),
        _ => {
            return Err(
                ApiError::unprocessable("invalid_reason", "a cash movement needs a reason")
                    .with("field", "reason"),
            )
        }
    };
    let id = current_id(&state, &session.till)?;
    let payload = Payload::CashMove {
        store: state.store().clone(),
        session: id.clone(),
        kind,
        cents,
        reason: reason.clone(),
        staff: session.staff.clone(),
    };
    state
        .submit_printing(vec![payload], vec![PrintJob::DrawerKick])
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "session": id.as_str(),
            "kind": if kind == CashMoveKind::In { "in" } else { "out" },
            "cents": cents,
            "reason": reason,
        })),
    ))
}

/// `POST /api/v1/cash/sessions/current/close` `{"counted_cents"}`: the Z report, printed and
/// kept; 409 `no_cash_session` when none is open.
pub async fn close(
    State(state): State<TerminalState>,
    session: Session,
    Typed(body): Typed<CloseBody>,
) -> Result<Json<Value>, ApiError> {
    let counted_cents = cash_cents(body.counted_cents, "counted_cents", 0)?;
    let id = current_id(&state, &session.till)?;
    let store = state.store().clone();
    let payload = Payload::CashClose {
        store: store.clone(),
        session: id.clone(),
        counted_cents,
        staff: session.staff.clone(),
        closed_ms: now_ms(),
    };
    // The Z report as it will be once the close applies: the replica's session plus the count.
    let z = state
        .read(|r| r.state().cash.sessions.get(&id).map(CashSession::report))
        .map(|mut z| {
            z.counted_cents = Some(counted_cents);
            z
        })
        .ok_or_else(|| ApiError::conflict("no_cash_session", "no cash session is open"))?;
    let job = report_job(&session.staff, "Z", &z);
    state.submit_printing(vec![payload], vec![job]).await?;
    let kept = state
        .read(|r| r.state().cash.sessions.get(&id).map(CashSession::report))
        .ok_or_else(|| ApiError::internal("closed session vanished"))?;
    Ok(Json(report_json(&kept)))
}

/// `GET /api/v1/cash/sessions/current/report`: the X report of the open session.
pub async fn report(
    State(state): State<TerminalState>,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    let id = current_id(&state, &session.till)?;
    let x = state
        .read(|r| r.state().cash.sessions.get(&id).map(CashSession::report))
        .ok_or_else(|| ApiError::conflict("no_cash_session", "no cash session is open"))?;
    Ok(Json(report_json(&x)))
}

/// `POST /api/v1/cash/sessions/current/report/print`: the X report of the open session,
/// queued for the receipt printer (durably, like a receipt) and answered as by `GET`.
pub async fn print_report(
    State(state): State<TerminalState>,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    let id = current_id(&state, &session.till)?;
    let x = state
        .read(|r| r.state().cash.sessions.get(&id).map(CashSession::report))
        .ok_or_else(|| ApiError::conflict("no_cash_session", "no cash session is open"))?;
    let job = report_job(&session.staff, "X", &x);
    state.submit_printing(Vec::new(), vec![job]).await?;
    let mut answer = report_json(&x);
    answer["printed"] = Value::Bool(true);
    Ok(Json(answer))
}

/// `GET /api/v1/cash/sessions/current`: `{"session": ...}` (null when the drawer is closed).
pub async fn current(
    State(state): State<TerminalState>,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({
        "till": session.till.as_str(),
        "session": current_json(&state, &session.till),
    })))
}

/// `GET /api/v1/cash/sessions/{id}`: a session's report (the Z report once closed).
pub async fn show(
    State(state): State<TerminalState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let unknown = || ApiError::not_found("unknown_session", format!("no cash session {id}"));
    let id = CashSessionId::parse(&id).map_err(|_| unknown())?;
    state
        .read(|r| r.state().cash.sessions.get(&id).map(CashSession::report))
        .map(|r| Json(report_json(&r)))
        .ok_or_else(unknown)
}

/// The printed X or Z report: one label and amount per row.
fn report_job(staff: &str, title: &str, r: &CashReport) -> PrintJob {
    let mut rows: Vec<(String, i64)> = vec![
        ("Fondo inicial".into(), r.float_cents),
        ("Ventas".into(), r.sales_cents),
        ("Devoluciones".into(), -r.returns_cents),
        ("Descuentos".into(), r.discounts_cents),
        ("Entradas".into(), r.cash_in_cents),
        ("Salidas".into(), -r.cash_out_cents),
    ];
    for (t, c) in &r.by_tender {
        let name = if *t == Tender::Cash {
            "Efectivo"
        } else {
            "Tarjeta"
        };
        rows.push((name.into(), *c));
    }
    for VatLine {
        vat_bp,
        base_cents,
        cuota_cents,
    } in &r.vat
    {
        rows.push((format!("Base {} %", vat_bp / 100), *base_cents));
        rows.push((format!("IVA {} %", vat_bp / 100), *cuota_cents));
    }
    rows.push(("Esperado".into(), r.expected_cents));
    if let (Some(c), Some(d)) = (r.counted_cents, r.difference_cents()) {
        rows.push(("Contado".into(), c));
        rows.push(("Diferencia".into(), d));
    }
    PrintJob::CashReport {
        store: format!("{} / {}", r.store, r.till),
        title: format!("INFORME {title} / {title} REPORT"),
        session: r.id.to_string(),
        staff: staff.to_string(),
        invoices: match (&r.first_invoice, &r.last_invoice) {
            (Some(a), Some(b)) => format!("Facturas {a} .. {b}"),
            _ => "Sin facturas".to_string(),
        },
        rows,
    }
}
