//! HQ's side of inventory in motion (DESIGN.md section 19): shipment notices from the ERP or
//! warehouse (`POST /api/v1/shipments`), and every shipment and transfer with what arrived,
//! so HQ sees discrepancies and units in transit.

use super::api::{parse_lines, LineBody};
use super::body::JsonBody;
use super::error::ApiError;
use super::HqState;
use crate::domain::motion::{MotionKind, Movement};
use crate::domain::op::OrderLine;
use crate::domain::{MotionId, Payload, StoreId};
use crate::terminal::motion::{movement_json, new_motion_id};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

type ApiResult = Result<Response, ApiError>;

/// `POST /api/v1/shipments`.
#[derive(Debug, Deserialize)]
pub struct ShipmentBody {
    pub store: String,
    #[serde(default)]
    pub reference: Option<String>,
    pub lines: Vec<LineBody>,
}

/// `POST /api/v1/shipments` `{"store", "reference"?, "lines": [{"sku", "qty"}]}`: 201 with the
/// shipment (`expected`); 404 `unknown_store`, 422 `unknown_sku` / `invalid_qty`.
pub async fn post_shipment(
    State(state): State<HqState>,
    body: JsonBody<ShipmentBody>,
) -> ApiResult {
    let b = body.value;
    let store = StoreId::parse(&b.store)
        .ok()
        .filter(|s| state.knows(s))
        .ok_or_else(|| ApiError::unknown_store(&b.store))?;
    let reference = b.reference.unwrap_or_default();
    let lines: Vec<OrderLine> = parse_lines(&state, &b.lines, false)?
        .into_iter()
        .map(|(sku, qty)| OrderLine { sku, qty })
        .collect();
    let id = new_motion_id("S");
    let payload = Payload::ShipmentNotice {
        shipment: id.clone(),
        store,
        reference,
        lines,
    };
    state.node.submit(vec![payload]).await?;
    let m = find(&state, MotionKind::Shipment, id.as_str())?;
    Ok((StatusCode::CREATED, Json(movement_json(&m))).into_response())
}

fn find(state: &HqState, kind: MotionKind, id: &str) -> Result<Movement, ApiError> {
    let (code, what) = match kind {
        MotionKind::Shipment => ("unknown_shipment", "shipment"),
        MotionKind::Transfer => ("unknown_transfer", "transfer"),
    };
    let missing = || ApiError::new(StatusCode::NOT_FOUND, code, format!("no {what} {id}"));
    let id = MotionId::parse(id).map_err(|_| missing())?;
    state
        .node
        .read(|r| {
            let s = r.state();
            match kind {
                MotionKind::Shipment => s.shipments.get(&id).cloned(),
                MotionKind::Transfer => s.transfers.get(&id).cloned(),
            }
        })
        .filter(|m| m.sent.is_some())
        .ok_or_else(missing)
}

fn list(state: &HqState, kind: MotionKind, q: &HashMap<String, String>) -> Vec<Value> {
    let store = q.get("store");
    let status = q.get("status");
    state.node.read(|r| {
        let s = r.state();
        let map = match kind {
            MotionKind::Shipment => &s.shipments,
            MotionKind::Transfer => &s.transfers,
        };
        map.values()
            .filter(|m| m.sent.is_some())
            .filter(|m| status.is_none_or(|st| m.status() == st))
            .filter(|m| {
                store.is_none_or(|st| {
                    m.to().is_some_and(|t| t.as_str() == st)
                        || m.sent
                            .as_ref()
                            .and_then(|x| x.from.as_ref())
                            .is_some_and(|f| f.as_str() == st)
                })
            })
            .map(movement_json)
            .collect()
    })
}

/// `GET /api/v1/shipments/{id}`.
pub async fn get_shipment(State(state): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let m = find(&state, MotionKind::Shipment, &id)?;
    Ok(Json(movement_json(&m)).into_response())
}

/// `GET /api/v1/shipments[?store=S][&status=expected|received]`.
pub async fn list_shipments(
    State(state): State<HqState>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    Json(Value::Array(list(&state, MotionKind::Shipment, &q)))
}

