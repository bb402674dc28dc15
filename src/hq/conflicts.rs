//! The chain-wide conflict inbox (DESIGN.md sections 15 and 17): `GET /api/v1/conflicts
//! [?store=S][&kind=K][&open=true]` and `POST /api/v1/conflicts/{id}/resolve`.
//!
//! HQ holds every store's ops, so it lists every store's items with the ids the stores list.
//! A resolution is a `ConflictResolve` op authored by HQ for the item's store: HQ's routing
//! sends it down to that store, so resolved at HQ is resolved at the store. The body may name
//! who decided (`by`); the console passes its logged-in account.

use super::api::known_store;
use super::body::{Fields, JsonBody};
use super::error::ApiError;
use super::HqState;
use crate::domain::conflict::{self, Conflict, ConflictKind};
use crate::domain::Payload;
use crate::terminal::conflicts::conflict_json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::collections::HashMap;

/// Who a resolution names when the API caller does not say.
pub const API_RESOLVER: &str = "hq-api";

/// Items matching the `store`, `kind` and `open` filters, oldest first.
pub fn filtered(state: &HqState, q: &HashMap<String, String>) -> Result<Vec<Conflict>, ApiError> {
    let store = match q.get("store").filter(|s| !s.is_empty()) {
        Some(s) => Some(known_store(state, s)?),
        None => None,
    };
    let kind = match q.get("kind").filter(|s| !s.is_empty()) {
        Some(k) => Some(
            ConflictKind::parse(k)
                .ok_or_else(|| ApiError::invalid("kind", format!("unknown conflict kind {k:?}")))?,
        ),
        None => None,
    };
    let open_only = q.get("open").is_some_and(|v| v == "true");
    let items = state
        .node
        .read(|r| conflict::conflicts(r.state(), store.as_ref()));
    Ok(items
        .into_iter()
        .filter(|c| kind.is_none_or(|k| c.kind == k))
        .filter(|c| !open_only || c.resolution.is_none())
        .collect())
}

/// `GET /api/v1/conflicts[?store=S][&kind=K][&open=true]`.
pub async fn list(
    State(state): State<HqState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let items = filtered(&state, &q)?;
    let body: Vec<Value> = items.iter().map(conflict_json).collect();
    Ok(Json(body).into_response())
}

/// Resolve item `id` as `by`: checks, submits the op, answers the item after the commit.
pub async fn resolve_as(
    state: &HqState,
    id: &str,
    action: &str,
    note: &str,
    by: &str,
) -> Result<Conflict, ApiError> {
    let item = state
        .node
        .read(|r| conflict::find(r.state(), id))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_conflict",
                format!("no conflict {id}"),
            )
            .with("id", id)
        })?;
    state
        .node
        .submit(vec![Payload::ConflictResolve {
            store: item.store.clone(),
            conflict: id.to_string(),
            action: action.trim().to_string(),
            note: note.trim().to_string(),
            by: by.to_string(),
        }])
        .await?;
    state
        .node
        .read(|r| conflict::find(r.state(), id))
        .ok_or_else(|| ApiError::internal(format!("conflict {id} vanished after resolving")))
}

/// `POST /api/v1/conflicts/{id}/resolve` `{"action", "note"?, "by"?}`.
pub async fn resolve(
    State(state): State<HqState>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let action = body.object.req_str("action")?.to_string();
    let note = body.object.opt_str("note")?.unwrap_or("").to_string();
    let by = body
        .object
        .opt_str("by")?
        .unwrap_or(API_RESOLVER)
        .to_string();
    let item = resolve_as(&state, &id, &action, &note, &by).await?;
    Ok(Json(conflict_json(&item)).into_response())
}
