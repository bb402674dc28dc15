//! Handler tests: `app(state)` driven with `oneshot`, no server, one SQLite file per test.
//!
//! Over 500 lines on purpose: it is a flat list of independent request/response cases plus the
//! `fixture` and `send` helpers other HQ test modules import; splitting it would only scatter them.

use super::*;
use crate::domain::op::{Advance, ReceiveReason};
use crate::domain::{ActorId, Ean13, Payload, Replica, Sku};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "test-token-123";
pub(crate) const SKU: &str = "SKU-000001";
pub(crate) const EAN: &str = "8410234782535";

pub(crate) struct Fixture {
    pub _dir: tempfile::TempDir,
    pub state: HqState,
    pub madrid: Replica,
}

pub(crate) fn madrid() -> StoreId {
    StoreId::parse("madrid-centro").unwrap()
}

pub(crate) fn settings() -> HqSettings {
    HqSettings {
        tokens: vec![TOKEN.to_string()],
        stores: vec![madrid(), StoreId::parse("sevilla-nervion").unwrap()],
        qr_key: vec![7; 32],
        webhook_url: None,
        webhook_backoff_ms_max: 1_000,
        webhook_secret: Some("whsec-test-0123456789".into()),
        abandoned_cart_hours: None,
        contact_policy: crate::domain::contact::ContactPolicy {
            max_per_week: 2,
            quiet_hours: None,
        },
        rate_limit: super::API_RATE_DEFAULT,
        unauthenticated_rate_limit: super::UNAUTHENTICATED_RATE_DEFAULT,
        console: Default::default(),
    }
}

/// HQ with one product, madrid-centro holding 10 units of it, 3 of them lent to HQ.
pub(crate) async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(&dir.path().join("hq.db"), ActorId::hq()).unwrap();
    let catalog = node
        .submit(vec![Payload::CatalogPut {
            sku: Sku::parse(SKU).unwrap(),
            ean: Ean13::parse(EAN).unwrap(),
            name: "Leche entera 1 L".into(),
            price_cents: 99,
            vat_bp: 400,
        }])
        .await
        .unwrap();
    let mut store = Replica::new(madrid().actor());
    for op in &catalog.ops {
        store.apply(op).unwrap();
    }
    let mut ops = Vec::new();
    for p in [
        Payload::StockReceive {
            store: madrid(),
            sku: Sku::parse(SKU).unwrap(),
            qty: 10,
            reason: ReceiveReason::Delivery,
        },
        Payload::StockTransfer {
            store: madrid(),
            sku: Sku::parse(SKU).unwrap(),
            to: ActorId::hq(),
            qty: 3,
        },
    ] {
        ops.push(store.prepare(1_000, p).unwrap().0);
    }
    node.ingest(ops).await.unwrap();
    let state = HqState::new(node, settings(), Arc::new(NoSync));
    Fixture {
        _dir: dir,
        state,
        madrid: store,
    }
}

impl Fixture {
    /// Feed HQ's ops to the store replica and the store's new ops back to HQ.
    pub(crate) async fn store_does(&mut self, payloads: Vec<Payload>) {
        let hq_ops = self
            .state
            .node
            .query(|conn| Node::ops_since(conn, &ActorId::hq(), 0, 10_000));
        for op in hq_ops.await.unwrap() {
            self.madrid.apply(&op).unwrap();
        }
        let mut ops = Vec::new();
        for p in payloads {
            ops.push(self.madrid.prepare(crate::store::now_ms(), p).unwrap().0);
        }
        let ingested = self.state.node.ingest(ops).await.unwrap();
        assert!(ingested.rejected.is_empty(), "{:?}", ingested.rejected);
    }
}

pub(crate) async fn send(
    state: &HqState,
    method: Method,
    uri: &str,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    raw(state, req.body(body).unwrap()).await
}

