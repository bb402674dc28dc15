//! `POST /api/v1/session` (log in), `GET` (who am I), `DELETE` (log out).

use super::auth::{self, Session};
use super::body::{str_field, JsonBody};
use super::error::ApiError;
use super::TerminalState;
use axum::extract::State;
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

pub async fn create(
    State(state): State<TerminalState>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let staff = str_field(body.get("staff"), "staff", "invalid_staff")?
        .trim()
        .to_string();
    let pin = str_field(body.get("pin"), "pin", "invalid_pin")?.to_string();
    if !auth::valid_staff(&staff) {
        return Err(
            ApiError::unprocessable("invalid_staff", "staff must be 1-16 digits")
                .with("field", "staff"),
        );
    }
    if pin.len() > 64 {
        return Err(ApiError::unprocessable("invalid_pin", "pin is too long").with("field", "pin"));
    }
    let login = auth::login(&state, staff, pin).await?;
    let ttl_s = state.config().session_ttl_ms / 1000;
    let cookie = auth::cookie(&login.token, ttl_s, state.config().secure_cookie);
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&cookie).map_err(ApiError::internal)?;
    headers.insert(header::SET_COOKIE, value);
    let body = json!({
        "staff": login.staff,
        "role": login.role.as_str(),
        "name": login.name,
        "store": state.store().as_str(),
        "cash_session": super::cash::current_json(&state),
    });
    Ok((StatusCode::OK, headers, Json(body)).into_response())
}

pub async fn current(
    State(state): State<TerminalState>,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    let staff = session.staff.clone();
    let name: String = state
        .db_read(move |c| {
            c.query_row(
                "SELECT name FROM terminal_staff WHERE staff = ?1",
                [staff],
                |r| r.get(0),
            )
        })
        .await
        .unwrap_or_default();
    Ok(Json(json!({
        "staff": session.staff,
        "role": session.role.as_str(),
        "name": name,
        "store": state.store().as_str(),
        "cash_session": super::cash::current_json(&state),
    })))
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
