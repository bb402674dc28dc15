//! The one error type of the HQ API: `{"error": "<code>", "message": "..."}` plus named fields.
//!
//! Handlers return `ApiError`; the response carries the code as an extension so the metrics
//! layer can count errors by code without parsing bodies.

use crate::domain::DomainError;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// An API error: status, snake_case code, message, and extra named fields.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub fields: Map<String, Value>,
}

/// The error code of a response, for metrics.
#[derive(Debug, Clone)]
pub struct ErrorCode(pub String);

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            fields: Map::new(),
        }
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.fields.insert(key.to_string(), value.into());
        self
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        )
    }
    /// 429 with `Retry-After` (seconds), also given as `retry_after_s`.
    pub fn rate_limited(retry_after_s: u64) -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests: try again in {retry_after_s} s"),
        )
        .with("retry_after_s", retry_after_s)
    }
    pub fn invalid_json(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }
    pub fn payload_too_large() -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body over 1 MiB",
        )
    }
    /// 422 for a bad field: code `invalid_<field>` and the field named.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("invalid_{field}"),
            message,
        )
        .with("field", field)
    }
    pub fn unknown_sku(sku: &str, status: StatusCode) -> ApiError {
        ApiError::new(status, "unknown_sku", format!("unknown sku {sku}")).with("sku", sku)
    }
    pub fn unknown_store(store: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_store",
            format!("unknown store {store}"),
        )
        .with("store", store)
    }
    pub fn unknown_order(id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_order",
            format!("unknown order {id}"),
        )
        .with("id", id)
    }
    /// 503 `storage_unavailable` while the shared op log (PostgreSQL) is unreachable: nothing
    /// was stored, the call may be retried; any other storage failure is `internal`.
    pub fn store(e: crate::store::StoreError) -> ApiError {
        if e.is_storage_unavailable() {
            tracing::warn!(error = %e, "hq storage unavailable");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "storage is unavailable; nothing was stored, try again",
            );
        }
        ApiError::internal(e)
    }
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %message, "hq api internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the hq log",
        )
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        let msg = e.to_string();
        match &e {
            DomainError::UnknownSku(sku) => {
                ApiError::unknown_sku(sku.as_str(), StatusCode::UNPROCESSABLE_ENTITY)
            }
            DomainError::InsufficientStock { sku, available, .. } => {
                ApiError::new(StatusCode::CONFLICT, "insufficient_stock", msg)
                    .with("sku", sku.as_str())
                    .with("available", (*available).max(0))
            }
            DomainError::NoSingleSource(refusal) => {
                let sources: Vec<Value> = refusal
                    .sources
                    .iter()
                    .map(|(k, stores)| {
                        let stores: Vec<Value> = stores
                            .iter()
                            .map(|(s, n)| json!({"store": s.as_str(), "hq_can_sell": n}))
                            .collect();
                        json!({"sku": k.as_str(), "stores": stores})
                    })
                    .collect();
                ApiError::new(StatusCode::CONFLICT, "insufficient_stock", msg)
                    .with("sku", refusal.sku.as_str())
                    .with("available", refusal.available.max(0))
                    .with("reason", "no_single_store")
                    .with("sources", sources)
            }
            DomainError::InvalidQty { .. } => ApiError::invalid("qty", msg),
            DomainError::InvalidField { field, .. } => ApiError::invalid(field, msg),
            DomainError::UnknownOrder(id) => ApiError::unknown_order(id.as_str()),
            DomainError::DuplicateOrder(_) => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_order", msg)
            }
            DomainError::CustomerErased(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "customer_erased", msg)
            }
            DomainError::AlreadyHandedOver(_) => {
                ApiError::new(StatusCode::CONFLICT, "already_handed_over", msg)
            }
            DomainError::OrderClosed { .. } | DomainError::BadTransition { .. } => {
                ApiError::new(StatusCode::CONFLICT, "order_closed", msg)
            }
            _ => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected", msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = %self.code, message = %self.message, "hq api error");
        } else {
            tracing::debug!(code = %self.code, message = %self.message, "hq api refusal");
        }
        let mut body = Map::new();
        body.insert("error".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        let retry_after = self.fields.get("retry_after_s").and_then(Value::as_u64);
        for (k, v) in self.fields {
            body.entry(k).or_insert(v);
        }
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        if let (StatusCode::TOO_MANY_REQUESTS, Some(secs)) = (self.status, retry_after) {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}
