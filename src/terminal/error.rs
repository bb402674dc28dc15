//! The terminal API's refusals: the shared `ApiError` (`crate::http_error`) marked `Terminal`,
//! and how the store's contract names each domain refusal (DESIGN.md sections 11, 17-19):
//! `insufficient_stock` with `sku` and `available`, `already_returned` with `returnable`, ...

use crate::domain::DomainError;
use crate::http_error::Api;
use axum::http::StatusCode;

/// The terminal API, as the marker of its errors.
#[derive(Debug, Clone, Copy)]
pub struct Terminal;

impl Api for Terminal {
    const NAME: &'static str = "terminal";
    const INTERNAL_MESSAGE: &'static str = "the store node could not complete this; try again";
}

/// The terminal's refusals: the shared `crate::http_error::ApiError` with the store's codes.
pub type ApiError = crate::http_error::ApiError<Terminal>;

impl ApiError {
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
