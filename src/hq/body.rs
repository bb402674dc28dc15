//! Request bodies: bytes under the size limit, then JSON, then fields read one by one so a bad
//! field is answered with a 422 that names it (serde's messages do not name fields reliably).

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::{Map, Value};

/// A JSON object body, with its raw bytes for idempotency hashing.
pub struct JsonBody {
    pub object: Map<String, Value>,
    /// The body re-encoded canonically (sorted keys, no spaces).
    pub canonical: String,
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large()
            } else {
                ApiError::invalid_json(format!("cannot read body: {e}"))
            }
        })?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::invalid_json(format!("malformed JSON: {e}")))?;
        let canonical = value.to_string();
        match value {
            Value::Object(object) => Ok(JsonBody { object, canonical }),
            _ => Err(ApiError::invalid_json("expected a JSON object")),
        }
    }
}

/// Typed access to fields, each failure a 422 naming the field.
pub trait Fields {
    fn req_str(&self, key: &str) -> Result<&str, ApiError>;
    fn opt_str(&self, key: &str) -> Result<Option<&str>, ApiError>;
    fn req_i64(&self, key: &str) -> Result<i64, ApiError>;
    fn req_array(&self, key: &str) -> Result<&Vec<Value>, ApiError>;
}

impl Fields for Map<String, Value> {
    fn req_str(&self, key: &str) -> Result<&str, ApiError> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ApiError::invalid(key, format!("{key} must be a string"))),
            None => Err(ApiError::invalid(key, format!("{key} is required"))),
        }
    }
    fn opt_str(&self, key: &str) -> Result<Option<&str>, ApiError> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(Some(s)),
            None | Some(Value::Null) => Ok(None),
            Some(_) => Err(ApiError::invalid(key, format!("{key} must be a string"))),
        }
    }
    fn req_i64(&self, key: &str) -> Result<i64, ApiError> {
        match self.get(key) {
            Some(v) => v
                .as_i64()
                .ok_or_else(|| ApiError::invalid(key, format!("{key} must be an integer"))),
            None => Err(ApiError::invalid(key, format!("{key} is required"))),
        }
    }
    fn req_array(&self, key: &str) -> Result<&Vec<Value>, ApiError> {
        match self.get(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(ApiError::invalid(key, format!("{key} must be an array"))),
            None => Err(ApiError::invalid(key, format!("{key} is required"))),
        }
    }
}
