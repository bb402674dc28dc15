//! The one error answer of the terminal's and HQ's APIs (DESIGN.md §11): status, a snake_case
//! `error` code, a `message` for people, and the fields the contract names (`field`, `sku`,
//! `available`, `retry_after_s`, ...).
//!
//! One type, `ApiError<A>`, marked by the API that answers (`terminal::error::Terminal`,
//! `hq::error::Hq`): the shape, the `Retry-After` header, the logging and the code handed to
//! the metrics layer are shared, while each API implements its own conversion from
//! `DomainError` and `BodyError`, because the two contracts name a few refusals differently
//! (a domain `InvalidField` is `invalid_field` at the counter, `invalid_<field>` at HQ).

use crate::store::{StoreError, SubmitError};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::marker::PhantomData;

/// An API whose refusals an `ApiError` carries.
pub trait Api {
    /// Names the API in logs: `terminal`, `hq`.
    const NAME: &'static str;
    /// The message of a 500, for people (the detail goes to the log only).
    const INTERNAL_MESSAGE: &'static str;
}

/// A refused request: status, code, message, extra named fields.
#[derive(Debug, Clone)]
pub struct ApiError<A> {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Extra fields of the answer beside `error` and `message` (`field`, `sku`, ...).
    pub fields: Map<String, Value>,
    /// Sent as `Retry-After` (whole seconds) too.
    pub retry_after_s: Option<u64>,
    api: PhantomData<fn() -> A>,
}

/// The error code of a response, as an extension, so a metrics layer counts refusals by code
/// without parsing bodies.
#[derive(Debug, Clone)]
pub struct ErrorCode(pub String);

impl<A: Api> ApiError<A> {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            fields: Map::new(),
            retry_after_s: None,
            api: PhantomData,
        }
    }

    /// The same refusal with one more named field in the answer.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_string(), value.into());
        self
    }

    /// Ask the client to wait: `Retry-After` and `retry_after_s`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_s = Some(secs);
        self.with("retry_after_s", secs)
    }

    pub fn unprocessable(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 422 for a bad field: code `invalid_<field>` and the field named.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::unprocessable(&format!("invalid_{field}"), message).with("field", field)
    }

    /// 500: the detail goes to the log, the client gets the API's plain message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(api = A::NAME, %detail, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            A::INTERNAL_MESSAGE,
        )
    }

    /// 503 `storage_unavailable` while a shared op log (PostgreSQL) is unreachable: nothing was
    /// stored, the call may be retried; any other storage failure is `internal`.
    pub fn store(e: StoreError) -> Self {
        if e.is_storage_unavailable() {
            tracing::warn!(api = A::NAME, error = %e, "storage unavailable");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "storage is unavailable; nothing was stored, try again",
            );
        }
        Self::internal(e)
    }
}

impl<A: Api> From<StoreError> for ApiError<A> {
    fn from(e: StoreError) -> Self {
        Self::store(e)
    }
}

/// A refused submit: the domain's refusal as the API names it, or the store's failure.
impl<A: Api> From<SubmitError> for ApiError<A>
where
    ApiError<A>: From<crate::domain::DomainError>,
{
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Domain(d) => d.into(),
            SubmitError::Store(s) => Self::store(s),
        }
    }
}

impl<A: Api> IntoResponse for ApiError<A> {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(api = A::NAME, code = %self.code, message = %self.message, "request failed");
        } else {
            tracing::debug!(api = A::NAME, code = %self.code, message = %self.message, "request refused");
        }
        let mut body = Map::new();
        body.insert("error".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        for (k, v) in self.fields {
            body.entry(k).or_insert(v);
        }
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        if let Some(secs) = self.retry_after_s {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[derive(Debug)]
    struct Probe;

    impl Api for Probe {
        const NAME: &'static str = "probe";
        const INTERNAL_MESSAGE: &'static str = "try again";
    }

    async fn answer(e: ApiError<Probe>) -> (StatusCode, Option<String>, Option<String>, Value) {
        let r = e.into_response();
        let retry = r
            .headers()
            .get(RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let code = r.extensions().get::<ErrorCode>().map(|c| c.0.clone());
        let status = r.status();
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        (status, retry, code, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_refusal_answers_its_code_message_and_fields_and_cannot_overwrite_the_code() {
        let e = ApiError::<Probe>::invalid("qty", "qty must be 1 to 9")
            .with("sku", "SKU-1")
            .with("error", "sneaky");
        let (status, retry, code, body) = answer(e).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!((retry, code.as_deref()), (None, Some("invalid_qty")));
        assert_eq!(
            body,
            json!({"error": "invalid_qty", "message": "qty must be 1 to 9", "field": "qty", "sku": "SKU-1"})
        );
    }

    #[tokio::test]
    async fn retry_after_is_both_a_header_and_a_field_and_internal_hides_the_detail() {
        let e = ApiError::<Probe>::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "wait")
            .retry_after(7);
        let (status, retry, _, body) = answer(e).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry.as_deref(), Some("7"));
        assert_eq!(body["retry_after_s"], 7);
        let (status, _, _, body) = answer(ApiError::<Probe>::internal("disk on fire")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({"error": "internal", "message": "try again"}));
    }
}
