//! The HQ API's refusals: the shared `ApiError` (`crate::http_error`) marked `Hq`, the
//! constructors its handlers share, and how HQ's contract names each domain refusal
//! (DESIGN.md sections 11 and 17). `ErrorCode` rides on each answer for the metrics layer.

use crate::domain::DomainError;
use crate::http_error::Api;
pub use crate::http_error::ErrorCode;
use axum::http::StatusCode;

/// The HQ API, as the marker of its errors.
#[derive(Debug, Clone, Copy)]
pub struct Hq;

impl Api for Hq {
    const NAME: &'static str = "hq";
    const INTERNAL_MESSAGE: &'static str = "internal error; see the hq log";
}

/// HQ's refusals: the shared `crate::http_error::ApiError` with HQ's codes.
pub type ApiError = crate::http_error::ApiError<Hq>;

impl ApiError {
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
        .retry_after(retry_after_s)
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
                let sources: Vec<serde_json::Value> = refusal
                    .sources
                    .iter()
                    .map(|(k, stores)| {
                        let stores: Vec<serde_json::Value> = stores
                            .iter()
                            .map(
                                |(s, n)| serde_json::json!({"store": s.as_str(), "hq_can_sell": n}),
                            )
                            .collect();
                        serde_json::json!({"sku": k.as_str(), "stores": stores})
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
