//! The chain-wide conflict inbox (DESIGN.md sections 15 and 17): `GET /api/v1/conflicts
//! [?store=S][&kind=K][&open=true]` and `POST /api/v1/conflicts/{id}/resolve`.
//!
//! HQ holds every store's ops, so it lists every store's items with the ids the stores list.
//! A resolution is a `ConflictResolve` op authored by HQ for the item's store: HQ's routing
//! sends it down to that store, so resolved at HQ is resolved at the store. The body may name
//! who decided (`by`); the console passes its logged-in account.

use super::api::known_store;
use super::body::JsonBody;
use super::error::ApiError;
use super::HqState;
use crate::domain::conflict::{self, Conflict, ConflictKind};
use crate::domain::Payload;
use crate::terminal::conflicts::conflict_json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
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
    let action = action.trim();
    let mut payloads = vec![Payload::ConflictResolve {
        store: item.store.clone(),
        conflict: id.to_string(),
        action: action.to_string(),
        note: note.trim().to_string(),
        by: by.to_string(),
    }];
    payloads.extend(conflict::follow_up(&item.store, action));
    state.node.submit(payloads).await?;
    state
        .node
        .read(|r| conflict::find(r.state(), id))
        .ok_or_else(|| ApiError::internal(format!("conflict {id} vanished after resolving")))
}

/// `POST /api/v1/conflicts/{id}/resolve`.
#[derive(Debug, Deserialize)]
pub struct ResolveBody {
    pub action: String,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub by: Option<String>,
}

/// `POST /api/v1/conflicts/{id}/resolve` `{"action", "note"?, "by"?}`.
pub async fn resolve(
    State(state): State<HqState>,
    Path(id): Path<String>,
    body: JsonBody<ResolveBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let action = b.action;
    let note = b.note.unwrap_or_default();
    let by = b.by.unwrap_or_else(|| API_RESOLVER.to_string());
    let item = resolve_as(&state, &id, &action, &note, &by).await?;
    Ok(Json(conflict_json(&item)).into_response())
}

#[cfg(test)]
mod tests {
    use crate::domain::count::plan_count;
    use crate::domain::Sku;
    use crate::hq::tests::{fixture, madrid, send, SKU};
    use axum::http::{Method, StatusCode};
    use serde_json::json;

    #[tokio::test]
    async fn hq_lists_a_stores_items_filtered_and_its_resolution_names_who_and_why() {
        let mut f = fixture().await;
        // Madrid holds 7 of its 10 units (3 lent to HQ): an empty shelf is 3 units short.
        let count = plan_count(f.madrid.state(), &madrid(), &Sku::parse(SKU).unwrap(), 0);
        f.store_does(count).await;
        let s = &f.state;
        let (status, items) = send(
            s,
            Method::GET,
            "/api/v1/conflicts?store=madrid-centro",
            None,
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{items}");
        assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
        assert_eq!(items[0]["kind"], "shrinkage");
        assert_eq!(items[0]["store"], "madrid-centro");
        let id = items[0]["id"].as_str().unwrap().to_string();
        for (uri, code, error) in [
            (
                "/api/v1/conflicts?store=atlantis",
                StatusCode::NOT_FOUND,
                "unknown_store",
            ),
            (
                "/api/v1/conflicts?kind=gremlins",
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_kind",
            ),
        ] {
            let (status, body) = send(s, Method::GET, uri, None, &[]).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (code, Some(error)),
                "{uri}"
            );
        }
        let (_, none) = send(
            s,
            Method::GET,
            "/api/v1/conflicts?kind=stale_price",
            None,
            &[],
        )
        .await;
        assert_eq!(none, json!([]));
        let (_, other) = send(
            s,
            Method::GET,
            "/api/v1/conflicts?store=sevilla-nervion",
            None,
            &[],
        )
        .await;
        assert_eq!(other, json!([]));

        let uri = format!("/api/v1/conflicts/{id}/resolve");
        let (status, body) =
            send(s, Method::POST, &uri, Some(json!({"action": "shrug"})), &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_action"))
        );
        let (status, body) = send(
            s,
            Method::POST,
            "/api/v1/conflicts/count:nobody:1/resolve",
            Some(json!({"action": "accept_loss"})),
            &[],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_conflict"))
        );
        let (status, body) = send(
            s,
            Method::POST,
            &uri,
            Some(
                json!({"action": "accept_loss", "note": "jars broken in transit", "by": "ana@hq"}),
            ),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["resolved"], true);
        assert_eq!(body["resolution"]["by"], "ana@hq");
        assert_eq!(body["resolution"]["actor"], "hq");
        assert_eq!(body["resolution"]["note"], "jars broken in transit");
        let (_, open) = send(s, Method::GET, "/api/v1/conflicts?open=true", None, &[]).await;
        assert_eq!(open, json!([]));
    }
}
