//! Customers at HQ end to end (DESIGN.md section 14): HQ and two stores over a real broker.
//! A customer is created at HQ, gives consent at HQ and at a counter (both ways), is held by
//! both stores, and is erased while one store is offline and sells to them and edits their
//! phone. Once every store applied the erasure, no file of any replica (database, WAL, shm)
//! holds the name, email, phones or loyalty card — the same raw-bytes scan finds every one of
//! them before the erasure — digests converge and the anonymous sale totals remain. Every log
//! line at info level, from every thread, is captured and holds none of them either.

mod sync_support;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use storenode::app::HqSyncView;
use storenode::config::Config;
use storenode::domain::op::{SaleLine, Tender};
use storenode::domain::{CustomerId, Payload, SaleId, StoreId};
use storenode::hq::{HqSettings, HqState};
use storenode::store::Node;
use storenode::sync::StoreSyncHandle;
use storenode::terminal::print::MemoryPrintSink;
use storenode::terminal::{Role, TerminalConfig, TerminalState};
use sync_support::{embedded_broker, sku, store_a, store_b, wait_for, Chain, Mosquitto};
use tower::ServiceExt;

const TOKEN: &str = "test-token-erasure";
const ID: &str = "C-LUCIA";
const NAME: &str = "Lucía Pérez Gómez";
const EMAIL: &str = "lucia.perez@example.com";
const PHONE: &str = "+34600111222";
const CARD: &str = "LOY-7700123";
/// Typed at store b's counter while it is offline, after HQ erased the customer.
const NEW_PHONE: &str = "+34699000111";

/// Log lines at info level and above from every thread of this test binary.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Captured(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
    .clone()
}

#[derive(Clone)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hq_state(chain: &Chain) -> HqState {
    let text = format!(
        "role = \"hq\"\nchain = \"acme\"\ndb = \"unused.db\"\nstores = [\"norte\", \"sur\"]\n\
         api_tokens = [\"{TOKEN}\"]\n[mqtt]\nhost = \"127.0.0.1\"\nport = 1\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[pickup]\nqr_keys = [\"{}\"]\n",
        "ab".repeat(32)
    );
    let Config::Hq(config) = Config::parse(&text).unwrap() else {
        panic!("not an hq config")
    };
    HqState::new(
        chain.hq.clone(),
        HqSettings::from_config(&config),
        Arc::new(HqSyncView(chain.hq_sync.clone())),
    )
}

