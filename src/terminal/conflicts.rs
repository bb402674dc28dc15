//! The store's conflict inbox (DESIGN.md sections 15 and 17): `GET /api/v1/conflicts` and
//! `POST /api/v1/conflicts/{id}/resolve`, managers only.
//!
//! Items are derived from the replica (`domain::conflict`), so the store lists exactly what HQ
//! lists for it; resolving submits a `ConflictResolve` op naming the manager, answered after
//! its commit and replicated to HQ like any other op. `conflict_json` is the shape both the
//! terminal and HQ answer with.

use super::auth::Session;
use super::body::{FieldCodes, Typed};
use super::error::ApiError;
use super::TerminalState;
use crate::domain::conflict::{self, Conflict};
use crate::domain::Payload;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// One inbox item as the API shows it (store and HQ alike).
pub fn conflict_json(c: &Conflict) -> Value {
    json!({
        "id": c.id,
        "kind": c.kind.as_str(),
        "store": c.store.as_str(),
        "summary": c.summary_en(),
        "summary_es": c.summary_es(),
        "at": c.at.wall_ms(),
        "facts": c.facts,
        "actions": c.actions,
        "resolved": c.resolution.is_some(),
        "resolution": c.resolution.as_ref().map(|r| json!({
            "action": r.action,
            "note": r.note,
            "by": r.by,
            "actor": r.actor.as_str(),
            "at": r.at.wall_ms(),
        })),
    })
}

/// `POST /api/v1/conflicts/{id}/resolve`.
#[derive(Debug, Deserialize)]
pub struct ResolveBody {
    pub action: String,
    #[serde(default)]
    pub note: Option<String>,
}

impl FieldCodes for ResolveBody {
    fn code(field: &str) -> &'static str {
        match field {
            "action" => "invalid_action",
            "note" => "invalid_note",
            _ => "invalid_field",
        }
    }
}

/// The action (trimmed, not empty) and note of a resolve call.
pub fn resolve_fields(body: ResolveBody) -> Result<(String, String), ApiError> {
    let action = body.action.trim().to_string();
    if action.is_empty() {
        return Err(
            ApiError::unprocessable("invalid_action", "action must be a non-empty string")
                .with("field", "action"),
        );
    }
    let note = body.note.unwrap_or_default().trim().to_string();
    Ok((action, note))
}

/// `GET /api/v1/conflicts` (manager): this store's items, oldest first.
pub async fn list(
    State(state): State<TerminalState>,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    session.require_manager("the conflict inbox")?;
    let store = state.store().clone();
    let items = state.read(|r| conflict::conflicts(r.state(), Some(&store)));
    Ok(Json(Value::Array(
        items.iter().map(conflict_json).collect(),
    )))
}

/// `POST /api/v1/conflicts/{id}/resolve` `{"action", "note"?}` (manager).
pub async fn resolve(
    State(state): State<TerminalState>,
    session: Session,
    Path(id): Path<String>,
    body: Result<Typed<ResolveBody>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    session.require_manager("resolving a conflict")?;
    let (action, note) = resolve_fields(body?.0)?;
    let store = state.store().clone();
    let found = state.read(|r| conflict::find(r.state(), &id));
    match found {
        Some(c) if c.store == store => {}
        _ => {
            return Err(
                ApiError::not_found("unknown_conflict", format!("no conflict {id} here"))
                    .with("id", id.as_str()),
            )
        }
    }
    let follow_up = conflict::follow_up(&store, &action);
    let mut payloads = vec![Payload::ConflictResolve {
        store,
        conflict: id.clone(),
        action,
        note,
        by: session.staff.clone(),
    }];
    payloads.extend(follow_up);
    let _guard = state.order_steps().lock().await;
    state.node().submit(payloads).await?;
    let item = state
        .read(|r| conflict::find(r.state(), &id))
        .ok_or_else(|| ApiError::not_found("unknown_conflict", format!("no conflict {id}")))?;
    Ok(Json(conflict_json(&item)))
}

/// How many of the store's items are open: the count in the page's navigation.
pub fn open_count(state: &TerminalState) -> usize {
    let store = state.store().clone();
    state.read(|r| {
        conflict::conflicts(r.state(), Some(&store))
            .iter()
            .filter(|c| c.resolution.is_none())
            .count()
    })
}
