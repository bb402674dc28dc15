//! The terminal with the store's uplink cut: an order is handed over and a sale made at the
//! till through the API while HQ takes another pickup order for the store; when the link
//! returns both sides hold the same state (equal digests on `/status` and at HQ).

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storenode::domain::op::{OrderLine, ReceiveReason};
use storenode::domain::{ActorId, CustomerId, Ean13, OrderId, Payload, Sku, StoreId};
use storenode::store::Node;
use storenode::sync::{
    spawn_hq_sync, spawn_store_sync, start_embedded_broker, HqSyncConfig, StoreSyncConfig,
};
use storenode::terminal::print::MemoryPrintSink;
use storenode::terminal::{app, Role, TerminalConfig, TerminalState};
use tokio::sync::watch;
use tower::ServiceExt;

const CHAIN: &str = "acme";

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn call(
    state: &TerminalState,
    method: Method,
    uri: &str,
    body: Option<Value>,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        cookie,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn place(order: &str, code: &str, store: &StoreId) -> Payload {
    Payload::OrderPlace {
        order_id: OrderId::parse(order).unwrap(),
        store: store.clone(),
        customer: CustomerId::parse("C-1").unwrap(),
        lines: vec![OrderLine {
            sku: Sku::parse("SKU-1").unwrap(),
            qty: 1,
        }],
        pickup_code: code.into(),
        placed_at_ms: storenode::store::now_ms(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_link_cut_the_counter_hands_over_and_sells_and_both_sides_converge_after() {
    let port = start_embedded_broker("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let store = StoreId::parse("madrid-centro").unwrap();
    let sku = Sku::parse("SKU-1").unwrap();
    let hq = Node::open(&dir.path().join("hq.db"), ActorId::hq()).unwrap();
    let node = Node::open(&dir.path().join("store.db"), store.actor()).unwrap();
    let (shutdown, rx) = watch::channel(false);
    let mut hq_cfg = HqSyncConfig::new(CHAIN, vec![store.clone()], "127.0.0.1", port);
    hq_cfg.retransmit_ms = 500;
    let _hq_sync = spawn_hq_sync(hq.clone(), hq_cfg, rx.clone());
    let mut store_cfg = StoreSyncConfig::new(CHAIN, store.clone(), "127.0.0.1", port);
    store_cfg.retransmit_ms = 500;
    let sync = spawn_store_sync(node.clone(), store_cfg, rx);

    hq.submit(vec![Payload::CatalogPut {
        sku: sku.clone(),
        ean: Ean13::parse("4006381333931").unwrap(),
        name: "Té verde 20 bolsitas".into(),
        price_cents: 250,
        vat_bp: 1000,
    }])
    .await
    .unwrap();
    let n = node.clone();
    wait_for("the catalog reaches the store", || {
        n.read(|r| r.state().catalog.contains(&Sku::parse("SKU-1").unwrap()))
    })
    .await;
    node.submit(vec![Payload::StockReceive {
        store: store.clone(),
        sku: sku.clone(),
        qty: 10,
        reason: ReceiveReason::Delivery,
    }])
    .await
    .unwrap();
    let (h, s) = (hq.clone(), store.clone());
    wait_for("HQ holds an allocation", || {
        h.read(|r| {
            r.state()
                .rights(&s, &Sku::parse("SKU-1").unwrap(), &ActorId::hq())
        }) >= 2
    })
    .await;
    hq.submit(vec![place("O-1", "ABC234", &store)])
        .await
        .unwrap();
    let n = node.clone();
    wait_for("the order reaches the store", || {
        n.read(|r| {
            r.state()
                .orders
                .contains_key(&OrderId::parse("O-1").unwrap())
        })
    })
    .await;

    let state = TerminalState::new(
        node.clone(),
        Arc::new(sync.clone()),
        Arc::new(MemoryPrintSink::default()),
        no_drawer(TerminalConfig::new(store.clone())),
    );
    state
        .upsert_staff("1001", "Ana García", Role::Associate, "1234")
        .await
        .unwrap();
    let (status, cookie, _) = call(
        &state,
        Method::POST,
        "/api/v1/session",
        Some(json!({"staff": "1001", "pin": "1234"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let cookie = cookie.unwrap();
    let c = Some(cookie.as_str());
    let (status, _, body) = call(
        &state,
        Method::POST,
        "/api/v1/pickups/O-1/pick",
        Some(json!({"scan": "4006381333931"})),
        c,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = call(&state, Method::POST, "/api/v1/pickups/O-1/ready", None, c).await;
    assert_eq!(status, StatusCode::OK);

    sync.set_link(false);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, _, s) = call(&state, Method::GET, "/api/v1/status", None, c).await;
        if s["online"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the terminal never showed the link down: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _, order) = call(
        &state,
        Method::POST,
        "/api/v1/pickups/O-1/handover",
        Some(json!({"code": "ABC234"})),
        c,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    let (status, _, sale) = call(
        &state,
        Method::POST,
        "/api/v1/sales",
        Some(json!({"lines": [{"sku": "SKU-1", "qty": 2}], "tender": "cash"})),
        c,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    hq.submit(vec![place("O-2", "XYZ789", &store)])
        .await
        .unwrap();
    let (_, _, offline) = call(&state, Method::GET, "/api/v1/status", None, c).await;
    assert_eq!(offline["online"], false);
    assert!(offline["outbox"].as_u64().unwrap() > 0, "{offline}");
    assert_ne!(
        offline["digest"],
        json!(hq.read(|r| r.digest_for_store(&store).short()))
    );

    sync.set_link(true);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, s) = call(&state, Method::GET, "/api/v1/status", None, c).await;
        let at_hq = hq.read(|r| r.digest_for_store(&store).short());
        if s["online"] == true && s["digest"] == json!(at_hq) && s["outbox"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence: store {s}, hq {at_hq}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, _, placed) = call(
        &state,
        Method::GET,
        "/api/v1/pickups?status=placed",
        None,
        c,
    )
    .await;
    assert_eq!(
        placed[0]["id"], "O-2",
        "HQ's offline order is in the store's queue: {placed}"
    );
    let handed = hq.read(|r| {
        r.state().orders[&OrderId::parse("O-1").unwrap()]
            .status
            .as_str()
    });
    assert_eq!(handed, "handed_over");
    let sale_id = sale["id"].as_str().unwrap().to_string();
    assert!(hq.read(|r| r.state().sales.keys().any(|k| k.as_str() == sale_id)));
    shutdown.send_replace(true);
}

/// A till that sells cash without a drawer session (`[till] cash_session_required = false`):
/// this test is not about the drawer.
fn no_drawer(mut config: TerminalConfig) -> TerminalConfig {
    config.till.cash_session_required = false;
    config
}
