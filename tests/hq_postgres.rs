//! HQ with its op log on PostgreSQL (`[storage] url`): the sync scenarios of the SQLite HQ,
//! unchanged, over a real mosquitto and a real PostgreSQL cluster started by the tests; the
//! log in PostgreSQL holding every acknowledged op once; a lost HQ file restored from it;
//! PostgreSQL down at start and mid-run; a newer schema refused.

mod pg_support;
mod sync_support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use pg_support::PgCluster;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use storenode::app::HqSyncView;
use storenode::config::Config;
use storenode::domain::op::ProfilePatch;
use storenode::domain::{ActorId, Payload};
use storenode::hq::{HqSettings, HqState};
use storenode::store::pg::{self, PgError};
use storenode::store::Node;
use sync_support::*;
use tower::ServiceExt;

/// One cluster for the scenarios of this binary (a database per chain); stopped by its
/// watcher when the binary exits.
fn shared_cluster() -> &'static PgCluster {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(PgCluster::start);
    hq_on_postgres(cluster.url("postgres"));
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_sales_flow_with_hq_on_postgres() {
    shared_cluster();
    let broker = Mosquitto::start();
    orders_and_sales_flow_within_a_second(broker.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_never_oversells_and_converges_with_hq_on_postgres() {
    shared_cluster();
    let broker = Mosquitto::start();
    a_cut_link_keeps_both_sides_selling_without_oversell(broker.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_stream_loses_nothing_with_hq_on_postgres() {
    shared_cluster();
    let mut broker = Mosquitto::start();
    a_broker_killed_mid_stream_loses_nothing(&mut broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_data_follows_the_customer_with_hq_on_postgres() {
    shared_cluster();
    let broker = Mosquitto::start();
    customer_data_follows_the_customer_into_a_stores_scope(broker.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_and_counts_trigger_reactions_with_hq_on_postgres() {
    shared_cluster();
    let broker = Mosquitto::start();
    cancellations_and_counts_trigger_the_right_reactions(broker.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_every_node_resumes_sync_with_hq_on_postgres() {
    shared_cluster();
    let broker = Mosquitto::start();
    a_restart_of_every_node_resumes_where_sync_stopped(broker.port).await;
}

/// Ops in the shared log, and in HQ's SQLite file.
async fn op_counts(cluster: &PgCluster, dir: &std::path::Path, hq: &Node) -> (u64, u64) {
    let url = std::fs::read_to_string(dir.join("hq.pgurl")).unwrap();
    let db = url.rsplit('/').next().unwrap().to_string();
    let client = cluster.client(&db).await;
    let shared = pg::log::op_count(&client).await.unwrap();
    let local = hq.query(Node::op_count).await.unwrap();
    (shared, local)
}

/// Some of everything: sales at both stores, an order placed at HQ for each.
async fn trade(chain: &Chain) {
    for (node, store) in [(&chain.a, store_a()), (&chain.b, store_b())] {
        node.submit(vec![sale(&store, 2)]).await.unwrap();
        chain
            .hq
            .submit(vec![order(&store, "c-1", 1)])
            .await
            .unwrap();
    }
    for (node, store) in [(&chain.a, store_a()), (&chain.b, store_b())] {
        chain.converged(&store, node, Duration::from_secs(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_op_is_in_postgres_once_and_a_lost_hq_file_is_restored_from_it() {
    let cluster = shared_cluster();
    let broker = Mosquitto::start();
    let chain = Chain::start(broker.port).await;
    chain.seed().await;
    trade(&chain).await;
    let (status, first) = place_order(&hq_state(&chain), "k-restore").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let orders = chain.hq.read(|r| r.state().orders.len());
    let dir = chain.path();
    let (shared, local) = op_counts(cluster, &dir, &chain.hq).await;
    assert_eq!(shared, local, "the shared log holds what HQ's file holds");
    let digest = chain.hq.read(|r| r.digest());
    let hq_seq = chain.hq.read(|r| r.next_seq());
    let dir = chain.close().await;
    for name in ["hq.db", "hq.db-wal", "hq.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(name));
    }
    let chain = Chain::open(dir, broker.port).await;
    assert_eq!(
        chain.hq.read(|r| r.digest()),
        digest,
        "restored from PostgreSQL"
    );
    assert_eq!(chain.hq.read(|r| r.next_seq()), hq_seq);
    let (status, again) = place_order(&hq_state(&chain), "k-restore").await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], first["id"], "the key outlived the file");
    assert_eq!(chain.hq.read(|r| r.state().orders.len()), orders);
    trade(&chain).await;
    let dir = chain.path();
    let (shared, local) = op_counts(cluster, &dir, &chain.hq).await;
    assert_eq!(shared, local);
    assert_no_loss_no_double(&chain).await;
}

/// HQ's SQLite file as it is now, beside it under `tag` (the chain closed: nothing in flight).
fn keep_cache(dir: &std::path::Path, tag: &str) {
    for name in ["hq.db", "hq.db-wal"] {
        let from = dir.join(name);
        if from.exists() {
            std::fs::copy(&from, dir.join(format!("{tag}-{name}"))).unwrap();
        }
    }
}

/// Put back the copy `keep_cache` made: the cache loses every commit since.
fn restore_cache(dir: &std::path::Path, tag: &str) {
    for name in ["hq.db", "hq.db-wal", "hq.db-shm"] {
        let _ = std::fs::remove_file(dir.join(name));
        let kept = dir.join(format!("{tag}-{name}"));
        if kept.exists() {
            std::fs::rename(&kept, dir.join(name)).unwrap();
        }
    }
}

/// HQ's cache commits at `synchronous=NORMAL` (PostgreSQL holds the durable copy), so a power
/// cut may take its last commits, acknowledged ones included. Simulated by putting back an
/// older copy of the file: at the next open it catches up from the log, the key of an order
/// placed after the copy still holds, and sync resumes with nothing lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hq_cache_behind_postgres_after_a_power_cut_catches_up_from_the_log() {
    let cluster = shared_cluster();
    let broker = Mosquitto::start();
    let chain = Chain::start(broker.port).await;
    let synchronous: i64 = chain
        .hq
        .write(|tx| tx.query_row("PRAGMA synchronous", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(synchronous, 1, "the cache's writer runs at NORMAL");
    chain.seed().await;
    trade(&chain).await;
    let dir = chain.close().await;
    keep_cache(dir.path(), "before");
    let chain = Chain::open(dir, broker.port).await;
    trade(&chain).await;
    let (status, first) = place_order(&hq_state(&chain), "k-after-copy").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let digest = chain.hq.read(|r| r.digest());
    let hq_seq = chain.hq.read(|r| r.next_seq());
    let dir = chain.close().await;
    restore_cache(dir.path(), "before");
    let url = std::fs::read_to_string(dir.path().join("hq.pgurl")).unwrap();
    let (hq, restored) = pg::open_node(&dir.path().join("hq.db"), ActorId::hq(), &url, None)
        .await
        .unwrap();
    assert!(restored.pulled > 0, "the copy was behind: {restored:?}");
    tokio::task::spawn_blocking(move || hq.close_blocking())
        .await
        .unwrap()
        .unwrap();
    let chain = Chain::open(dir, broker.port).await;
    assert_eq!(chain.hq.read(|r| r.digest()), digest, "level with the log");
    assert_eq!(chain.hq.read(|r| r.next_seq()), hq_seq);
    let (status, again) = place_order(&hq_state(&chain), "k-after-copy").await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], first["id"], "the key came back from the log");
    for (node, store) in [(&chain.a, store_a()), (&chain.b, store_b())] {
        node.submit(vec![sale(&store, 1)]).await.unwrap();
        chain.converged(&store, node, Duration::from_secs(10)).await;
    }
    let dir = chain.path();
    let (shared, local) = op_counts(cluster, &dir, &chain.hq).await;
    assert_eq!(shared, local);
    assert_no_loss_no_double(&chain).await;
}

fn hq_state(chain: &Chain) -> HqState {
    let text = format!(
        "role = \"hq\"\nchain = \"acme\"\ndb = \"unused.db\"\nstores = [\"norte\", \"sur\"]\n\
         api_tokens = [\"{TOKEN}\"]\n[mqtt]\nhost = \"127.0.0.1\"\nport = 1\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[pickup]\nqr_keys = [\"{}\"]\n\
         [storage]\nurl = \"postgres://storenode@127.0.0.1:1/unused\"\n",
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

const TOKEN: &str = "shop-token-123";

async fn place_order(state: &HqState, key: &str) -> (StatusCode, Value) {
    let body = json!({
        "store": store_a().as_str(),
        "customer": {"id": "C-0001"},
        "lines": [{"sku": sku().as_str(), "qty": 1}],
    });
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/orders")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Body::from(body.to_string()))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_mid_run_answers_503_acks_nothing_and_everything_resumes_when_it_returns() {
    let cluster = PgCluster::start();
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hq.pgurl"), cluster.url("postgres")).unwrap();
    let chain = Chain::open(dir, broker.port).await;
    chain.seed().await;
    let state = hq_state(&chain);
    let (status, body) = place_order(&state, "k-before").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    cluster.stop();
    let (status, body) = place_order(&state, "k-during").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "storage_unavailable");
    let before = chain.hq.read(|r| r.digest());
    let a_seq = chain
        .hq
        .read(|r| r.version().contiguous(&store_a().actor()));
    chain.a.submit(vec![sale(&store_a(), 1)]).await.unwrap();
    // HQ refuses to commit the store's sale while the log is down: its state is unchanged,
    // so nothing was acknowledged to the store.
    let refused = chain.hq.submit(vec![order(&store_a(), "c-2", 1)]).await;
    let err = refused.unwrap_err();
    assert!(
        matches!(&err, storenode::store::SubmitError::Store(e) if e.is_storage_unavailable()),
        "{err}"
    );
    assert_eq!(chain.hq.read(|r| r.digest()), before);
    assert_eq!(
        chain
            .hq
            .read(|r| r.version().contiguous(&store_a().actor())),
        a_seq
    );
    let a_sync = chain.a_sync.clone();
    wait_for(
        Duration::from_secs(5),
        "store a's sale waits unacked",
        || a_sync.status().outbox > 0,
    )
    .await;

    cluster.start_again();
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(15))
        .await;
    wait_for(Duration::from_secs(10), "store a's outbox drains", || {
        a_sync.status().outbox == 0
    })
    .await;
    let (status, body) = place_order(&state, "k-during").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The order is HQ's op for store a: wait for it to reach the store before comparing logs.
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(15))
        .await;
    let client = cluster.client("postgres").await;
    let shared = pg::log::op_count(&client).await.unwrap();
    let local = chain.hq.query(Node::op_count).await.unwrap();
    assert_eq!(shared, local, "nothing lost, nothing twice");
    assert_no_loss_no_double(&chain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_at_start_is_waited_for_and_a_bounded_wait_names_the_server() {
    let cluster = PgCluster::start();
    cluster.stop();
    let dir = tempfile::tempdir().unwrap();
    let url = cluster.url("postgres");
    let bounded = pg::open_node(
        &dir.path().join("a.db"),
        ActorId::hq(),
        &url,
        Some(Duration::ZERO),
    )
    .await
    .err()
    .expect("refused while down");
    let message = bounded.to_string();
    assert!(matches!(bounded, PgError::Unreachable { .. }), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{}/postgres", cluster.port)),
        "{message}"
    );
    let db = dir.path().join("hq.db");
    let waiting = tokio::spawn(async move { pg::open_node(&db, ActorId::hq(), &url, None).await });
    cluster.start_again();
    let (node, restored) = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("opened once PostgreSQL answers")
        .unwrap()
        .unwrap();
    assert_eq!(restored, pg::Restored::default());
    node.submit(vec![Payload::CatalogPut {
        sku: sku(),
        ean: storenode::domain::Ean13::parse("4006381333931").unwrap(),
        name: "Green tea".into(),
        price_cents: 250,
        vat_bp: 1000,
    }])
    .await
    .unwrap();
    let client = cluster.client("postgres").await;
    assert_eq!(pg::log::op_count(&client).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_from_a_newer_binary_is_refused_untouched() {
    let cluster = shared_cluster();
    let url = {
        let client = cluster.client("postgres").await;
        client
            .batch_execute("CREATE DATABASE newer_schema")
            .await
            .unwrap();
        cluster.url("newer_schema")
    };
    let dir = tempfile::tempdir().unwrap();
    let (node, _) = pg::open_node(&dir.path().join("a.db"), ActorId::hq(), &url, None)
        .await
        .unwrap();
    drop(node);
    let client = cluster.client("newer_schema").await;
    client
        .batch_execute("INSERT INTO schema_version (version, name) VALUES (99, 'future')")
        .await
        .unwrap();
    let refused = pg::open_node(&dir.path().join("b.db"), ActorId::hq(), &url, None)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(refused, PgError::NewerSchema { found: 99, supported } if supported == pg::schema::latest_version()),
        "{refused}"
    );
    assert!(!dir.path().join("b.db").exists(), "nothing written");
}

/// Ops in the shared log of `dir`'s chain whose stored bytes contain `needle`.
async fn ops_containing(cluster: &PgCluster, dir: &std::path::Path, needle: &str) -> i64 {
    let url = std::fs::read_to_string(dir.join("hq.pgurl")).unwrap();
    let db = url.rsplit('/').next().unwrap().to_string();
    let client = cluster.client(&db).await;
    client
        .query_one(
            "SELECT count(*) FROM ops WHERE position($1::bytea in body) > 0",
            &[&needle.as_bytes()],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_at_hq_leaves_no_personal_data_in_postgres() {
    const EMAIL: &str = "erase.me@example.com";
    let cluster = shared_cluster();
    let broker = Mosquitto::start();
    let chain = Chain::start(broker.port).await;
    let customer = storenode::domain::CustomerId::parse("C-erase-1").unwrap();
    chain
        .hq
        .submit(vec![Payload::CustomerUpdate {
            customer: customer.clone(),
            patch: ProfilePatch {
                name: Some("Erase Me".into()),
                email: Some(EMAIL.into()),
                ..Default::default()
            },
        }])
        .await
        .unwrap();
    let dir = chain.path();
    // Positive control: the scan finds the datum before the erasure.
    assert_eq!(ops_containing(cluster, &dir, EMAIL).await, 1);
    chain
        .hq
        .submit(vec![Payload::CustomerErase { customer }])
        .await
        .unwrap();
    assert_eq!(ops_containing(cluster, &dir, EMAIL).await, 0);
    assert_eq!(ops_containing(cluster, &dir, "Erase Me").await, 0);
}
