//! The terminal API's one error type: every refusal becomes `{"error", "message"}` plus the
//! fields DESIGN.md section 11 names (`sku`, `available`, ...), with the matching status.

use crate::domain::DomainError;
use crate::store::{StoreError, SubmitError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// A refused request: status, snake_case code, a message for people, extra fields.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub extra: Map<String, Value>,
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
            retry_after_s: None,
        }
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.extra.insert(key.to_string(), value.into());
        self
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in first: this call needs a session",
        )
    }
    pub fn forbidden(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{what} needs the manager role"),
        )
    }
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "terminal request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the store node could not complete this; try again",
        )
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> ApiError {
        match e {
            SubmitError::Domain(d) => d.into(),
            SubmitError::Store(s) => ApiError::internal(s),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        let message = e.to_string();
        match e {
            DomainError::UnknownSku(sku) => {
                ApiError::unprocessable("unknown_sku", message).with("sku", sku.as_str())
            }
            DomainError::NoSingleSource(r) => ApiError::conflict("insufficient_stock", message)
                .with("sku", r.sku.as_str())
                .with("available", r.available.max(0)),
            DomainError::InsufficientStock { sku, available, .. } => {
                ApiError::conflict("insufficient_stock", message)
                    .with("sku", sku.as_str())
                    .with("available", available.max(0))
            }
            DomainError::InvalidQty { .. } => ApiError::unprocessable("invalid_qty", message),
            DomainError::InvalidField { field, .. } => {
                ApiError::unprocessable("invalid_field", message).with("field", field)
            }
            DomainError::UnknownOrder(_) => ApiError::not_found("unknown_order", message),
            DomainError::UnknownCustomer(_) => ApiError::not_found("unknown_customer", message),
            DomainError::CustomerErased(_) => ApiError::conflict("customer_erased", message),
            DomainError::NotInOrder { sku, .. } => {
                ApiError::unprocessable("not_in_order", message).with("sku", sku.as_str())
            }
            DomainError::AlreadyPicked { sku, .. } => {
                ApiError::unprocessable("already_picked", message).with("sku", sku.as_str())
            }
            DomainError::NotPicked(_) => ApiError::conflict("not_picked", message),
            DomainError::AlreadyHandedOver(_) => ApiError::conflict("already_handed_over", message),
            DomainError::OrderClosed { status, .. } => {
                ApiError::conflict("order_closed", message).with("status", status)
            }
            DomainError::BadTransition { status, .. } => {
                ApiError::conflict("bad_transition", message).with("status", status)
            }
            DomainError::DuplicateOrder(_)
            | DomainError::DuplicateSale(_)
            | DomainError::DuplicateReturn(_) => ApiError::conflict("duplicate", message),
            DomainError::UnknownSale(_) => ApiError::not_found("unknown_sale", message),
            DomainError::NotInSale { sku, .. } => {
                ApiError::unprocessable("not_in_sale", message).with("sku", sku.as_str())
            }
            DomainError::AlreadyReturned {
                sku, returnable, ..
            } => ApiError::conflict("already_returned", message)
                .with("sku", sku.as_str())
                .with("returnable", returnable),
            DomainError::ReturnWindowClosed { days, .. } => {
                ApiError::conflict("return_window_closed", message).with("window_days", days)
            }
            DomainError::ManagerRequired { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "manager_required", message)
            }
            DomainError::NotReturnHolder(_) => ApiError::conflict("not_return_holder", message),
            DomainError::Unauthorized { .. } | DomainError::SeqGap { .. } => {
                ApiError::internal(message)
            }
            DomainError::UnknownMovement { kind, .. } => ApiError::not_found(
                if kind == "shipment" {
                    "unknown_shipment"
                } else {
                    "unknown_transfer"
                },
                message,
            ),
            DomainError::DuplicateMovement { .. } => ApiError::conflict("duplicate", message),
            DomainError::AlreadyReceived { .. } => ApiError::conflict("already_received", message),
            DomainError::WrongStore { to, .. } => {
                ApiError::unprocessable("wrong_store", message).with("to", to.as_str())
            }
            DomainError::OverDelivery { sku, sent, .. } => {
                ApiError::unprocessable("over_delivery", message)
                    .with("sku", sku.as_str())
                    .with("sent", sent)
            }
            DomainError::SameStore(_) => ApiError::unprocessable("same_store", message),
            DomainError::CashSessionOpen(id) => {
                ApiError::conflict("session_open", message).with("session", id.as_str())
            }
            DomainError::NoCashSession => ApiError::conflict("no_cash_session", message),
            DomainError::Withdrawn(_) => ApiError::conflict("transfer_withdrawn", message),
            DomainError::AlreadyDispatched(_) => ApiError::conflict("already_dispatched", message),
            DomainError::NotArrived { sku, arrived, .. } => {
                ApiError::conflict("not_arrived", message)
                    .with("sku", sku.as_str())
                    .with("arrived", arrived)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::debug!(code = self.code, message = %self.message, "terminal request refused");
        }
        let mut body = Map::new();
        body.insert("error".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        body.extend(self.extra);
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        if let Some(s) = self.retry_after_s {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
