//! Several HQ processes on one PostgreSQL log: the chain's HQ (in this test process, syncing
//! with two stores over a real mosquitto) and a second, real `storenode hq` process with
//! `[storage] sync = false`, SIGKILLed mid-stream. Orders taken on either are read on the
//! other, an Idempotency-Key holds across them, concurrent orders on both never oversell, and
//! nothing a killed process acknowledged is lost or applied twice.

mod pg_support;
mod sync_support;

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use pg_support::http::{http, TOKEN};
use pg_support::PgCluster;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use storenode::app::HqSyncView;
use storenode::config::Config;
use storenode::domain::op::ReceiveReason;
use storenode::domain::{ActorId, OrderId, Payload};
use storenode::hq::{HqSettings, HqState};
use storenode::store::pg::tail::Tail;
use sync_support::*;
use tower::ServiceExt;

fn shared_cluster() -> &'static PgCluster {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(PgCluster::start);
    hq_on_postgres(cluster.url("postgres"));
    cluster
}

fn qr_key() -> String {
    "ab".repeat(32)
}

fn hq_config(db: &Path, port: u16, url: &str, sync: bool) -> String {
    format!(
        "role = \"hq\"\nchain = \"{CHAIN}\"\ndb = \"{}\"\nstores = [\"{}\", \"{}\"]\n\
         api_tokens = [\"{TOKEN}\"]\n[mqtt]\nhost = \"127.0.0.1\"\nport = 1\n\
         [http]\nlisten = \"127.0.0.1:{port}\"\n[pickup]\nqr_keys = [\"{}\"]\n\
         [rate_limit]\nburst = 10000\nper_minute = 100000\n\
         [storage]\nurl = \"{url}\"\nsync = {sync}\n",
        db.display(),
        store_a().as_str(),
        store_b().as_str(),
        qr_key()
    )
}

/// The chain's in-process HQ as the API sees it, with its tail.
struct First {
    state: HqState,
    tail: Tail,
}

impl First {
    async fn new(chain: &Chain, url: &str) -> First {
        let text = hq_config(Path::new("unused.db"), 1, url, true);
        let Config::Hq(config) = Config::parse(&text).unwrap() else {
            panic!("not an hq config")
        };
        let from = Tail::start_position(url).await.unwrap();
        First {
            state: HqState::new(
                chain.hq.clone(),
                HqSettings::from_config(&config),
                Arc::new(HqSyncView(chain.hq_sync.clone())),
            ),
            tail: Tail::new(chain.hq.clone(), url, from).unwrap(),
        }
    }

