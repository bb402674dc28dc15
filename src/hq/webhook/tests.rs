use super::*;
use crate::domain::op::Advance;
use crate::domain::{OrderId, Payload, Sku};
use crate::hq::tests::{fixture, madrid, SKU};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use serde_json::Value;
use std::sync::Mutex;

#[derive(Default)]
struct Shop {
    calls: Mutex<Vec<Value>>,
}

async fn shop_server(shop: Arc<Shop>, fail_first: usize) -> String {
    let app = axum::Router::new().route(
        "/hook",
        post(move |Json(body): Json<Value>| {
            let shop = shop.clone();
            async move {
                let mut calls = shop.calls.lock().unwrap();
                calls.push(body);
                if calls.len() <= fail_first {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

async fn delivered(node: &Node) -> Vec<(String, i64, bool)> {
    node.query(|conn| {
        let mut stmt = conn
            .prepare("SELECT order_id, attempts, delivered_ms IS NOT NULL FROM hq_webhook_jobs")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect()
    })
    .await
    .unwrap()
}

#[test]
fn backoff_doubles_from_the_minimum_and_stops_at_the_maximum() {
    let s = WebhookSettings {
        url: String::new(),
        backoff_ms_min: 100,
        backoff_ms_max: 1_000,
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
    let worker = spawn(
        f.state.node.clone(),
        WebhookSettings {
            url,
            backoff_ms_min: 10,
            backoff_ms_max: 40,
        },
        shutdown,
    );
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
            assert_eq!(rows, vec![("O-WEBHOOK1".to_string(), 3, true)]);
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
    assert_eq!(
        calls[2],
        serde_json::json!({"order": "O-WEBHOOK1", "store": "madrid-centro", "status": "ready", "pickup_code": "ABC234"})
    );
    // A restart's recovery scan finds the delivered row and queues nothing.
    assert_eq!(recover(&f.state.node).await.unwrap(), 0);
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
    assert_eq!(recover(&f.state.node).await.unwrap(), 1);
    assert_eq!(recover(&f.state.node).await.unwrap(), 0);
    assert_eq!(queue_depth(&f.state.node).await.unwrap(), 1);
}