async fn raw(state: &HqState, req: Request<Body>) -> (StatusCode, Value) {
    let response = app(state.clone()).oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

fn order_body(qty: u32) -> Value {
    json!({
        "store": "madrid-centro",
        "customer": {"id": "C-0001", "name": "Sofía Domínguez", "email": "sofia@example.com", "phone": "+34619892561"},
        "lines": [{"sku": SKU, "qty": qty}],
    })
}

async fn place(state: &HqState, key: &str, body: Value) -> (StatusCode, Value) {
    send(
        state,
        Method::POST,
        "/api/v1/orders",
        Some(body),
        &[("idempotency-key", key)],
    )
    .await
}

#[tokio::test]
async fn api_calls_without_the_right_bearer_token_get_401_unauthorized() {
    let f = fixture().await;
    let req = Request::get("/api/v1/stores").body(Body::empty()).unwrap();
    let (status, body) = raw(&f.state, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    let req = Request::get("/api/v1/stores")
        .header("authorization", "Bearer wrong-token-123")
        .body(Body::empty())
        .unwrap();
    assert_eq!(raw(&f.state, req).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn healthz_and_metrics_answer_without_a_token() {
    let f = fixture().await;
    let (status, body) = raw(
        &f.state,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let _ = raw(
        &f.state,
        Request::get("/api/v1/stores").body(Body::empty()).unwrap(),
    )
    .await;
    let (status, text) = raw(
        &f.state,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.contains("storenode_ops_applied{role=\"hq\"} 3"),
        "{text}"
    );
    assert!(text.contains("storenode_webhook_queue 0"), "{text}");
    assert!(
        text.contains("storenode_http_errors_total{code=\"unauthorized\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn catalog_put_stores_the_product_and_answers_it() {
    let f = fixture().await;
    let body =
        json!({"name": "Pan de pueblo", "ean": "8410234848118", "price_cents": 250, "vat_bp": 400});
    let (status, answer) = send(
        &f.state,
        Method::PUT,
        "/api/v1/catalog/SKU-NEW",
        Some(body),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["sku"], "SKU-NEW");
    assert_eq!(answer["price_cents"], 250);
    let price = f.state.node.read(|r| {
        r.state()
            .catalog
            .get(&Sku::parse("SKU-NEW").unwrap())
            .map(|p| p.price_cents)
    });
    assert_eq!(price, Some(250));
}

#[tokio::test]
async fn catalog_put_with_bad_fields_names_each_field_and_changes_nothing() {
    let f = fixture().await;
    let before = f.state.node.read(|r| r.digest());
    let cases = [
        (
            json!({"name": "X", "ean": "8410234848119", "price_cents": 1, "vat_bp": 400}),
            "invalid_ean",
        ),
        (
            json!({"name": "X", "ean": "8410234848118", "price_cents": -5, "vat_bp": 400}),
            "invalid_price",
        ),
        (
            json!({"name": "X", "ean": "8410234848118", "price_cents": "1", "vat_bp": 400}),
            "invalid_price",
        ),
        (
            json!({"name": "X", "ean": "8410234848118", "price_cents": 1, "vat_bp": 20000}),
            "invalid_vat_bp",
        ),
        (
            json!({"name": "", "ean": "8410234848118", "price_cents": 1, "vat_bp": 400}),
            "invalid_name",
        ),
        (
            json!({"ean": "8410234848118", "price_cents": 1, "vat_bp": 400}),
            "invalid_name",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = send(
            &f.state,
            Method::PUT,
            "/api/v1/catalog/SKU-X",
            Some(body),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"], code, "{answer}");
        assert!(answer["message"].as_str().is_some());
    }
    let (status, answer) = send(
        &f.state,
        Method::PUT,
        "/api/v1/catalog/bad%20sku",
        Some(json!({})),
        &[],
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_sku"))
    );
    assert_eq!(f.state.node.read(|r| r.digest()), before);
}

#[tokio::test]
async fn malformed_json_gets_400_invalid_json() {
    let f = fixture().await;
    let req = Request::put("/api/v1/catalog/SKU-X")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    let (status, body) = raw(&f.state, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_json");
}

#[tokio::test]
async fn bodies_over_one_mebibyte_get_413_payload_too_large() {
    let f = fixture().await;
    let big = format!("{{\"name\": \"{}\"}}", "a".repeat(BODY_BYTES_MAX + 10));
    let req = Request::post("/api/v1/orders")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("idempotency-key", "k-big")
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    let (status, body) = raw(&f.state, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "payload_too_large");
}

#[tokio::test]
async fn availability_shows_the_total_and_what_hq_can_sell_per_store() {
    let f = fixture().await;
    let (status, body) = send(
        &f.state,
        Method::GET,
        &format!("/api/v1/availability?sku={SKU}"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sku"], SKU);
    let stores = body["stores"].as_array().unwrap();
    assert_eq!(stores.len(), 2);
    assert_eq!(
        stores[0],
        json!({"store": "madrid-centro", "available": 10, "hq_can_sell": 3, "online": false,
               "in_transit": 0})
    );
    assert_eq!(stores[1]["available"], 0);
    let (_, one) = send(
        &f.state,
        Method::GET,
        &format!("/api/v1/availability?sku={SKU}&store=madrid-centro"),
        None,
        &[],
    )
    .await;
    assert_eq!(one["stores"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn availability_of_an_unknown_sku_or_store_is_404() {
    let f = fixture().await;
    let (status, body) = send(
        &f.state,
        Method::GET,
        "/api/v1/availability?sku=SKU-NOPE",
        None,
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_sku"))
    );
    let uri = format!("/api/v1/availability?sku={SKU}&store=valencia");
    let (status, body) = send(&f.state, Method::GET, &uri, None, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_store"))
    );
}

#[tokio::test]
async fn a_cart_put_is_read_back_and_lines_left_out_are_removed() {
    let f = fixture().await;
    let (status, empty) = send(&f.state, Method::GET, "/api/v1/carts/C-0009", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["lines"], json!([]));
    let put = json!({"lines": [{"sku": SKU, "qty": 2}]});
    let (status, cart) = send(
        &f.state,
        Method::PUT,
        "/api/v1/carts/C-0009",
        Some(put),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["customer"], "C-0009");
    assert_eq!(cart["lines"], json!([{"sku": SKU, "qty": 2}]));
    assert!(cart["updated_at"].as_u64().is_some());
    let (_, cart) = send(
        &f.state,
        Method::PUT,
        "/api/v1/carts/C-0009",
        Some(json!({"lines": []})),
        &[],
    )
    .await;
    assert_eq!(cart["lines"], json!([]));
    let (_, got) = send(&f.state, Method::GET, "/api/v1/carts/C-0009", None, &[]).await;
    assert_eq!(got["lines"], json!([]));
}

#[tokio::test]
async fn a_cart_with_an_unknown_sku_or_bad_qty_is_refused() {
    let f = fixture().await;
    let put = json!({"lines": [{"sku": "SKU-NOPE", "qty": 1}]});
    let (status, body) = send(&f.state, Method::PUT, "/api/v1/carts/C-1", Some(put), &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_sku"))
    );
    let put = json!({"lines": [{"sku": SKU, "qty": -1}]});
    let (status, body) = send(&f.state, Method::PUT, "/api/v1/carts/C-1", Some(put), &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_qty"))
    );
}

#[tokio::test]
async fn an_order_is_placed_with_a_pickup_code_and_a_signed_qr() {
    let f = fixture().await;
    let (status, body) = place(&f.state, "k1", order_body(2)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "placed");
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("O-") && id.len() == 12, "{id}");
    let code = body["pickup_code"].as_str().unwrap();
    assert_eq!(code.len(), 6);
    let key: &[u8] = &[7; 32];
    let verified = crate::domain::pickup::verify_qr(body["qr"].as_str().unwrap(), &[key]).unwrap();
    assert_eq!(verified.order_id(), id);
    assert_eq!(verified.code().as_str(), code);
    let (hq_rights, name) = f.state.node.read(|r| {
        let st = r.state();
        let cust = crate::domain::CustomerId::parse("C-0001").unwrap();
        (
            st.rights(&madrid(), &Sku::parse(SKU).unwrap(), &ActorId::hq()),
            st.customers
                .get(&cust)
                .and_then(|c| c.name().map(str::to_string)),
        )
    });
    assert_eq!(hq_rights, 1);
    assert_eq!(name.as_deref(), Some("Sofía Domínguez"));
    let (status, order) = send(
        &f.state,
        Method::GET,
        &format!("/api/v1/orders/{id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order["store"], "madrid-centro");
    assert_eq!(order["status"], "placed");
    assert_eq!(order["pickup_code"], code);
    assert_eq!(order["lines"], json!([{"sku": SKU, "qty": 2, "picked": 0}]));
}

#[tokio::test]
async fn an_order_without_idempotency_key_is_refused() {
    let f = fixture().await;
    let (status, body) = send(
        &f.state,
        Method::POST,
        "/api/v1/orders",
        Some(order_body(1)),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "idempotency_key_required");
}

#[tokio::test]
async fn the_same_key_and_body_twice_creates_one_order_and_answers_the_same() {
    let f = fixture().await;
    let (s1, first) = place(&f.state, "same-key", order_body(1)).await;
    let (s2, second) = place(&f.state, "same-key", order_body(1)).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(first, second);
    assert_eq!(f.state.node.read(|r| r.state().orders.len()), 1);
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_422_and_creates_nothing() {
    let f = fixture().await;
    assert_eq!(
        place(&f.state, "k", order_body(1)).await.0,
        StatusCode::CREATED
    );
    let (status, body) = place(&f.state, "k", order_body(2)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"], "idempotency_key_reused");
    assert_eq!(f.state.node.read(|r| r.state().orders.len()), 1);
}

#[tokio::test]
async fn concurrent_posts_with_one_key_create_one_order() {
    let f = fixture().await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let state = f.state.clone();
        tasks.push(tokio::spawn(async move {
            place(&state, "race", order_body(1)).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.insert(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(f.state.node.read(|r| r.state().orders.len()), 1);
}

#[tokio::test]
async fn an_order_beyond_hq_rights_gets_409_naming_sku_and_available() {
    let f = fixture().await;
    let (status, body) = place(&f.state, "k-big", order_body(4)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "insufficient_stock");
    assert_eq!(body["sku"], SKU);
    assert_eq!(body["available"], 3);
    assert_eq!(f.state.node.read(|r| r.state().orders.len()), 0);
    // HQ sells its allocation and then refuses, whatever the store holds.
    assert_eq!(
        place(&f.state, "a", order_body(3)).await.0,
        StatusCode::CREATED
    );
    let (status, body) = place(&f.state, "b", order_body(1)).await;
    assert_eq!(
        (status, body["available"].clone()),
        (StatusCode::CONFLICT, json!(0))
    );
}

#[tokio::test]
async fn orders_with_bad_fields_name_them() {
    let f = fixture().await;
    let mut unknown_sku = order_body(1);
    unknown_sku["lines"] = json!([{"sku": "SKU-NOPE", "qty": 1}]);
    let mut zero = order_body(1);
    zero["lines"] = json!([{"sku": SKU, "qty": 0}]);
    let mut empty = order_body(1);
    empty["lines"] = json!([]);
    let mut bad_customer = order_body(1);
    bad_customer["customer"] = json!({"id": "bad id"});
    let mut bad_email = order_body(1);
    bad_email["customer"]["email"] = json!("nope");
    let cases = [
        (unknown_sku, StatusCode::UNPROCESSABLE_ENTITY, "unknown_sku"),
        (zero, StatusCode::UNPROCESSABLE_ENTITY, "invalid_qty"),
        (empty, StatusCode::UNPROCESSABLE_ENTITY, "invalid_lines"),
        (
            bad_customer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_customer",
        ),
        (bad_email, StatusCode::UNPROCESSABLE_ENTITY, "invalid_email"),
    ];
    for (i, (body, status, code)) in cases.into_iter().enumerate() {
        let (got, answer) = place(&f.state, &format!("key-{i}"), body).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
    }
    let mut unknown_store = order_body(1);
    unknown_store["store"] = json!("valencia");
    let (status, body) = place(&f.state, "key-store", unknown_store).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_store"))
    );
    assert_eq!(f.state.node.read(|r| r.state().orders.len()), 0);
}

#[tokio::test]
async fn an_unknown_order_is_404() {
    let f = fixture().await;
    for uri in ["/api/v1/orders/O-NOPE", "/api/v1/orders/bad%20id"] {
        let (status, body) = send(&f.state, Method::GET, uri, None, &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_order"))
        );
    }
    let (status, _) = send(
        &f.state,
        Method::POST,
        "/api/v1/orders/O-NOPE/cancel",
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cancel_answers_the_cancelled_order_and_is_refused_after_handover() {
    let mut f = fixture().await;
    let (_, a) = place(&f.state, "a", order_body(1)).await;
    let uri = format!("/api/v1/orders/{}/cancel", a["id"].as_str().unwrap());
    let (status, order) = send(&f.state, Method::POST, &uri, None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "cancelled");
    assert_eq!(
        send(&f.state, Method::POST, &uri, None, &[]).await.0,
        StatusCode::OK
    );

    let (_, b) = place(&f.state, "b", order_body(1)).await;
    let id = crate::domain::OrderId::parse(b["id"].as_str().unwrap()).unwrap();
    let sku = Sku::parse(SKU).unwrap();
    f.store_does(vec![
        Payload::OrderAdvance {
            order_id: id.clone(),
            store: madrid(),
            to: Advance::Picking,
        },
        Payload::OrderPick {
            order_id: id.clone(),
            store: madrid(),
            sku,
            picked: 1,
        },
        Payload::OrderAdvance {
            order_id: id.clone(),
            store: madrid(),
            to: Advance::Ready,
        },
        Payload::OrderAdvance {
            order_id: id.clone(),
            store: madrid(),
            to: Advance::HandedOver,
        },
    ])
    .await;
    let uri = format!("/api/v1/orders/{id}/cancel");
    let (status, body) = send(&f.state, Method::POST, &uri, None, &[]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "already_handed_over");
}

#[tokio::test]
async fn stores_lists_every_configured_store_with_its_digest() {
    let f = fixture().await;
    let (status, body) = send(&f.state, Method::GET, "/api/v1/stores", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let rows = body.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["store"], "madrid-centro");
    assert_eq!(rows[0]["online"], false);
    assert_eq!(rows[0]["last_seen"], Value::Null);
    assert_eq!(rows[0]["outbox"], 0);
    assert_eq!(
        rows[0]["digest"],
        f.madrid.digest_for_store(&madrid()).short()
    );
}

struct Switch(Mutex<Vec<(StoreId, bool)>>);

impl LinkControl for Switch {
    fn set_link(&self, store: &StoreId, online: bool) -> bool {
        self.0.lock().unwrap().push((store.clone(), online));
        true
    }
}

#[tokio::test]
async fn the_demo_link_switch_exists_only_when_enabled_and_calls_the_store() {
    let f = fixture().await;
    let uri = "/api/v1/demo/stores/madrid-centro/link";
    let (status, _) = send(
        &f.state,
        Method::POST,
        uri,
        Some(json!({"online": false})),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let switch = Arc::new(Switch(Mutex::new(Vec::new())));
    let state = f.state.clone().with_demo_links(switch.clone(), TOKEN);
    let (status, body) = send(
        &state,
        Method::POST,
        uri,
        Some(json!({"online": false})),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"store": "madrid-centro", "online": false}));
    assert_eq!(switch.0.lock().unwrap().as_slice(), &[(madrid(), false)]);
    let (status, body) = send(
        &state,
        Method::POST,
        "/api/v1/demo/stores/valencia/link",
        Some(json!({"online": true})),
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_store"))
    );
    let (status, body) = send(
        &state,
        Method::POST,
        uri,
        Some(json!({"online": "yes"})),
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_online"))
    );
}

#[tokio::test]
async fn the_dashboard_lists_stores_and_orders() {
    let f = fixture().await;
    let (_, order) = place(&f.state, "k", order_body(1)).await;
    let (status, page) = raw(&f.state, Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap().to_string();
    assert!(page.contains("madrid-centro") && page.contains("sevilla-nervion"));
    assert!(page.contains(order["id"].as_str().unwrap()));
    assert!(!page.contains("Sofía"), "no customer data on the dashboard");
}

/// A request from `ip` (as `serve` records the client's address).
fn from_ip(ip: &str, token: &str) -> Request<Body> {
    let mut req = Request::get("/api/v1/stores")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let addr: std::net::SocketAddr = format!("{ip}:40000").parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    req
}

async fn headers_of(
    state: &HqState,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app(state.clone()).oneshot(req).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, value)
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_retry_after_and_the_error_shape() {
    let f = fixture().await;
    let mut s = settings();
    s.rate_limit = RateLimit {
        per_minute: 6,
        burst: 3,
    };
    let state = HqState::new(f.state.node.clone(), s, Arc::new(NoSync));
    for _ in 0..3 {
        let (status, _, body) = headers_of(&state, from_ip("10.0.0.1", TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // The budget is the token's, whichever address it comes from.
    let (status, headers, body) = headers_of(&state, from_ip("10.0.0.2", TOKEN)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "rate_limited");
    assert!(body["message"].is_string());
    // One request comes back every 10 s.
    let wait = body["retry_after_s"].as_u64().unwrap();
    assert!((1..=10).contains(&wait), "{body}");
    assert_eq!(headers["retry-after"], wait.to_string().as_str());
    assert_eq!(headers["cache-control"], "no-store");
    // Counted with the other HTTP errors.
    let (_, metrics) = raw(
        &state,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        metrics.contains("storenode_http_errors_total{code=\"rate_limited\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn wrong_tokens_are_limited_per_client_ip_without_touching_the_shops_budget() {
    let f = fixture().await;
    let mut s = settings();
    s.unauthenticated_rate_limit = RateLimit {
        per_minute: 1,
        burst: 2,
    };
    let state = HqState::new(f.state.node.clone(), s, Arc::new(NoSync));
    for _ in 0..2 {
        let (status, _, _) = headers_of(&state, from_ip("10.0.0.9", "guess-guess-guess")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) =
        headers_of(&state, from_ip("10.0.0.9", "guess-guess-guess")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    // Another address is still told its token is wrong; the shop's own token still works.
    let (status, _, _) = headers_of(&state, from_ip("10.0.0.10", "guess-guess-guess")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = headers_of(&state, from_ip("10.0.0.9", TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let f = fixture().await;
    let (_, api, _) = headers_of(&f.state, from_ip("10.0.0.1", TOKEN)).await;
    let (_, denied, _) = headers_of(&f.state, from_ip("10.0.0.1", "nope-nope-nope")).await;
    let page = Request::get("/").body(Body::empty()).unwrap();
    let (_, page, _) = headers_of(&f.state, page).await;
    let health = Request::get("/healthz").body(Body::empty()).unwrap();
    let (_, health, _) = headers_of(&f.state, health).await;
    for h in [&api, &denied, &page, &health] {
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }
    for h in [&api, &denied, &health] {
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["content-security-policy"], crate::http_security::API_CSP);
    }
    assert_eq!(
        page["content-security-policy"],
        crate::http_security::DASHBOARD_CSP
    );
}
