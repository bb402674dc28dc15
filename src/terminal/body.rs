//! JSON request bodies: 413 over 1 MiB (before reading when the length is declared), 400
//! `invalid_json` when malformed, 422 when well formed but the wrong shape. Handlers then check
//! each field and name it in their 422.

use super::error::ApiError;
use super::BODY_BYTES_MAX;
use crate::http_body::{self, BodyError};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A JSON body of type `T`, read through `crate::http_body` (one reader for the terminal and
/// HQ); a field of the wrong shape is a 422 `invalid_field` naming it by path.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        let parsed = http_body::read(req, state, BODY_BYTES_MAX).await?;
        Ok(JsonBody(parsed.value))
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> ApiError {
        let message = e.to_string();
        match e {
            BodyError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
            }
            BodyError::Unreadable(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message)
            }
            BodyError::Malformed(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
            }
            BodyError::Shape(_) => ApiError::unprocessable("invalid_field", message),
            BodyError::Field { path, .. } => {
                ApiError::unprocessable("invalid_field", message).with("field", path)
            }
        }
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
