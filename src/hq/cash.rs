//! HQ's view of the stores' cash sessions (DESIGN.md §18): sessions replicate with the
//! stores' ops, and `GET /api/v1/cash/sessions[?store=S]` lists each one's report (the Z
//! report once closed), computed by `domain::till::cash` exactly as the store computes it.

use super::error::ApiError;
use super::HqState;
use crate::domain::StoreId;
use crate::terminal::cash::report_json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::collections::HashMap;

/// `GET /api/v1/cash/sessions[?store=S]`: every session's report, per store, oldest first.
pub async fn list(
    State(state): State<HqState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let store = match q.get("store") {
        Some(s) => Some(
            StoreId::parse(s)
                .ok()
                .filter(|s| state.knows(s))
                .ok_or_else(|| ApiError::unknown_store(s))?,
        ),
        None => None,
    };
    let all: Vec<Value> = state.node.read(|r| {
        let mut v: Vec<_> = r
            .state()
            .cash
            .sessions
            .values()
            .filter(|s| store.as_ref().is_none_or(|st| &s.store == st))
            .collect();
        v.sort_by(|a, b| (&a.store, a.opened_ms).cmp(&(&b.store, b.opened_ms)));
        v.into_iter().map(|s| report_json(&s.report())).collect()
    });
    Ok(Json(Value::Array(all)).into_response())
}
