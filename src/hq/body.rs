//! HQ's request bodies: typed serde structs read through `crate::http_body`, refused with HQ's
//! codes: 413 `payload_too_large`, 400 `invalid_json`, 422 `invalid_<field>` naming the field.

use super::error::ApiError;
use super::BODY_BYTES_MAX;
use crate::http_body::{self, BodyError};
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

/// A JSON body of type `T`, with its canonical JSON for idempotency hashing. A handler that
/// checks its path first takes `Result<JsonBody<T>, ApiError>` and applies `?` after.
pub struct JsonBody<T> {
    pub value: T,
    /// The body re-encoded canonically (sorted keys, no spaces).
    pub canonical: String,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let parsed = http_body::read(req, state, BODY_BYTES_MAX).await?;
        Ok(JsonBody {
            value: parsed.value,
            canonical: parsed.canonical,
        })
    }
}

/// The code a field's errors carry where the contract names it differently (`price_cents`
/// is `invalid_price`, DESIGN.md section 11).
fn code_field(field: &str) -> &str {
    match field {
        "price_cents" => "price",
        other => other,
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> ApiError {
        match e {
            BodyError::TooLarge { .. } => ApiError::payload_too_large(),
            BodyError::Unreadable(_) | BodyError::Malformed(_) | BodyError::Shape(_) => {
                ApiError::invalid_json(e.to_string())
            }
            BodyError::Field { ref field, .. } => {
                ApiError::invalid(code_field(field), e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::hq::tests::{fixture, madrid, send, SKU};
    use axum::http::{Method, StatusCode};
    use serde_json::json;

    #[tokio::test]
    async fn a_bad_field_deep_in_an_order_is_named_by_its_path_and_nothing_is_stored() {
        let f = fixture().await;
        let before = f.state.node.read(|r| r.digest());
        let order = json!({
            "store": madrid(), "customer": {"id": "C-0001"},
            "lines": [{"sku": SKU, "qty": 1}, {"sku": SKU, "qty": "two"}],
        });
        let (status, answer) = send(
            &f.state,
            Method::POST,
            "/api/v1/orders",
            Some(order),
            &[("idempotency-key", "k-1")],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"], "invalid_qty", "{answer}");
        assert_eq!(answer["field"], "qty", "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.starts_with("lines[1].qty: invalid type"),
            "{message}"
        );

        let no_customer = json!({"store": madrid(), "lines": [{"sku": SKU, "qty": 1}]});
        let (status, answer) = send(
            &f.state,
            Method::POST,
            "/api/v1/orders",
            Some(no_customer),
            &[("idempotency-key", "k-2")],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"], "invalid_customer", "{answer}");
        assert_eq!(f.state.node.read(|r| r.digest()), before);
    }
}
