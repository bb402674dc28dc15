//! `POST /api/v1/session` (log in, optionally at a named till), `GET` (who am I), `DELETE`
//! (log out), `PUT /api/v1/session/till` (this terminal works at another till).

use super::auth::{self, Role, Session};
use super::body::{FieldCodes, Typed};
use super::error::ApiError;
use super::TerminalState;
use crate::domain::ids::TillId;
use axum::extract::State;
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// `POST /api/v1/session`.
#[derive(Debug, Deserialize)]
pub struct LoginBody {
    pub staff: String,
    pub pin: String,
    /// The till this terminal works at (`[till] tills`); absent: the store's first till.
    #[serde(default)]
    pub till: Option<String>,
}

impl FieldCodes for LoginBody {
    fn code(field: &str) -> &'static str {
        match field {
            "staff" => "invalid_staff",
            "pin" => "invalid_pin",
            "till" => "unknown_till",
            _ => "invalid_field",
        }
    }
}

/// `PUT /api/v1/session/till`.
#[derive(Debug, Deserialize)]
pub struct TillBody {
    pub till: String,
}

impl FieldCodes for TillBody {
    fn code(_field: &str) -> &'static str {
        "unknown_till"
    }
}

/// One of the store's tills, or `422 unknown_till` naming the field.
fn known_till(state: &TerminalState, till: &str) -> Result<TillId, ApiError> {
    TillId::parse(till.trim())
        .ok()
        .filter(|t| state.config().till.knows(t))
        .ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_till",
                format!("this store has no till {:?}", till.trim()),
            )
            .with("field", "till")
            .with("tills", tills_json(state))
        })
}

fn tills_json(state: &TerminalState) -> Value {
    Value::from(
        state
            .config()
            .till
            .tills
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>(),
    )
}

/// Who is logged in where: the answer of every session call.
fn session_json(
    state: &TerminalState,
    staff: &str,
    role: Role,
    name: &str,
    till: &TillId,
) -> Value {
    json!({
        "staff": staff,
        "role": role.as_str(),
        "name": name,
        "store": state.store().as_str(),
        "till": till.as_str(),
        "tills": tills_json(state),
        "cash_session": super::cash::current_json(state, till),
    })
}

pub async fn create(
    State(state): State<TerminalState>,
    Typed(body): Typed<LoginBody>,
) -> Result<Response, ApiError> {
    let staff = body.staff.trim().to_string();
    let pin = body.pin;
    if !auth::valid_staff(&staff) {
        return Err(
            ApiError::unprocessable("invalid_staff", "staff must be 1-16 digits")
                .with("field", "staff"),
        );
    }
    if pin.len() > 64 {
        return Err(ApiError::unprocessable("invalid_pin", "pin is too long").with("field", "pin"));
    }
    let till = match body.till.as_deref() {
        Some(t) => known_till(&state, t)?,
        None => state.config().till.main_till(),
    };
    let login = auth::login(&state, staff, pin, till).await?;
    let ttl_s = state.config().session_ttl_ms / 1000;
    let cookie = auth::cookie(&login.token, ttl_s, state.config().secure_cookie);
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;
    headers.insert(header::SET_COOKIE, value);
    let body = session_json(&state, &login.staff, login.role, &login.name, &login.till);
    Ok((StatusCode::OK, headers, Json(body)).into_response())
}

async fn staff_name(state: &TerminalState, staff: &str) -> String {
    let staff = staff.to_string();
    state
        .db_read(move |c| {
            c.query_row(
                "SELECT name FROM terminal_staff WHERE staff = ?1",
                [staff],
                |r| r.get(0),
            )
        })
        .await
        .unwrap_or_default()
}

pub async fn current(
    State(state): State<TerminalState>,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    let name = staff_name(&state, &session.staff).await;
    Ok(Json(session_json(
        &state,
        &session.staff,
        session.role,
        &name,
        &session.till,
    )))
}

/// `PUT /api/v1/session/till` `{"till"}`: this terminal now works at `till` (its drawer and
/// its sales); 200 as `GET /session`, 422 `unknown_till`.
pub async fn switch_till(
    State(state): State<TerminalState>,
    session: Session,
    parts: Parts,
    body: Result<Typed<TillBody>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let Typed(body) = body?;
    let till = known_till(&state, &body.till)?;
    auth::switch_till(&state, &parts, &till).await?;
    let name = staff_name(&state, &session.staff).await;
    Ok(Json(session_json(
        &state,
        &session.staff,
        session.role,
        &name,
        &till,
    )))
}

pub async fn destroy(
    State(state): State<TerminalState>,
    parts: Parts,
) -> Result<Response, ApiError> {
    auth::logout(&state, &parts).await?;
    let cookie = auth::cookie("", 0, state.config().secure_cookie);
    let value = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, value)]).into_response())
}