    /// A call as `storenode hq` answers it: caught up with the log first.
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.tail.catch_up().await.unwrap();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json");
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        let req = req
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        let res = storenode::hq::app(self.state.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// A real `storenode hq` process without sync, on the chain's log.
struct Second {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
}

impl Second {
    fn start(dir: &Path, url: &str) -> Second {
        let port = free_port();
        let config = dir.join("hq2.toml");
        std::fs::write(&config, hq_config(&dir.join("hq2.db"), port, url, false)).unwrap();
        let mut second = Second {
            child: None,
            port,
            config,
        };
        second.restart();
        second
    }

    fn restart(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_storenode"))
            .args(["hq", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_port(self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Option<(u16, Value)> {
        http(self.port, method, path, key, body)
    }

    async fn call_async(
        &self,
        method: &str,
        path: &str,
        key: Option<String>,
        body: Option<Value>,
    ) -> Option<(u16, Value)> {
        let (port, method, path) = (self.port, method.to_string(), path.to_string());
        tokio::task::spawn_blocking(move || {
            http(port, &method, &path, key.as_deref(), body.as_ref())
        })
        .await
        .unwrap()
    }
}

impl Drop for Second {
    fn drop(&mut self) {
        self.kill();
    }
}

fn order_body(customer: &str) -> Value {
    json!({
        "store": store_a().as_str(),
        "customer": {"id": customer},
        "lines": [{"sku": sku().as_str(), "qty": 1}],
    })
}

async fn chain_on_postgres() -> (Mosquitto, Chain, String) {
    shared_cluster();
    let broker = Mosquitto::start();
    let chain = Chain::start(broker.port).await;
    chain.seed().await;
    let url = std::fs::read_to_string(chain.path().join("hq.pgurl")).unwrap();
    (broker, chain, url)
}

fn hq_rights(node: &storenode::store::Node) -> i64 {
    node.read(|r| r.state().rights(&store_a(), &sku(), &ActorId::hq()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_taken_on_one_hq_process_is_read_on_the_other_and_its_key_holds_on_both() {
    let (_broker, chain, url) = chain_on_postgres().await;
    let first = First::new(&chain, &url).await;
    let second = Second::start(&chain.path(), &url);

    let (status, placed) = second
        .call(
            "POST",
            "/api/v1/orders",
            Some("k-second"),
            Some(&order_body("C-0001")),
        )
        .unwrap();
    assert_eq!(status, 201, "{placed}");
    let id = placed["id"].as_str().unwrap().to_string();
    let (status, read) = first
        .call(Method::GET, &format!("/api/v1/orders/{id}"), None, None)
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["id"], placed["id"]);
    assert_eq!(read["pickup_code"], placed["pickup_code"]);
    let (status, again) = first
        .call(
            Method::POST,
            "/api/v1/orders",
            Some("k-second"),
            Some(order_body("C-0001")),
        )
        .await;
    assert_eq!(
        (status, &again["id"]),
        (201, &placed["id"]),
        "the key holds on the first"
    );
    // The first process routes it to the store like any order of its own.
    let (a, order) = (chain.a.clone(), OrderId::parse(&id).unwrap());
    wait_for(
        Duration::from_secs(10),
        "the second's order reaches the store",
        || a.read(|r| r.state().orders.contains_key(&order)),
    )
    .await;

    let (status, placed) = first
        .call(
            Method::POST,
            "/api/v1/orders",
            Some("k-first"),
            Some(order_body("C-0002")),
        )
        .await;
    assert_eq!(status, 201, "{placed}");
    let path = format!("/api/v1/orders/{}", placed["id"].as_str().unwrap());
    let (status, read) = second.call("GET", &path, None, None).unwrap();
    assert_eq!((status, &read["id"]), (200, &placed["id"]), "{read}");
    let (status, again) = second
        .call(
            "POST",
            "/api/v1/orders",
            Some("k-first"),
            Some(&order_body("C-0002")),
        )
        .unwrap();
    assert_eq!(
        (status, &again["id"]),
        (201, &placed["id"]),
        "the key holds on the second"
    );
    let (status, reused) = second
        .call(
            "POST",
            "/api/v1/orders",
            Some("k-first"),
            Some(&order_body("C-0003")),
        )
        .unwrap();
    assert_eq!(
        (status, &reused["error"]),
        (422, &json!("idempotency_key_reused"))
    );

    // What the first answers, the second answers when asked after it: the stores' reactions
    // (top-ups of HQ's rights) may land on the first in between two asks, so ask again until
    // a quiet moment, within a bound. Only the link (`online`) is known to the syncing one.
    let path = format!("/api/v1/availability?sku={}", sku().as_str());
    let stock = |v: &Value| {
        let mut v = v.clone();
        for store in v["stores"].as_array_mut().unwrap() {
            store.as_object_mut().unwrap().remove("online");
        }
        v
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status_first, avail_first) = first.call(Method::GET, &path, None, None).await;
        let (status, avail) = second.call("GET", &path, None, None).unwrap();
        assert_eq!((status, status_first), (200, 200), "{avail}");
        if stock(&avail) == stock(&avail_first) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "availability differs: {avail} on the second, {avail_first} on the first"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(chain.hq.read(|r| r.state().orders.len()), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_taken_on_two_hq_processes_at_once_never_oversell() {
    let (_broker, chain, url) = chain_on_postgres().await;
    let first = Arc::new(First::new(&chain, &url).await);
    let second = Arc::new(Second::start(&chain.path(), &url));
    // Store a received 10 units: HQ can never sell more, whatever it is allocated on the way.
    let stock = chain.a.read(|r| r.state().available(&store_a(), &sku()));
    assert_eq!(stock, 10);
    let tries = 14;
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..tries {
        let key = format!("k-race-{n}");
        let body = order_body(&format!("C-{n:04}"));
        if n % 2 == 0 {
            let first = first.clone();
            calls.spawn(async move {
                first
                    .call(Method::POST, "/api/v1/orders", Some(&key), Some(body))
                    .await
            });
        } else {
            let second = second.clone();
            calls.spawn(async move {
                second
                    .call_async("POST", "/api/v1/orders", Some(key), Some(body))
                    .await
                    .unwrap()
            });
        }
    }
    let mut created = BTreeSet::new();
    let mut refused = 0;
    while let Some(done) = calls.join_next().await {
        let (status, body) = done.unwrap();
        match status {
            201 => assert!(created.insert(body["id"].as_str().unwrap().to_string())),
            409 => refused += 1i64,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(created.len() as i64 + refused == tries);
    assert!(refused >= tries - stock, "{refused} refused of {tries}");
    first.tail.catch_up().await.unwrap();
    assert_eq!(chain.hq.read(|r| r.state().orders.len()), created.len());
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(10))
        .await;
    // Every order on both processes merged: no right was spent twice, nothing oversold.
    for node in [&chain.hq, &chain.a] {
        assert!(hq_rights(node) >= 0, "HQ's rights went negative");
        assert!(node.read(|r| r.state().available(&store_a(), &sku())) >= 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hq_process_killed_mid_stream_loses_no_acknowledged_order_and_comes_back_level() {
    let (_broker, chain, url) = chain_on_postgres().await;
    chain
        .a
        .submit(vec![Payload::StockReceive {
            store: store_a(),
            sku: sku(),
            qty: 200,
            reason: ReceiveReason::Delivery,
        }])
        .await
        .unwrap();
    let hq = chain.hq.clone();
    wait_for(
        Duration::from_secs(10),
        "HQ holds a larger allocation",
        || hq_rights(&hq) >= 20,
    )
    .await;
    let first = First::new(&chain, &url).await;
    let mut second = Second::start(&chain.path(), &url);

    // A stream of orders to the second process, killed once some are acknowledged.
    let port = second.port;
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = tokio::task::spawn_blocking(move || {
        for n in 0u64.. {
            let body = order_body(&format!("C-{n:04}"));
            match http(
                port,
                "POST",
                "/api/v1/orders",
                Some(&format!("k-stream-{n}")),
                Some(&body),
            ) {
                Some((201, placed)) => {
                    let _ = acked_tx.send(placed["id"].as_str().unwrap().to_string());
                }
                Some((status, body)) => panic!("unexpected {status}: {body}"),
                None => return n,
            }
        }
        unreachable!()
    });
    let mut acked = Vec::new();
    while acked.len() < 5 {
        acked.push(acked_rx.recv().await.unwrap());
    }
    second.kill();
    let sent = stream.await.unwrap();
    while let Ok(id) = acked_rx.try_recv() {
        acked.push(id);
    }

    // Everything it acknowledged is on the first process, once.
    first.tail.catch_up().await.unwrap();
    for id in &acked {
        let (status, read) = first
            .call(Method::GET, &format!("/api/v1/orders/{id}"), None, None)
            .await;
        assert_eq!(status, 200, "acknowledged order {id} lost: {read}");
    }
    let orders = chain.hq.read(|r| r.state().orders.len());
    assert!(
        orders >= acked.len() && orders as u64 <= sent,
        "{orders} orders, {} acked, {sent} sent",
        acked.len()
    );
    // The first takes orders meanwhile; the second comes back level with everything.
    let (status, during) = first
        .call(
            Method::POST,
            "/api/v1/orders",
            Some("k-during"),
            Some(order_body("C-9999")),
        )
        .await;
    assert_eq!(status, 201, "{during}");
    second.restart();
    for id in acked
        .iter()
        .chain([during["id"].as_str().unwrap().to_string()].iter())
    {
        let (status, read) = second
            .call("GET", &format!("/api/v1/orders/{id}"), None, None)
            .unwrap();
        assert_eq!(status, 200, "{id} on the restarted process: {read}");
    }
    let (status, again) = second
        .call(
            "POST",
            "/api/v1/orders",
            Some("k-stream-0"),
            Some(&order_body("C-0000")),
        )
        .unwrap();
    assert_eq!(
        (status, &again["id"]),
        (201, &json!(acked[0])),
        "keys survive the kill"
    );
    let (status, next) = second
        .call(
            "POST",
            "/api/v1/orders",
            Some("k-after"),
            Some(&order_body("C-0042")),
        )
        .unwrap();
    assert_eq!(
        status, 201,
        "the restarted process issues new orders: {next}"
    );
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(10))
        .await;
}