async fn hq_call(
    state: &HqState,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let res = storenode::hq::app(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A logged-in terminal session at a store.
async fn terminal(node: &Node, store: StoreId, sync: &StoreSyncHandle) -> (TerminalState, String) {
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
    let (status, headers, _) = store_call(
        &state,
        "",
        Method::POST,
        "/api/v1/session",
        Some(json!({"staff": "1001", "pin": "2468"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let cookie = headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    (state, cookie)
}

async fn store_call(
    state: &TerminalState,
    cookie: &str,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let res = storenode::terminal::app(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Every personal datum found in any file in `dir`, as (file name, datum).
fn personal_data_in(dir: &Path) -> Vec<(String, &'static str)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for needle in [NAME, EMAIL, PHONE, CARD, NEW_PHONE] {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                let file = path.file_name().unwrap().to_string_lossy().to_string();
                found.push((file, needle));
            }
        }
    }
    found
}

fn sale(store: &StoreId, id: &str) -> Payload {
    Payload::Sale {
        store: store.clone(),
        sale_id: SaleId::parse(id).unwrap(),
        lines: vec![SaleLine {
            sku: sku(),
            qty: 1,
            unit_cents: 250,
            vat_bp: 1000,
        }],
        tender: Tender::Card,
        customer: Some(CustomerId::parse(ID).unwrap()),
    }
}

/// The customer's sales a replica holds, in memory or moved to its history
/// (`store::history`), once each.
fn customer_sales_cents(node: &Node) -> i64 {
    let id = CustomerId::parse(ID).unwrap();
    let (mut cents, evictions) = node.read(|r| {
        let held: std::collections::BTreeMap<String, i64> = r
            .state()
            .sales
            .values()
            .filter(|s| s.customer.as_ref() == Some(&id))
            .map(|s| (s.id.to_string(), s.total_cents()))
            .collect();
        (held, r.state().evictions())
    });
    let evicted = node
        .query_blocking(|c| storenode::store::history::sales_of_customer(c, &id, evictions))
        .unwrap();
    for s in evicted {
        cents.entry(s.id.to_string()).or_insert(s.total_cents());
    }
    cents.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_customer_leaves_no_bytes_in_any_replica_over_the_embedded_broker() {
    erasure_is_provable_on_disk(embedded_broker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_customer_leaves_no_bytes_in_any_replica_over_mosquitto() {
    let broker = Mosquitto::start();
    erasure_is_provable_on_disk(broker.port).await;
}

async fn erasure_is_provable_on_disk(port: u16) {
    let logs = captured_logs();
    let chain = Chain::start(port).await;
    chain.seed().await;
    let hq = hq_state(&chain);
    let cid = CustomerId::parse(ID).unwrap();

    // HQ: profile, consent from the shop, a cart.
    let (status, body) = hq_call(
        &hq,
        Method::PUT,
        &format!("/api/v1/customers/{ID}"),
        Some(json!({"name": NAME, "email": EMAIL, "phone": PHONE, "loyalty_card": CARD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = hq_call(
        &hq,
        Method::PUT,
        &format!("/api/v1/customers/{ID}/consent/email"),
        Some(json!({"granted": true, "source": "shop"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["consent"]["email"]["source"], "shop");
    let (status, _) = hq_call(
        &hq,
        Method::PUT,
        &format!("/api/v1/carts/{ID}"),
        Some(json!({"lines": [{"sku": sku(), "qty": 2}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Both stores come to hold the customer: a sale at norte, a lookup (follow) at sur.
    chain
        .a
        .submit(vec![sale(&store_a(), "S-N-1")])
        .await
        .unwrap();
    chain
        .b
        .submit(vec![Payload::CustomerFollow {
            customer: cid.clone(),
            store: store_b(),
        }])
        .await
        .unwrap();
    for node in [chain.a.clone(), chain.b.clone()] {
        let c = cid.clone();
        wait_for(
            Duration::from_secs(10),
            "the store holds the profile and consent",
            || {
                node.read(|r| {
                    r.state().customers.get(&c).is_some_and(|x| {
                        x.name() == Some(NAME)
                            && x.consent(storenode::domain::op::Channel::Email).is_some()
                    })
                })
            },
        )
        .await;
    }

    // Consent given at norte's counter reaches HQ, with norte as its source.
    let (ta, cookie_a) = terminal(&chain.a, store_a(), &chain.a_sync).await;
    let (status, _, card) = store_call(
        &ta,
        &cookie_a,
        Method::PUT,
        &format!("/api/v1/customers/{ID}/consent/sms"),
        Some(json!({"granted": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{card}");
    assert_eq!(card["consent"]["sms"]["source"], "norte");
    let h = chain.hq.clone();
    let c = cid.clone();
    wait_for(
        Duration::from_secs(10),
        "HQ has the counter's consent",
        || {
            h.read(|r| {
                r.state()
                    .customers
                    .get(&c)
                    .and_then(|x| x.consent(storenode::domain::op::Channel::Sms).cloned())
            })
            .is_some_and(|k| k.granted && k.source == "norte")
        },
    )
    .await;
    let (_, body) = hq_call(&hq, Method::GET, &format!("/api/v1/customers/{ID}"), None).await;
    assert_eq!(body["stores"], json!(["norte", "sur"]), "{body}");

    // Sur goes offline, sells to the customer and edits their phone there.
    chain.b_sync.set_link(false);
    let hs = chain.hq_sync.clone();
    wait_for(Duration::from_secs(10), "HQ sees sur offline", || {
        hs.stores()
            .iter()
            .any(|l| l.store == store_b() && !l.online)
    })
    .await;
    chain
        .b
        .submit(vec![sale(&store_b(), "S-S-1")])
        .await
        .unwrap();
    chain
        .b
        .submit(vec![Payload::CustomerUpdate {
            customer: cid.clone(),
            patch: storenode::domain::op::ProfilePatch {
                phone: Some(NEW_PHONE.into()),
                ..Default::default()
            },
        }])
        .await
        .unwrap();

    // Positive control: the scan finds every datum before the erasure.
    for node in [&chain.hq, &chain.a, &chain.b] {
        node.checkpoint().await.unwrap();
    }
    let dir = chain.path();
    let before = personal_data_in(&dir);
    for needle in [NAME, EMAIL, PHONE, CARD, NEW_PHONE] {
        assert!(
            before.iter().any(|(_, n)| *n == needle),
            "the scan must find {needle} before erasure: {before:?}"
        );
    }
    for file in ["hq.db", "a.db", "b.db"] {
        assert!(before.iter().any(|(f, _)| f == file), "{file}: {before:?}");
    }

    // HQ erases; norte applies it, sur cannot yet.
    let (status, body) = hq_call(
        &hq,
        Method::DELETE,
        &format!("/api/v1/customers/{ID}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"id": ID, "complete": false}));
    let (status, body) = hq_call(&hq, Method::GET, &format!("/api/v1/customers/{ID}"), None).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["error"], "customer_erased");
    let (status, body) = hq_call(
        &hq,
        Method::POST,
        &format!("/api/v1/customers/{ID}/contacts"),
        Some(json!({"channel": "email", "campaign": "spring"})),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::CONFLICT, json!("customer_erased"))
    );
    let erasure = |hq: HqState| async move {
        hq_call(
            &hq,
            Method::GET,
            &format!("/api/v1/customers/{ID}/erasure"),
            None,
        )
        .await
        .1
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let body = erasure(hq.clone()).await;
        if body["stores"]
            == json!([{"store": "norte", "erased": true}, {"store": "sur", "erased": false}])
        {
            assert_eq!(body["complete"], false);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "norte never applied: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Sur comes back: its sale and phone edit reach HQ, the erasure reaches sur.
    chain.b_sync.set_link(true);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let body = erasure(hq.clone()).await;
        if body["complete"] == true {
            assert_eq!(
                body["stores"],
                json!([{"store": "norte", "erased": true}, {"store": "sur", "erased": true}])
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sur never applied: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(10))
        .await;
    chain
        .converged(&store_b(), &chain.b, Duration::from_secs(10))
        .await;
    let h = chain.hq.clone();
    wait_for(
        Duration::from_secs(10),
        "HQ has both anonymous sales",
        || customer_sales_cents(&h) == 500,
    )
    .await;
    // Purchase history follows the customer (DESIGN.md §12): each store that holds the
    // customer also holds the other's sale, anonymous now like its own. The other store's
    // sale reaches each store in HQ's next down-batch, which the digests above do not cover.
    for (node, what) in [
        (&chain.a, "store a holds both sales"),
        (&chain.b, "store b holds both sales"),
    ] {
        let n = node.clone();
        wait_for(Duration::from_secs(10), what, || {
            customer_sales_cents(&n) == 500
        })
        .await;
    }
    for node in [&chain.hq, &chain.a, &chain.b] {
        assert!(node.read(|r| r.state().customer_erased(&cid)));
        node.checkpoint().await.unwrap();
    }
    assert_eq!(
        personal_data_in(&dir),
        Vec::new(),
        "personal data left on disk"
    );
    chain.close().await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        text.contains("customer erased at hq"),
        "the capture works:\n{text}"
    );
    for needle in [
        NAME,
        EMAIL,
        PHONE,
        CARD,
        NEW_PHONE,
        "Lucía",
        "600111222",
        "699000111",
    ] {
        assert!(
            !text.contains(needle),
            "{needle} logged at info level:\n{text}"
        );
    }
}

/// A till that sells cash without a drawer session (`[till] cash_session_required = false`):
/// this test is not about the drawer.
fn no_drawer(mut config: TerminalConfig) -> TerminalConfig {
    config.till.cash_session_required = false;
    config
}