/// `GET /api/v1/transfers/{id}`.
pub async fn get_transfer(State(state): State<HqState>, Path(id): Path<String>) -> ApiResult {
    let m = find(&state, MotionKind::Transfer, &id)?;
    Ok(Json(movement_json(&m)).into_response())
}

/// `GET /api/v1/transfers[?store=S][&status=in_transit|received]`: units in transit at HQ.
pub async fn list_transfers(
    State(state): State<HqState>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    Json(Value::Array(list(&state, MotionKind::Transfer, &q)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, madrid, send, SKU};
    use crate::domain::op::{OrderLine, ReceiptLine};
    use crate::domain::{MotionId, Payload, Sku, StoreId};
    use axum::http::{Method, StatusCode};
    use serde_json::json;

    #[tokio::test]
    async fn a_notice_reaches_hq_state_and_bad_notices_change_nothing() {
        let mut f = fixture().await;
        let refusals = [
            (
                json!({"store": "bilbao", "lines": [{"sku": SKU, "qty": 1}]}),
                404,
                "unknown_store",
            ),
            (
                json!({"store": "madrid-centro", "lines": [{"sku": "SKU-NOPE", "qty": 1}]}),
                422,
                "unknown_sku",
            ),
            (
                json!({"store": "madrid-centro", "lines": [{"sku": SKU, "qty": 0}]}),
                422,
                "invalid_qty",
            ),
            (
                json!({"store": "madrid-centro", "lines": [{"sku": SKU, "qty": -2}]}),
                422,
                "invalid_qty",
            ),
            (
                json!({"store": "madrid-centro", "lines": []}),
                422,
                "invalid_lines",
            ),
        ];
        for (body, code, error) in refusals {
            let (status, answer) = send(
                &f.state,
                Method::POST,
                "/api/v1/shipments",
                Some(body.clone()),
                &[],
            )
            .await;
            assert_eq!(
                (status.as_u16(), answer["error"].as_str()),
                (code, Some(error)),
                "{body}"
            );
        }
        assert!(f.state.node.read(|r| r.state().shipments.is_empty()));

        let body = json!({"store": "madrid-centro", "reference": "ASN-9", "lines": [{"sku": SKU, "qty": 5}]});
        let (status, shipment) =
            send(&f.state, Method::POST, "/api/v1/shipments", Some(body), &[]).await;
        assert_eq!(status, StatusCode::CREATED, "{shipment}");
        assert_eq!(shipment["status"], "expected");
        assert_eq!(shipment["store"], "madrid-centro");
        assert_eq!(shipment["lines"][0]["qty"], 5);
        let id = shipment["id"].as_str().unwrap().to_string();
        let (status, _) = send(&f.state, Method::GET, "/api/v1/shipments/S-NONE", None, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // The store receives 5, one damaged; then sends 2 to sevilla.
        f.store_does(vec![Payload::ShipmentReceive {
            shipment: MotionId::parse(&id).unwrap(),
            store: madrid(),
            lines: vec![ReceiptLine {
                sku: Sku::parse(SKU).unwrap(),
                received: 5,
                damaged: 1,
            }],
            over_delivery: false,
        }])
        .await;
        let (_, received) = send(
            &f.state,
            Method::GET,
            &format!("/api/v1/shipments/{id}"),
            None,
            &[],
        )
        .await;
        assert_eq!(received["status"], "received");
        assert_eq!(received["lines"][0]["damaged"], 1);
        let sevilla = StoreId::parse("sevilla-nervion").unwrap();
        f.store_does(vec![Payload::TransferDispatch {
            transfer: MotionId::parse("T-1").unwrap(),
            store: madrid(),
            to: sevilla,
            lines: vec![OrderLine {
                sku: Sku::parse(SKU).unwrap(),
                qty: 2,
            }],
        }])
        .await;
        let (_, avail) = send(
            &f.state,
            Method::GET,
            &format!("/api/v1/availability?sku={SKU}"),
            None,
            &[],
        )
        .await;
        assert_eq!(avail["stores"][0]["available"], 12);
        assert_eq!(avail["stores"][1]["in_transit"], 2);
        let (_, moving) = send(
            &f.state,
            Method::GET,
            "/api/v1/transfers?status=in_transit",
            None,
            &[],
        )
        .await;
        assert_eq!(moving[0]["id"], "T-1");
        assert_eq!(moving[0]["to"], "sevilla-nervion");
    }

    #[tokio::test]
    async fn an_order_for_a_store_without_stock_ships_from_another_and_tells_the_later_date() {
        let f = fixture().await;
        let body = json!({
            "store": "sevilla-nervion",
            "customer": {"id": "C-0002"},
            "lines": [{"sku": SKU, "qty": 2}],
        });
        let post = |key: &'static str, body: serde_json::Value| {
            let state = f.state.clone();
            async move {
                send(
                    &state,
                    Method::POST,
                    "/api/v1/orders",
                    Some(body),
                    &[("idempotency-key", key)],
                )
                .await
            }
        };
        let (status, placed) = post("k-ship", body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{placed}");
        assert_eq!(placed["status"], "placed");
        assert_eq!(placed["fulfilment"], "ship_to_store");
        assert_eq!(placed["ship_from"], "madrid-centro");
        let ready_by = placed["ready_by_ms"].as_u64().unwrap();
        assert!(
            ready_by >= crate::store::now_ms() + 24 * 3_600_000,
            "{placed}"
        );
        assert_eq!(placed["ready_by"].as_str().unwrap().len(), 10, "{placed}");
        // The same key answers the same, shipped order.
        assert_eq!(post("k-ship", body).await.1, placed);

        let id = placed["id"].as_str().unwrap();
        let (_, order) = send(
            &f.state,
            Method::GET,
            &format!("/api/v1/orders/{id}"),
            None,
            &[],
        )
        .await;
        assert_eq!(order["awaiting_transfer"], true);
        assert_eq!(order["lines"][0]["arrived"], 0);
        assert_eq!(order["ready_by_ms"], ready_by);
        let (_, avail) = send(
            &f.state,
            Method::GET,
            &format!("/api/v1/availability?sku={SKU}"),
            None,
            &[],
        )
        .await;
        assert_eq!(
            avail["stores"][0]["hq_can_sell"], 1,
            "spent at madrid: {avail}"
        );
        assert_eq!(avail["stores"][0]["available"], 8);
        assert_eq!(
            avail["stores"][1]["in_transit"], 0,
            "on madrid's shelf until it dispatches: {avail}"
        );
        let transfer = placed["transfer"].as_str().unwrap();
        let (_, moving) = send(
            &f.state,
            Method::GET,
            &format!("/api/v1/transfers/{transfer}"),
            None,
            &[],
        )
        .await;
        assert_eq!(moving["from"], "madrid-centro");
        assert_eq!(moving["to"], "sevilla-nervion");
        assert_eq!(moving["order"], id);
        assert_eq!(moving["status"], "awaiting_dispatch");

        // More than any store can ship: the pickup store's shortage, nothing placed.
        let big = json!({
            "store": "sevilla-nervion",
            "customer": {"id": "C-0002"},
            "lines": [{"sku": SKU, "qty": 2}],
        });
        let (status, refused) = post("k-big", big).await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["error"], "insufficient_stock");
        assert_eq!(refused["available"], 0);
        assert_eq!(f.state.node.read(|r| r.state().orders.len()), 1);

        // The shop hears the later date through the webhook too.
        crate::hq::webhook::recover(&f.state.node, None)
            .await
            .unwrap();
        let event: String = f
            .state
            .node
            .query(|c| {
                c.query_row(
                    "SELECT body FROM hq_webhook_events WHERE type = 'order.ship_to_store'",
                    [],
                    |r| r.get(0),
                )
            })
            .await
            .unwrap();
        let event: serde_json::Value = serde_json::from_str(&event).unwrap();
        assert_eq!(event["ready_by_ms"], ready_by);
        assert_eq!(event["ship_from"], "madrid-centro");
    }
}
