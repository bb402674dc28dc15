//! Customers fetched from HQ on demand: a store's terminal search by phone, email or loyalty
//! card finds a customer held only at HQ (with their cart), answers at once with the
//! `local-only` header while the link is cut, and HQ refuses lookups whose signature fails.
//! HQ and two stores over the embedded broker and over mosquitto, with store keys at HQ.

mod sync_support;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storenode::domain::op::ProfilePatch;
use storenode::domain::{ActorId, CustomerId, Ean13, Payload, StoreId};
use storenode::signing::{StoreKey, StoreKeys};
use storenode::store::Node;
use storenode::sync::{
    spawn_hq_sync, spawn_store_sync, HqSyncConfig, StoreSyncConfig, StoreSyncHandle,
};
use storenode::terminal::print::MemoryPrintSink;
use storenode::terminal::{app, Role, TerminalConfig, TerminalState};
use sync_support::{embedded_broker, sku, store_a, store_b, wait_for, Mosquitto, CHAIN};
use tokio::sync::watch;
use tower::ServiceExt;

struct Terminal {
    state: TerminalState,
    cookie: String,
}

impl Terminal {
    async fn open(node: &Node, store: StoreId, sync: &StoreSyncHandle) -> Terminal {
        let state = TerminalState::new(
            node.clone(),
            Arc::new(sync.clone()),
            Arc::new(MemoryPrintSink::default()),
            no_drawer(TerminalConfig::new(store)),
        );
        state
            .upsert_staff("1001", "Ana", Role::Associate, "2468")
            .await
            .unwrap();
        let mut t = Terminal {
            state,
            cookie: String::new(),
        };
        let (status, headers, body) = t
            .call(
                Method::POST,
                "/api/v1/session",
                Some(r#"{"staff":"1001","pin":"2468"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        t.cookie = headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        t
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, &self.cookie)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let res = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, value)
    }

