//! Erasure of a customer (DESIGN.md section 14): `DELETE /customers/{id}` tombstones the
//! profile at HQ and follows the erasure store by store; `GET .../erasure` reports which
//! stores have confirmed.

use super::{holders, known, parse_customer, unknown_customer, ApiResult};
use crate::domain::Payload;
use crate::hq::error::ApiError;
use crate::hq::HqState;
use crate::store::now_ms;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use rusqlite::{params, OptionalExtension};
use serde_json::json;

/// `DELETE /customers/{id}`: erase everywhere. 202: the stores apply it as they sync; follow
/// it with `GET /customers/{id}/erasure`. Asking again answers the same.
pub async fn delete_customer(State(hq): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_customer(&id)?;
    let (known, gone) = hq
        .node
        .read(|r| (known(r.state(), &id), r.state().customer_erased(&id)));
    if !known {
        return Err(unknown_customer(&id));
    }
    if !gone {
        let key = id.to_string();
        hq.node
            .submit_with(
                vec![Payload::CustomerErase {
                    customer: id.clone(),
                }],
                move |tx, ops| {
                    let Some(op) = ops.first() else { return Ok(0) };
                    tx.execute(
                        "INSERT OR IGNORE INTO hq_erasures (customer, actor, seq, requested_ms)
                         VALUES (?1, ?2, ?3, ?4)",
                        params![key, op.actor.as_str(), op.seq as i64, now_ms() as i64],
                    )
                },
            )
            .await?;
        tracing::info!(customer = %id, "customer erased at hq");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "complete": false})),
    )
        .into_response())
}

/// `GET /customers/{id}/erasure`: per store holding the customer, whether it applied the
/// erasure (its ack covers the erasure's place in its down-log).
pub async fn get_erasure(State(hq): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let id = parse_customer(&id)?;
    let key = id.to_string();
    let erase_op: Option<(String, i64)> = hq
        .node
        .query(move |conn| {
            conn.query_row(
                "SELECT actor, seq FROM hq_erasures WHERE customer = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .await
        .map_err(ApiError::internal)?;
    let Some((actor, seq)) = erase_op else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_erasure",
            format!("no erasure was requested for customer {id}"),
        )
        .with("id", id.as_str()));
    };
    let stores = holders(&hq, &id).await?;
    let mut rows = Vec::new();
    for store in stores {
        let (name, actor) = (store.to_string(), actor.clone());
        let idx: Option<i64> = hq
            .node
            .query(move |conn| {
                conn.query_row(
                    "SELECT idx FROM downlog WHERE store = ?1 AND actor = ?2 AND seq = ?3",
                    params![name, actor, seq],
                    |r| r.get(0),
                )
                .optional()
            })
            .await
            .map_err(ApiError::internal)?;
        let acked = hq.sync.down_acked(&store);
        let done = matches!((idx, acked), (Some(i), Some(a)) if a >= i.max(0) as u64);
        rows.push(json!({"store": store, "erased": done}));
    }
    let complete = rows.iter().all(|r| r["erased"] == json!(true));
    Ok(Json(json!({"id": id, "complete": complete, "stores": rows})).into_response())
}
