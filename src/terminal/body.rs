//! JSON request bodies: 413 over 1 MiB (before reading when the length is declared), 400
//! `invalid_json` when malformed, 422 when well formed but the wrong shape. Handlers then check
//! each field and name it in their 422.

use super::error::ApiError;
use super::BODY_BYTES_MAX;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A JSON body of type `T`.
pub struct JsonBody<T>(pub T);

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request body over {BODY_BYTES_MAX} bytes"),
    )
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > BODY_BYTES_MAX as u64) {
            return Err(too_large());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.body_text())
            }
        })?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("body is not valid JSON: {e}"),
            )
        })?;
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|e| ApiError::unprocessable("invalid_field", format!("bad request body: {e}")))
    }
}

/// An integer field in `min..=max`, or a 422 with `code` naming the field.
pub fn int_field(
    value: Option<&Value>,
    field: &str,
    code: &'static str,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    match value.and_then(Value::as_i64) {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::unprocessable(
            code,
            format!("{field} must be a whole number from {min} to {max}"),
        )
        .with("field", field)),
    }
}

/// A string field, or a 422 with `code` naming the field.
pub fn str_field<'a>(
    value: Option<&'a Value>,
    field: &str,
    code: &'static str,
) -> Result<&'a str, ApiError> {
    value.and_then(Value::as_str).ok_or_else(|| {
        ApiError::unprocessable(code, format!("{field} must be a string")).with("field", field)
    })
}
