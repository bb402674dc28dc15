//! Returns anywhere over a real broker (DESIGN.md §12): HQ and two stores in-process, each on
//! its own SQLite file. A sale made at one store is returned at the other online (the return
//! rights come from the seller through HQ within seconds, and the unit is then not returnable
//! twice); with both stores offline, the seller returns its own sale exactly while the other
//! takes an unverified return of the same units, and once the links heal every replica records
//! the `double_return` and the stores converge with HQ. Embedded broker and mosquitto.

mod sync_support;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use storenode::domain::{SaleId, StoreId};
use storenode::store::Node;
use storenode::sync::StoreSyncHandle;
use storenode::terminal::print::MemoryPrintSink;
use storenode::terminal::{app, Role, TerminalConfig, TerminalState};
use sync_support::{embedded_broker, sku, store_a, store_b, wait_for, Chain, Mosquitto};
use tower::ServiceExt;

const WITHIN: Duration = Duration::from_secs(10);

/// A store's terminal with an associate's and a manager's session.
struct Terminal {
    state: TerminalState,
    associate: String,
    manager: String,
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
        state
            .upsert_staff("9001", "Marta", Role::Manager, "1357")
            .await
            .unwrap();
        let mut t = Terminal {
            state,
            associate: String::new(),
            manager: String::new(),
        };
        t.associate = t.login("1001", "2468").await;
        t.manager = t.login("9001", "1357").await;
        t
    }

    async fn login(&self, staff: &str, pin: &str) -> String {
        let req = Request::post("/api/v1/session")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"staff": staff, "pin": pin}).to_string()))
            .unwrap();
        let res = app(self.state.clone()).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = res.headers()[header::SET_COOKIE].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    }

    async fn call(
        &self,
        cookie: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, String, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let res = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let lookup = res
            .headers()
            .get("x-storenode-lookup")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            lookup,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn sell(&self, qty: u32) -> String {
        let (status, _, body) = self
            .call(
                &self.associate,
                Method::POST,
                "/api/v1/sales",
                Some(json!({"lines": [{"sku": "SKU-1", "qty": qty}], "tender": "cash"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn give_back(
        &self,
        cookie: &str,
        sale: &str,
        qty: u32,
        hint: Option<&StoreId>,
    ) -> (StatusCode, String, Value) {
        let mut body = json!({"sale": sale, "lines": [{"sku": "SKU-1", "qty": qty, "restock": true}], "tender": "cash"});
        if let (Some(h), Value::Object(m)) = (hint, &mut body) {
            m.insert("sale_store".into(), json!(h.as_str()));
        }
        self.call(cookie, Method::POST, "/api/v1/returns", Some(body))
            .await
    }
}

fn rights_here(node: &Node, store: &StoreId) -> i64 {
    node.read(|r| r.state().rights(store, &sku(), &store.actor()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_is_returned_at_another_store_online_and_offline_over_the_embedded_broker() {
    returns_anywhere(embedded_broker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_is_returned_at_another_store_online_and_offline_over_mosquitto() {
    let broker = Mosquitto::start();
    returns_anywhere(broker.port).await;
}

async fn returns_anywhere(port: u16) {
    let chain = Chain::start(port).await;
    chain.seed().await;
    let (sa, sb) = (chain.a_sync.clone(), chain.b_sync.clone());
    wait_for(WITHIN, "both stores are online", || {
        sa.status().online && sb.status().online
    })
    .await;
    let ta = Terminal::open(&chain.a, store_a(), &chain.a_sync).await;
    let tb = Terminal::open(&chain.b, store_b(), &chain.b_sync).await;

    // Online: sold at a, returned at b. b fetches the sale (and its return rights) from a.
    let sale = ta.sell(2).await;
    let (status, lookup, got) = tb
        .call(
            &tb.associate,
            Method::GET,
            &format!("/api/v1/sales/{sale}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(lookup, "hq");
    assert_eq!(got["store"], store_a().as_str());
    assert_eq!(got["lines"][0]["qty"], 2);
    let before = rights_here(&chain.b, &store_b());
    let (status, _, ret) = tb.give_back(&tb.associate, &sale, 1, None).await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    assert_eq!(ret["verified"], true);
    assert_eq!(ret["refund_cents"], 250);
    assert_eq!(
        rights_here(&chain.b, &store_b()),
        before + 1,
        "restocked at b"
    );
    chain.converged(&store_b(), &chain.b, WITHIN).await;
    let b_available = chain.hq.read(|r| r.state().available(&store_b(), &sku()));
    assert_eq!(
        b_available,
        10 + 1,
        "HQ's availability shows the unit back at b"
    );
    // a asks the rights back; the unit b took back is not returnable twice.
    let (status, lookup, ret) = ta.give_back(&ta.associate, &sale, 2, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{ret}");
    assert_eq!(lookup, "hq", "the rights came back from b");
    assert_eq!(ret["error"], "already_returned");
    assert_eq!(ret["returnable"], 1);

    // Both offline: a returns its own sale exactly; b's manager takes an unverified return of
    // the same units (b never saw the sale).
    let second = ta.sell(2).await;
    chain.a_sync.set_link(false);
    chain.b_sync.set_link(false);
    wait_for(WITHIN, "both stores are offline", || {
        !sa.status().online && !sb.status().online
    })
    .await;
    let (status, lookup, ret) = ta.give_back(&ta.associate, &second, 2, None).await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    assert_eq!(
        (ret["verified"].as_bool(), lookup.as_str()),
        (Some(true), "local")
    );
    let (status, lookup, got) = tb
        .call(
            &tb.associate,
            Method::GET,
            &format!("/api/v1/sales/{second}"),
            None,
        )
        .await;
    assert_eq!(
        (status, lookup.as_str()),
        (StatusCode::NOT_FOUND, "local-only"),
        "{got}"
    );
    let (status, _, ret) = tb
        .give_back(&tb.associate, &second, 1, Some(&store_a()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{ret}");
    assert_eq!(ret["error"], "manager_required");
    let (status, _, ret) = tb
        .give_back(&tb.manager, &second, 1, Some(&store_a()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ret}");
    assert_eq!(ret["verified"], false);

    // Heal: the double refund is recorded wherever the ops meet, and everything converges.
    chain.a_sync.set_link(true);
    chain.b_sync.set_link(true);
    let second_id = SaleId::parse(&second).unwrap();
    let key = (second_id.clone(), sku());
    for node in [&chain.hq, &chain.a] {
        let (n, k) = (node.clone(), key.clone());
        wait_for(WITHIN, "the double return is recorded", || {
            n.read(|r| r.state().returns.double_returns.contains_key(&k))
        })
        .await;
    }
    let conflict = chain
        .hq
        .read(|r| r.state().returns.double_returns.get(&key).cloned())
        .unwrap();
    assert_eq!((conflict.sold, conflict.returned), (2, 3));
    chain.converged(&store_a(), &chain.a, WITHIN).await;
    chain.converged(&store_b(), &chain.b, WITHIN).await;
    let (status, _, got) = ta
        .call(
            &ta.associate,
            Method::GET,
            &format!("/api/v1/sales/{second}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["conflicts"][0]["kind"], "double_return", "{got}");
    chain.close().await;
}

/// A till that sells cash without a drawer session (`[till] cash_session_required = false`):
/// this test is not about the drawer.
fn no_drawer(mut config: TerminalConfig) -> TerminalConfig {
    config.till.cash_session_required = false;
    config
}
