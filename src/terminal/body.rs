//! JSON request bodies: 413 over 1 MiB (before reading when the length is declared), 400
//! `invalid_json` when malformed, 422 when well formed but the wrong shape. Bodies are typed
//! structs; a field of the wrong type gets its own code through `FieldCodes`, and handlers check
//! ranges and formats after, naming the field in their 422.

use super::error::ApiError;
use super::BODY_BYTES_MAX;
use crate::http_body::{self, BodyError};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

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

/// A typed body whose fields carry the terminal's own 422 codes (`invalid_staff`, `invalid_scan`,
/// ...), named by `FieldCodes`. A handler that checks its session or path first takes
/// `Result<Typed<T>, ApiError>` and applies `?` after, so the old order of errors holds.
pub struct Typed<T>(pub T);

/// The 422 code of each field of a typed body (`invalid_field` for one not listed).
pub trait FieldCodes {
    fn code(field: &str) -> &'static str;
}

impl<S: Send + Sync, T: DeserializeOwned + FieldCodes> FromRequest<S> for Typed<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Typed<T>, ApiError> {
        match http_body::read(req, state, BODY_BYTES_MAX).await {
            Ok(parsed) => Ok(Typed(parsed.value)),
            Err(BodyError::Field {
                path,
                field,
                reason,
            }) => Err(
                ApiError::unprocessable(T::code(&field), format!("{path}: {reason}"))
                    .with("field", field),
            ),
            Err(e) => Err(e.into()),
        }
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

/// A whole number already read from a typed body, checked against `min..=max`, or a 422 with
/// `code` naming the field (serde checks the type; the range is the contract's).
pub fn bounded(
    n: i64,
    field: &str,
    code: &'static str,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(ApiError::unprocessable(
            code,
            format!("{field} must be a whole number from {min} to {max}"),
        )
        .with("field", field))
    }
}
