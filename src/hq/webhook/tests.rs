use super::*;
use crate::domain::op::Advance;
use crate::domain::{OrderId, Payload, Sku};
use crate::hq::tests::{fixture, madrid, SKU};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;
use std::sync::Mutex;

#[derive(Default)]
struct Shop {
    calls: Mutex<Vec<Value>>,
    /// Each delivery's signature check, with the shop's secret and a five-minute tolerance.
    verified: Mutex<Vec<Result<u64, signature::SignatureError>>>,
    event_ids: Mutex<Vec<String>>,
}

const SECRET: &str = "whsec-test-0123456789";

async fn shop_server(shop: Arc<Shop>, fail_first: usize) -> String {
    let app = axum::Router::new().route(
        "/hook",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let shop = shop.clone();
                async move {
                    let header = headers
                        .get(signature::SIGNATURE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let now_s = crate::store::now_ms() / 1_000;
                    let check = signature::verify(SECRET.as_bytes(), header, &body, now_s, 300);
                    shop.verified.lock().unwrap().push(check);
                    let id = headers
                        .get(signature::EVENT_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    shop.event_ids.lock().unwrap().push(id);
                    let mut calls = shop.calls.lock().unwrap();
                    calls.push(serde_json::from_slice(&body).unwrap());
                    if calls.len() <= fail_first {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

fn settings(url: String) -> WebhookSettings {
    WebhookSettings {
        url,
        backoff_ms_min: 10,
        backoff_ms_max: 40,
        secret: SECRET.as_bytes().to_vec(),
        abandoned_cart_ms: None,
    }
}

async fn delivered(node: &Node) -> Vec<(String, i64, bool)> {
    node.query(|conn| {
        let mut stmt = conn.prepare(
            "SELECT dedup, attempts, delivered_ms IS NOT NULL FROM hq_webhook_events ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect()
    })
    .await
    .unwrap()
}

#[test]
fn backoff_doubles_from_the_minimum_and_stops_at_the_maximum() {
    let s = WebhookSettings {
        backoff_ms_min: 100,
        backoff_ms_max: 1_000,
        ..settings(String::new())
    };
    assert_eq!(
        (0..6).map(|a| s.backoff_ms(a)).collect::<Vec<_>>(),
        vec![100, 200, 400, 800, 1_000, 1_000]
    );
    assert_eq!(s.backoff_ms(u32::MAX), 1_000);
}

#[tokio::test]
async fn a_ready_order_is_posted_until_the_shop_accepts_it_and_then_never_again() {
    let mut f = fixture().await;
    let shop = Arc::new(Shop::default());
    let url = shop_server(shop.clone(), 2).await;
    let (stop, shutdown) = watch::channel(false);
    let worker = spawn(f.state.node.clone(), settings(url), shutdown);
    let placed = f
        .state
        .node
        .submit(vec![Payload::OrderPlace {
            order_id: OrderId::parse("O-WEBHOOK1").unwrap(),
            store: madrid(),
            customer: crate::domain::CustomerId::parse("C-1").unwrap(),
            lines: vec![crate::domain::op::OrderLine {
                sku: Sku::parse(SKU).unwrap(),
                qty: 1,
            }],
            pickup_code: "ABC234".into(),
            placed_at_ms: 1,
        }])
        .await
        .unwrap();
    assert_eq!(placed.ops.len(), 1);
    let id = OrderId::parse("O-WEBHOOK1").unwrap();
    f.store_does(vec![
        Payload::OrderAdvance {
            order_id: id.clone(),
            store: madrid(),
            to: Advance::Picking,
        },
        Payload::OrderPick {
            order_id: id.clone(),
            store: madrid(),
            sku: Sku::parse(SKU).unwrap(),
            picked: 1,
        },
        Payload::OrderAdvance {
            order_id: id.clone(),
            store: madrid(),
            to: Advance::Ready,
        },
    ])
    .await;

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = delivered(&f.state.node).await;
        if rows.iter().any(|r| r.2) {
            assert_eq!(rows, vec![("order.ready:O-WEBHOOK1".to_string(), 3, true)]);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calls = shop.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    let event = &calls[2];
    assert_eq!(event["type"], "order.ready");
    assert_eq!(event["order"], "O-WEBHOOK1");
    assert_eq!(event["store"], "madrid-centro");
    assert_eq!(event["status"], "ready");
    assert_eq!(event["pickup_code"], "ABC234");
    let id = event["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("evt_") && id.len() == 36, "{id}");
    // Every retry carries the same event id (header and body) and a valid signature.
    assert_eq!(calls[0], calls[2], "retries send the same body");
    assert_eq!(
        *shop.event_ids.lock().unwrap(),
        vec![id.clone(), id.clone(), id]
    );
    assert!(shop.verified.lock().unwrap().iter().all(Result::is_ok));
    // A restart's recovery scan finds the delivered row and queues nothing.
    assert_eq!(recover(&f.state.node, None).await.unwrap(), 0);
    assert_eq!(queue_depth(&f.state.node).await.unwrap(), 0);
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert_eq!(shop.calls.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn orders_that_became_ready_while_nobody_listened_are_queued_at_start() {
    let mut f = fixture().await;
    f.state
        .node
        .submit(vec![Payload::OrderPlace {
            order_id: OrderId::parse("O-LATE").unwrap(),
            store: madrid(),
            customer: crate::domain::CustomerId::parse("C-1").unwrap(),
            lines: vec![crate::domain::op::OrderLine {
                sku: Sku::parse(SKU).unwrap(),
                qty: 1,
            }],
            pickup_code: "XYZ234".into(),
            placed_at_ms: 1,
        }])
        .await
        .unwrap();
    let id = OrderId::parse("O-LATE").unwrap();
    f.store_does(vec![
        Payload::OrderPick {
            order_id: id.clone(),
            store: madrid(),
            sku: Sku::parse(SKU).unwrap(),
            picked: 1,
        },
        Payload::OrderAdvance {
            order_id: id,
            store: madrid(),
            to: Advance::Ready,
        },
    ])
    .await;
    assert_eq!(queue_depth(&f.state.node).await.unwrap(), 0);
    assert_eq!(recover(&f.state.node, None).await.unwrap(), 1);
    assert_eq!(recover(&f.state.node, None).await.unwrap(), 0);
    assert_eq!(queue_depth(&f.state.node).await.unwrap(), 1);
}

async fn queued(node: &Node) -> Vec<(String, Value)> {
    node.query(|conn| {
        let mut stmt = conn.prepare("SELECT dedup, body FROM hq_webhook_events ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    })
    .await
    .unwrap()
    .into_iter()
    .map(|(d, b)| (d, serde_json::from_str(&b).unwrap()))
    .collect()
}

fn place(id: &str) -> Payload {
    Payload::OrderPlace {
        order_id: OrderId::parse(id).unwrap(),
        store: madrid(),
        customer: crate::domain::CustomerId::parse("C-1").unwrap(),
        lines: vec![crate::domain::op::OrderLine {
            sku: Sku::parse(SKU).unwrap(),
            qty: 1,
        }],
        pickup_code: "ABC234".into(),
        placed_at_ms: 1,
    }
}

#[tokio::test]
async fn handover_and_cancellation_are_events_of_their_own_each_once() {
    let mut f = fixture().await;
    f.state
        .node
        .submit(vec![place("O-HANDED"), place("O-DROPPED")])
        .await
        .unwrap();
    let id = OrderId::parse("O-HANDED").unwrap();
    let step = |to| Payload::OrderAdvance {
        order_id: id.clone(),
        store: madrid(),
        to,
    };
    f.store_does(vec![
        Payload::OrderPick {
            order_id: id.clone(),
            store: madrid(),
            sku: Sku::parse(SKU).unwrap(),
            picked: 1,
        },
        step(Advance::Ready),
        step(Advance::HandedOver),
    ])
    .await;
    f.state
        .node
        .submit(vec![Payload::OrderCancel {
            order_id: OrderId::parse("O-DROPPED").unwrap(),
            store: madrid(),
            kind: crate::domain::op::CancelKind::Cancelled,
        }])
        .await
        .unwrap();
    assert_eq!(recover(&f.state.node, None).await.unwrap(), 3);
    assert_eq!(recover(&f.state.node, None).await.unwrap(), 0);
    let events = queued(&f.state.node).await;
    let kinds: std::collections::BTreeSet<(&str, &str)> = events
        .iter()
        .map(|(d, b)| (d.as_str(), b["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("order.cancelled:O-DROPPED", "order.cancelled"),
            ("order.handed_over:O-HANDED", "order.handed_over"),
            ("order.ready:O-HANDED", "order.ready"),
        ]
        .into_iter()
        .collect()
    );
    let cancelled = events
        .iter()
        .find(|(_, b)| b["type"] == "order.cancelled")
        .unwrap();
    assert_eq!(cancelled.1["reason"], "cancelled");
    assert_eq!(cancelled.1["order"], "O-DROPPED");
    let ids: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|(_, b)| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "every event has its own id");
}

#[tokio::test]
async fn an_abandoned_cart_is_announced_once_per_cart_change() {
    let f = fixture().await;
    let put = |qty: u32| {
        crate::hq::tests::send(
            &f.state,
            axum::http::Method::PUT,
            "/api/v1/carts/C-CART",
            Some(serde_json::json!({"lines": [{"sku": SKU, "qty": qty}]})),
            &[],
        )
    };
    assert_eq!(put(2).await.0, StatusCode::OK);
    // Idle for 0 ms counts as abandoned: the scan's rule without waiting.
    assert_eq!(recover(&f.state.node, Some(0)).await.unwrap(), 1);
    assert_eq!(
        recover(&f.state.node, Some(0)).await.unwrap(),
        0,
        "same cart, no new event"
    );
    assert_eq!(put(3).await.0, StatusCode::OK);
    assert_eq!(
        recover(&f.state.node, Some(0)).await.unwrap(),
        1,
        "the cart changed"
    );
    let events = queued(&f.state.node).await;
    let carts: Vec<&Value> = events
        .iter()
        .map(|(_, b)| b)
        .filter(|b| b["type"] == "cart.abandoned")
        .collect();
    assert_eq!(carts.len(), 2);
    assert_eq!(carts[1]["customer"], "C-CART");
    assert_eq!(
        carts[1]["lines"],
        serde_json::json!([{"sku": SKU, "qty": 3}])
    );
    assert_eq!(carts[1]["total_cents"], 3 * 99);
    assert_eq!(
        recover(&f.state.node, None).await.unwrap(),
        0,
        "off without the setting"
    );
}