    /// Search; returns the list, the `X-Storenode-Lookup` header and how long it took.
    async fn search(&self, q: &str) -> (Vec<Value>, String, Duration) {
        let started = Instant::now();
        let (status, headers, body) = self
            .call(Method::GET, &format!("/api/v1/customers?q={q}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let source = headers
            .get("x-storenode-lookup")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let list = body.as_array().cloned().expect("a JSON list");
        (list, source, started.elapsed())
    }
}

fn customer(id: &str, phone: &str, email: &str, card: &str) -> Vec<Payload> {
    let c = CustomerId::parse(id).unwrap();
    vec![
        Payload::CustomerUpdate {
            customer: c.clone(),
            patch: ProfilePatch {
                name: Some(format!("Cliente {id}")),
                email: Some(email.into()),
                phone: Some(phone.into()),
                loyalty_card: Some(card.into()),
            },
        },
        Payload::CartSet {
            customer: c,
            sku: sku(),
            qty: 2,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_held_only_at_hq_is_found_at_the_counter_over_the_embedded_broker() {
    customers_are_fetched_from_hq_on_demand(embedded_broker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_held_only_at_hq_is_found_at_the_counter_over_mosquitto() {
    let broker = Mosquitto::start();
    customers_are_fetched_from_hq_on_demand(broker.port).await;
}

async fn customers_are_fetched_from_hq_on_demand(port: u16) {
    let dir = tempfile::tempdir().unwrap();
    let hq = Node::open(&dir.path().join("hq.db"), ActorId::hq()).unwrap();
    let a = Node::open(&dir.path().join("a.db"), store_a().actor()).unwrap();
    let b = Node::open(&dir.path().join("b.db"), store_b().actor()).unwrap();
    let key_a = StoreKey::from_secret(store_a(), [7; 32]);
    let key_b = StoreKey::from_secret(store_b(), [8; 32]);
    // HQ has another key registered for store b: b's lookups fail verification.
    let registered_b = StoreKey::from_secret(store_b(), [9; 32]);
    let keys = StoreKeys::parse([
        (store_a(), key_a.public_hex().as_str()),
        (store_b(), registered_b.public_hex().as_str()),
    ])
    .unwrap();
    let (shutdown, rx) = watch::channel(false);
    let mut hq_cfg = HqSyncConfig::new(CHAIN, vec![store_a(), store_b()], "127.0.0.1", port);
    hq_cfg.store_keys = Some(Arc::new(keys));
    hq_cfg.retransmit_ms = 500;
    let hq_sync = spawn_hq_sync(hq.clone(), hq_cfg, rx.clone());
    let store_cfg = |s: StoreId, key: StoreKey| {
        let mut c = StoreSyncConfig::new(CHAIN, s, "127.0.0.1", port);
        c.retransmit_ms = 500;
        c.signing_key = Some(Arc::new(key));
        c
    };
    let a_sync = spawn_store_sync(a.clone(), store_cfg(store_a(), key_a), rx.clone());
    let b_sync = spawn_store_sync(b.clone(), store_cfg(store_b(), key_b), rx);

    hq.submit(vec![Payload::CatalogPut {
        sku: sku(),
        ean: Ean13::parse("4006381333931").unwrap(),
        name: "Green tea".into(),
        price_cents: 250,
        vat_bp: 1000,
    }])
    .await
    .unwrap();
    let mut at_hq = customer(
        "c-9",
        "+34 600 999 888",
        "marta@example.com",
        "2100000000099",
    );
    at_hq.extend(customer(
        "c-10",
        "611 000 222",
        "pablo@example.com",
        "2100000000105",
    ));
    hq.submit(at_hq).await.unwrap();
    let (an, sa) = (a.clone(), a_sync.clone());
    wait_for(
        Duration::from_secs(10),
        "store a is online with the catalog",
        || sa.status().online && an.read(|r| r.state().catalog.contains(&sku())),
    )
    .await;
    let sb = b_sync.clone();
    wait_for(Duration::from_secs(10), "store b is online", || {
        sb.status().online
    })
    .await;
    let c9 = CustomerId::parse("c-9").unwrap();
    assert!(a.read(|r| !r.state().customers.contains_key(&c9)));

    let ta = Terminal::open(&a, store_a(), &a_sync).await;
    // By phone, as the customer says it (no country code): fetched from HQ with their cart.
    let (list, source, _) = ta.search("600999888").await;
    assert_eq!(source, "hq");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], "c-9");
    assert_eq!(list[0]["phone"], "+34 600 999 888");
    assert_eq!(list[0]["cart_lines"], 1);
    let (status, _, cart) = ta
        .call(Method::GET, "/api/v1/customers/c-9/cart", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["lines"][0]["sku"], "SKU-1");
    assert_eq!(cart["lines"][0]["qty"], 2);
    // Now held here: the next search is local.
    let (list, source, _) = ta.search("600999888").await;
    assert_eq!((list.len(), source.as_str()), (1, "local"));
    // By email, case-folded.
    let (list, source, _) = ta.search("Pablo@Example.com").await;
    assert_eq!(source, "hq");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], "c-10");
    // A phone nobody has: HQ answers, nobody found.
    let (list, source, elapsed) = ta.search("699000111").await;
    assert_eq!((list.len(), source.as_str()), (0, "hq"));
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    // Names never go to HQ.
    let (list, source, _) = ta.search("Cliente").await;
    assert_eq!(source, "local");
    assert_eq!(list.len(), 2, "{list:?}");

    // Store b's lookups carry a signature HQ does not accept: refused, so b times out.
    let tb = Terminal::open(&b, store_b(), &b_sync).await;
    let (list, source, _) = tb.search("2100000000099").await;
    assert_eq!((list.len(), source.as_str()), (0, "hq-timeout"));
    assert!(hq_sync.metrics().rejected("bad_signature") >= 1);
    assert!(!b.read(|r| r.state().customers.contains_key(&c9)));

    // Link cut: the search answers at once from this store only.
    hq.submit(customer(
        "c-11",
        "622 000 333",
        "rosa@example.com",
        "2100000000112",
    ))
    .await
    .unwrap();
    a_sync.set_link(false);
    let sa = a_sync.clone();
    wait_for(Duration::from_secs(5), "store a is offline", || {
        !sa.status().online
    })
    .await;
    let (list, source, elapsed) = ta.search("622000333").await;
    assert_eq!((list.len(), source.as_str()), (0, "local-only"));
    assert!(elapsed < Duration::from_millis(500), "took {elapsed:?}");
    // Back online, the same search reaches HQ.
    a_sync.set_link(true);
    let sa = a_sync.clone();
    wait_for(Duration::from_secs(10), "store a is back online", || {
        sa.status().online
    })
    .await;
    let (list, source, _) = ta.search("622000333").await;
    assert_eq!(source, "hq");
    assert_eq!(list.len(), 1, "{list:?}");

    shutdown.send_replace(true);
    hq_sync.join().await;
    a_sync.join().await;
    b_sync.join().await;
}

/// A till that sells cash without a drawer session (`[till] cash_session_required = false`):
/// this test is not about the drawer.
fn no_drawer(mut config: TerminalConfig) -> TerminalConfig {
    config.till.cash_session_required = false;
    config
}
