//! JSON request bodies of the terminal and HQ, read into typed serde structs.
//!
//! One path for both servers: the size limit (before reading when the length is declared),
//! then JSON, then the struct through `serde_path_to_error`, so a field of the wrong shape is
//! refused with its path (`lines[1].qty`), including a missing one. Each API turns the one
//! `BodyError` into its own contract codes (DESIGN.md sections 11 and 17).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Longer than the server accepts (declared or read).
    #[error("request body over {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
    /// The connection failed while reading the body.
    #[error("cannot read body: {0}")]
    Unreadable(String),
    /// Not JSON.
    #[error("{0}")]
    Malformed(String),
    /// Well-formed JSON of the wrong kind at the top (an array where an object is expected).
    #[error("{0}")]
    Shape(String),
    /// Well-formed JSON with one field missing or of the wrong shape.
    #[error("{path}: {reason}")]
    Field {
        /// Where in the body, e.g. `lines[1].qty` or `name`.
        path: String,
        /// The field's own name, e.g. `qty`: what the `invalid_<field>` codes use.
        field: String,
        /// serde's reason, e.g. `invalid type: string "x", expected i64`.
        reason: String,
    },
}

/// A typed body and the JSON it came from, re-encoded canonically (sorted keys, no spaces) for
/// idempotency hashing.
#[derive(Debug)]
pub struct Parsed<T> {
    pub value: T,
    pub canonical: String,
}

/// Read, bound and parse a request body into `T`.
pub async fn read<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
    limit_bytes: usize,
) -> Result<Parsed<T>, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit_bytes as u64) {
        return Err(BodyError::TooLarge { limit_bytes });
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BodyError::TooLarge { limit_bytes }
        } else {
            BodyError::Unreadable(e.body_text())
        }
    })?;
    if bytes.len() > limit_bytes {
        return Err(BodyError::TooLarge { limit_bytes });
    }
    parse(&bytes)
}

/// Parse body bytes into `T` (the pure half of `read`).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<Parsed<T>, BodyError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| BodyError::Malformed(format!("body is not valid JSON: {e}")))?;
    let canonical = value.to_string();
    let value = serde_path_to_error::deserialize(value).map_err(field_error)?;
    Ok(Parsed { value, canonical })
}

/// Name the field of a deserialization error. serde reports a missing field at the struct that
/// lacks it, naming it only in the message, so that case is completed from the message.
fn field_error(e: serde_path_to_error::Error<serde_json::Error>) -> BodyError {
    let mut field = e.path().iter().rev().find_map(|s| match s {
        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
        _ => None,
    });
    let mut path = e.path().to_string();
    let reason = e.into_inner().to_string();
    let missing = reason
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_string());
    if let Some(name) = missing {
        path = if path == "." {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        field = Some(name);
    }
    match field {
        Some(field) => BodyError::Field {
            path,
            field,
            reason,
        },
        None => BodyError::Shape(format!("unexpected body: {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // read only through Debug: the tests look at the errors
    struct Line {
        sku: String,
        qty: i64,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Order {
        store: String,
        lines: Vec<Line>,
    }

    fn err(body: &str) -> BodyError {
        parse::<Order>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_wrong_field_is_named_with_its_path() {
        let e =
            err(r#"{"store": "x", "lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": "2"}]}"#);
        let BodyError::Field { path, field, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!((path.as_str(), field.as_str()), ("lines[1].qty", "qty"));
    }

    #[test]
    fn a_missing_field_is_named_too_at_the_top_and_inside() {
        let e = err(r#"{"lines": []}"#);
        assert!(
            matches!(&e, BodyError::Field { path, field, .. } if path == "store" && field == "store"),
            "{e:?}"
        );
        let e = err(r#"{"store": "x", "lines": [{"sku": "A"}]}"#);
        assert!(
            matches!(&e, BodyError::Field { path, field, .. } if path == "lines[0].qty" && field == "qty"),
            "{e:?}"
        );
    }

    #[test]
    fn not_json_is_malformed_an_array_is_the_wrong_shape_and_the_canonical_form_sorts_keys() {
        assert!(matches!(err("{nope"), BodyError::Malformed(_)));
        assert!(matches!(err("[1, 2]"), BodyError::Shape(_)));
        let ok = parse::<Order>(br#"{"store": "x",  "lines": []}"#).unwrap();
        assert_eq!(ok.canonical, r#"{"lines":[],"store":"x"}"#);
    }
}
