//! Several real `storenode hq` processes on one PostgreSQL log and one mosquitto, with a store
//! syncing in this test process: every process answers the stores' links as the syncing one
//! sees them (and offline once nobody hears a store), and an order's Idempotency-Key sent to
//! two processes at once gets one order and the same answer from both.

mod pg_support;
mod sync_support;

use pg_support::http::{http, TOKEN};
use pg_support::PgCluster;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use storenode::domain::op::ReceiveReason;
use storenode::domain::{Payload, StoreId};
use storenode::store::Node;
use storenode::sync::{spawn_store_sync, StoreSyncConfig, StoreSyncHandle};
use sync_support::*;
use tokio::sync::watch;

/// One real `storenode hq` process; SIGKILLed on drop.
struct Hq {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
}

impl Hq {
    /// Start `name` in `dir` on the log at `url`; `sync` with the stores over `mqtt_port`.
    fn start(dir: &Path, name: &str, url: &str, mqtt_port: u16, sync: bool) -> Hq {
        Hq::start_with(dir, name, url, mqtt_port, sync, "")
    }

    fn start_with(
        dir: &Path,
        name: &str,
        url: &str,
        mqtt_port: u16,
        sync: bool,
        extra: &str,
    ) -> Hq {
        let port = free_port();
        let config = dir.join(format!("{name}.toml"));
        let text = format!(
            "role = \"hq\"\nchain = \"{CHAIN}\"\ndb = \"{}\"\nstores = [\"{}\", \"{}\"]\n\
             api_tokens = [\"{TOKEN}\"]\n{extra}\n[mqtt]\nhost = \"127.0.0.1\"\nport = {mqtt_port}\n\
             client_id = \"{name}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
             [pickup]\nqr_keys = [\"{}\"]\n[rate_limit]\nburst = 10000\nper_minute = 100000\n\
             [storage]\nurl = \"{url}\"\nsync = {sync}\n",
            dir.join(format!("{name}.db")).display(),
            store_a().as_str(),
            store_b().as_str(),
            "ab".repeat(32),
        );
        std::fs::write(&config, text).unwrap();
        let mut hq = Hq {
            child: None,
            port,
            config,
        };
        hq.restart();
        hq
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
    ) -> (u16, Value) {
        http(self.port, method, path, key, body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer from port {}", self.port))
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

impl Drop for Hq {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Poll `probe` (blocking calls) until it holds, within `within`.
async fn until(within: Duration, what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    loop {
        if tokio::task::block_in_place(&mut probe) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A store node syncing in this test process.
struct Store {
    node: Node,
    sync: StoreSyncHandle,
    _stop: watch::Sender<bool>,
}

fn start_store(dir: &Path, store: StoreId, mqtt_port: u16) -> Store {
    let node = Node::open(&dir.join(format!("{store}.db")), store.actor()).unwrap();
    let (stop, rx) = watch::channel(false);
    let mut cfg = StoreSyncConfig::new(CHAIN, store, "127.0.0.1", mqtt_port);
    cfg.retransmit_ms = 500;
    cfg.keepalive_s = 5;
    let sync = spawn_store_sync(node.clone(), cfg, rx);
    Store {
        node,
        sync,
        _stop: stop,
    }
}

/// The link fields of `store` in `GET /stores`.
fn link_of(hq: &Hq, store: &StoreId) -> (bool, Value, Value) {
    let rows = hq.get("/api/v1/stores");
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["store"] == json!(store.as_str()))
        .cloned()
        .unwrap();
    (
        row["online"] == json!(true),
        row["last_seen"].clone(),
        row["outbox"].clone(),
    )
}

/// `online` of `store` in `GET /availability`.
fn available_online(hq: &Hq, store: &StoreId) -> bool {
    let body = hq.get(&format!("/api/v1/availability?sku={}", sku().as_str()));
    body["stores"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["store"] == json!(store.as_str()) && r["online"] == json!(true))
}

/// A fresh database on the shared cluster, mosquitto, the syncing HQ process and an API-only
/// one, and store A (10 units received, HQ holding an allocation there) syncing.
struct Setup {
    _broker: Mosquitto,
    _dir: tempfile::TempDir,
    url: String,
    syncing: Hq,
    api_only: Hq,
    a: Store,
}

fn cluster() -> &'static PgCluster {
    static CLUSTER: std::sync::OnceLock<PgCluster> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(PgCluster::start)
}

async fn setup(received: u32) -> Setup {
    let url = cluster().new_database().await;
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let syncing = Hq::start(dir.path(), "hq1", &url, broker.port, true);
    let api_only = Hq::start(dir.path(), "hq2", &url, broker.port, false);
    let (status, body) = syncing.call(
        "PUT",
        &format!("/api/v1/catalog/{}", sku().as_str()),
        None,
        Some(
            &json!({"name": "Green tea", "ean": "4006381333931", "price_cents": 250,
                     "vat_bp": 1000}),
        ),
    );
    assert_eq!(status, 200, "{body}");
    let a = start_store(dir.path(), store_a(), broker.port);
    let node = a.node.clone();
    wait_for(
        Duration::from_secs(10),
        "the catalog reaches the store",
        || node.read(|r| r.state().catalog.contains(&sku())),
    )
    .await;
    a.node
        .submit(vec![Payload::StockReceive {
            store: store_a(),
            sku: sku(),
            qty: received,
            reason: ReceiveReason::Delivery,
        }])
        .await
        .unwrap();
    Setup {
        _broker: broker,
        _dir: dir,
        url,
        syncing,
        api_only,
        a,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hq_process_shows_the_links_the_syncing_one_sees_and_offline_once_nobody_hears() {
    let s = setup(10).await;
    let both = [&s.syncing, &s.api_only];
    until(Duration::from_secs(10), "both show store A online", || {
        both.iter()
            .all(|hq| link_of(hq, &store_a()).0 && available_online(hq, &store_a()))
    })
    .await;
    // Store B never connected: offline on both, never seen.
    for hq in both {
        let (online, seen, _) = link_of(hq, &store_b());
        assert!(
            !online && seen.is_null(),
            "store B on port {}: {seen}",
            hq.port
        );
        assert!(!available_online(hq, &store_b()));
    }
    // Both answer from the same row: asked one after the other, in a quiet moment, the same.
    until(
        Duration::from_secs(10),
        "both show the same last_seen and outbox",
        || link_of(&s.syncing, &store_a()) == link_of(&s.api_only, &store_a()),
    )
    .await;
    let (_, seen, _) = link_of(&s.api_only, &store_a());
    assert!(seen.as_u64().is_some_and(|ms| ms > 0), "{seen}");

    // The store's uplink cut: its Last Will reaches the syncing process, and both say so.
    s.a.sync.set_link(false);
    until(Duration::from_secs(10), "both show store A offline", || {
        both.iter()
            .all(|hq| !link_of(hq, &store_a()).0 && !available_online(hq, &store_a()))
    })
    .await;
    s.a.sync.set_link(true);
    until(
        Duration::from_secs(10),
        "both show store A online again",
        || both.iter().all(|hq| link_of(hq, &store_a()).0),
    )
    .await;

    // The syncing process dies: nobody hears the store any more, so the other stops
    // answering online (within the rows' staleness bound), and keeps its last_seen.
    let mut syncing = s.syncing;
    syncing.kill();
    until(
        Duration::from_secs(15),
        "the API-only process shows store A offline",
        || !link_of(&s.api_only, &store_a()).0 && !available_online(&s.api_only, &store_a()),
    )
    .await;
    assert!(link_of(&s.api_only, &store_a()).1.as_u64().is_some());
    // Back again, it publishes the store's link anew.
    syncing.restart();
    until(
        Duration::from_secs(15),
        "store A online again on both",
        || link_of(&syncing, &store_a()).0 && link_of(&s.api_only, &store_a()).0,
    )
    .await;
}

/// What HQ can sell at store A, as `process` answers.
fn hq_can_sell(hq: &Hq) -> i64 {
    let body = hq.get(&format!("/api/v1/availability?sku={}", sku().as_str()));
    body["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["store"] == json!(store_a().as_str()))
        .and_then(|r| r["hq_can_sell"].as_i64())
        .unwrap_or(0)
}

fn order_body(customer: &str) -> Value {
    json!({
        "store": store_a().as_str(),
        "customer": {"id": customer},
        "lines": [{"sku": sku().as_str(), "qty": 1}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_sent_to_two_processes_at_once_gets_one_order_and_one_answer() {
    let s = setup(200).await;
    until(
        Duration::from_secs(20),
        "HQ holds 20 units at store A",
        || hq_can_sell(&s.api_only) >= 20,
    )
    .await;
    let tries = 16;
    for n in 0..tries {
        let key = format!("k-race-{n}");
        let body = order_body(&format!("C-{n:04}"));
        let gate = std::sync::Arc::new(std::sync::Barrier::new(2));
        let calls: Vec<_> = [s.syncing.port, s.api_only.port]
            .into_iter()
            .map(|port| {
                let (gate, key, body) = (gate.clone(), key.clone(), body.clone());
                std::thread::spawn(move || {
                    gate.wait();
                    http(port, "POST", "/api/v1/orders", Some(&key), Some(&body))
                })
            })
            .collect();
        let answers: Vec<(u16, Value)> = calls
            .into_iter()
            .map(|c| c.join().unwrap().expect("an answer"))
            .collect();
        assert_eq!(answers[0].0, 201, "try {n}: {:?}", answers);
        assert_eq!(
            answers[0], answers[1],
            "try {n}: both answer the first answer"
        );
    }
    // One order per key in the shared log, whichever process won each race.
    let config = storenode::store::pg::parse_url(&s.url).unwrap();
    let client = storenode::store::pg::connect(&config).await.unwrap();
    let orders: i64 = client
        .query_one("SELECT count(*) FROM ops WHERE kind = 'order_place'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orders, tries);
    let a = s.a.node.clone();
    wait_for(
        Duration::from_secs(10),
        "every order reaches the store",
        || a.read(|r| r.state().orders.len()) == tries as usize,
    )
    .await;
}

/// The shop's webhook receiver: records every delivery as it arrives (which process sent it,
/// by the path each process is configured with, and the event id), and answers only while
/// `open` is true; until then each request waits.
#[derive(Default)]
struct Shop {
    arrived: std::sync::Mutex<Vec<(String, String)>>,
    answered: std::sync::Mutex<Vec<(String, String)>>,
}

async fn shop_server(shop: std::sync::Arc<Shop>, open: watch::Receiver<bool>) -> u16 {
    use axum::extract::Path as UrlPath;
    let app = axum::Router::new().route(
        "/hook/{who}",
        axum::routing::post(
            move |UrlPath(who): UrlPath<String>, headers: axum::http::HeaderMap| {
                let (shop, mut open) = (shop.clone(), open.clone());
                async move {
                    let id = headers
                        .get("storenode-event-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    shop.arrived.lock().unwrap().push((who.clone(), id.clone()));
                    let _ = open.wait_for(|o| *o).await;
                    shop.answered.lock().unwrap().push((who, id));
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_jobs_in_postgres_are_sent_at_least_once_when_their_sender_is_killed() {
    let url = cluster().new_database().await;
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let shop = std::sync::Arc::new(Shop::default());
    let (open, opened) = watch::channel(false);
    let shop_port = shop_server(shop.clone(), opened).await;
    let webhook = |who: &str| {
        format!(
            "[webhook]\nurl = \"http://127.0.0.1:{shop_port}/hook/{who}\"\n\
             secret = \"whsec-test-0123456789\"\nretry_backoff_ms_max = 500\n"
        )
    };
    let mut hq = [
        Hq::start_with(dir.path(), "hq1", &url, broker.port, true, &webhook("hq1")),
        Hq::start_with(dir.path(), "hq2", &url, broker.port, false, &webhook("hq2")),
    ];
    let (status, body) = hq[0].call(
        "PUT",
        &format!("/api/v1/catalog/{}", sku().as_str()),
        None,
        Some(
            &json!({"name": "Green tea", "ean": "4006381333931", "price_cents": 250,
                     "vat_bp": 1000}),
        ),
    );
    assert_eq!(status, 200, "{body}");
    let a = start_store(dir.path(), store_a(), broker.port);
    let node = a.node.clone();
    wait_for(
        Duration::from_secs(10),
        "the catalog reaches the store",
        || node.read(|r| r.state().catalog.contains(&sku())),
    )
    .await;
    a.node
        .submit(vec![Payload::StockReceive {
            store: store_a(),
            sku: sku(),
            qty: 100,
            reason: ReceiveReason::Delivery,
        }])
        .await
        .unwrap();
    until(
        Duration::from_secs(20),
        "HQ holds 4 units at store A",
        || hq_can_sell(&hq[1]) >= 4,
    )
    .await;
    // Orders placed and cancelled on both processes: one `order.cancelled` job each, queued
    // with the cancel's op by whichever process stored it.
    let mut orders = Vec::new();
    for n in 0..4usize {
        let (placing, cancelling) = (&hq[n % 2], &hq[(n + 1) % 2]);
        let (status, placed) = placing.call(
            "POST",
            "/api/v1/orders",
            Some(&format!("k-hook-{n}")),
            Some(&order_body(&format!("C-{n:04}"))),
        );
        assert_eq!(status, 201, "{placed}");
        let id = placed["id"].as_str().unwrap().to_string();
        let (status, body) =
            cancelling.call("POST", &format!("/api/v1/orders/{id}/cancel"), None, None);
        assert_eq!(status, 200, "{body}");
        orders.push(id);
    }
    // Both processes send; the shop holds every delivery unanswered. Kill the process whose
    // delivery arrived first, mid-send, holding its job's row.
    until(Duration::from_secs(15), "a delivery arrives", || {
        !shop.arrived.lock().unwrap().is_empty()
    })
    .await;
    let (who, held) = shop.arrived.lock().unwrap()[0].clone();
    let victim = usize::from(who == "hq2");
    hq[victim].kill();
    open.send_replace(true);
    let config = storenode::store::pg::parse_url(&url).unwrap();
    let client = storenode::store::pg::connect(&config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let sent = loop {
        let rows = client
            .query(
                "SELECT event_id, type, body, delivered_by FROM hq_webhook_jobs
                 WHERE delivered_at IS NOT NULL",
                &[],
            )
            .await
            .unwrap();
        if rows.len() == orders.len() {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} delivered",
            rows.len(),
            orders.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Every order's cancellation was answered by the shop, the killed one's job included,
    // sent again by the survivor.
    let answered = shop.answered.lock().unwrap().clone();
    for row in &sent {
        let (event, kind, body): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(kind, "order.cancelled");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(orders.contains(&body["order"].as_str().unwrap().to_string()));
        assert!(
            answered.iter().any(|(_, id)| id == &event),
            "{event} never answered"
        );
    }
    let survivor = if victim == 0 { "hq2" } else { "hq1" };
    assert!(
        answered.iter().any(|(w, id)| w == survivor && id == &held),
        "the killed process's job {held} was sent again by {survivor}: {answered:?}"
    );
    let total: i64 = client
        .query_one("SELECT count(*) FROM hq_webhook_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, orders.len() as i64, "one job per event");
    // The killed process restarts level: nothing left to send, nothing queued twice.
    hq[victim].restart();
    let (status, body) =
        hq[victim].call("GET", &format!("/api/v1/orders/{}", orders[0]), None, None);
    assert_eq!(status, 200, "{body}");
    let total: i64 = client
        .query_one(
            "SELECT count(*) FROM hq_webhook_jobs WHERE delivered_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 0);
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stores_link_row_is_taken_over_only_with_fresher_news_or_once_its_holder_is_silent() {
    use storenode::store::pg::link::{LinkRow, LinkWriter, Links};
    let url = cluster().new_database().await;
    let config = storenode::store::pg::parse_url(&url).unwrap();
    let mut client = storenode::store::pg::connect(&config).await.unwrap();
    storenode::store::pg::schema::migrate(&mut client)
        .await
        .unwrap();
    let row = |online: bool, seen: u64| LinkRow {
        store: "norte".to_string(),
        online,
        last_seen_ms: Some(seen),
        outbox: 3,
        lag_ops: 1,
    };
    let (serving, stale) = (
        LinkWriter::new(&url, "hq-a:1".to_string()).unwrap(),
        LinkWriter::new(&url, "hq-b:2".to_string()).unwrap(),
    );
    let links = Links::new(&url).unwrap();
    assert_eq!(serving.publish(&[row(true, 2_000)]).await.unwrap(), 1);
    // A process with older news of the store (it served it before) cannot overwrite the row.
    assert_eq!(stale.publish(&[row(false, 1_000)]).await.unwrap(), 0);
    links.refresh().await.unwrap();
    assert_eq!(links.get("norte"), row(true, 2_000));
    // With fresher news it can (the store moved to it), and last_seen never goes back.
    assert_eq!(stale.publish(&[row(true, 3_000)]).await.unwrap(), 1);
    assert_eq!(serving.publish(&[row(false, 2_500)]).await.unwrap(), 0);
    links.refresh().await.unwrap();
    assert_eq!(links.get("norte"), row(true, 3_000));
    // Its holder silent past the bound: the row reads offline and the other may take it.
    client
        .execute(
            "UPDATE hq_store_link SET updated_at = now() - interval '1 minute'",
            &[],
        )
        .await
        .unwrap();
    links.refresh().await.unwrap();
    assert_eq!(links.get("norte"), row(false, 3_000));
    assert_eq!(serving.publish(&[row(true, 2_500)]).await.unwrap(), 1);
    links.refresh().await.unwrap();
    assert_eq!(links.get("norte"), row(true, 3_000));
    // A store without a row is offline, never seen.
    assert!(!links.get("sur").online);
    assert_eq!(links.get("sur").last_seen_ms, None);
}
