//! Exactly once and operability across several real `storenode hq` processes on one
//! PostgreSQL log: a store's request for rights back that the lease holder ingested and died
//! before answering is answered by the new holder, once (the "answered" mark lives in
//! PostgreSQL, not in a process); a process with another HQ signing key, or with the
//! `[mqtt] client_id` of a live process, refuses to start and says how to fix it.

mod pg_support;
mod sync_support;

use pg_support::hq::{leases, Hq};
use pg_support::http::http;
use pg_support::pair::{holder_of_a, restart_until_spread, Pair};
use pg_support::PgCluster;
use std::time::{Duration, Instant};
use storenode::domain::op::ReceiveReason;
use storenode::domain::{ActorId, Payload, StoreId};
use storenode::store::Node;
use sync_support::*;

/// Poll `probe` (queries on PostgreSQL) until it holds, within `within`.
async fn pg_until<F, Fut>(within: Duration, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !probe().await {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the shared log holds `actor`'s op `seq`.
async fn logged(pg: &tokio_postgres::Client, actor: &ActorId, seq: u64) -> bool {
    pg.query_opt(
        "SELECT 1 FROM ops WHERE actor = $1 AND seq = $2",
        &[&actor.as_str(), &(seq as i64)],
    )
    .await
    .unwrap()
    .is_some()
}

/// HQ's transfer answering the request `(actor, seq)`, once some process answered it.
async fn answer_of(pg: &tokio_postgres::Client, actor: &ActorId, seq: u64) -> Option<u64> {
    pg.query_opt(
        "SELECT answer_seq FROM hq_rights_answers WHERE actor = $1 AND seq = $2",
        &[&actor.as_str(), &(seq as i64)],
    )
    .await
    .unwrap()
    .and_then(|r| r.get::<_, Option<i64>>(0))
    .map(|s| s as u64)
}

/// HQ's transfers of rights back to stores in the shared log.
async fn hq_transfers(pg: &tokio_postgres::Client) -> i64 {
    pg.query_one(
        "SELECT count(*) FROM ops WHERE actor = 'hq' AND kind = 'stock_transfer'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Store `s` asks HQ for `qty` rights back; the request's seq once it is in the shared log.
async fn ask_back(node: &Node, s: &StoreId, qty: u32, pg: &tokio_postgres::Client) -> u64 {
    let submitted = node
        .submit(vec![Payload::RightsReturnRequested {
            store: s.clone(),
            sku: sku(),
            qty,
        }])
        .await
        .unwrap();
    let (actor, seq) = (s.actor(), submitted.ops[0].seq);
    pg_until(
        Duration::from_secs(20),
        "the request reaches the log",
        || logged(pg, &actor, seq),
    )
    .await;
    seq
}

/// Backends of the database waiting for a lock (an HQ group queued behind `hq_actor`).
async fn waiting_on_locks(pg: &tokio_postgres::Client) -> i64 {
    pg.query_one(
        "SELECT count(*) FROM pg_stat_activity
         WHERE wait_event_type = 'Lock' AND datname = current_database()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_dead_holder_ingested_and_never_answered_is_answered_once_by_the_new_holder()
{
    let cluster = PgCluster::start();
    let url = cluster.new_database().await;
    let pg = storenode::store::pg::connect(&storenode::store::pg::parse_url(&url).unwrap())
        .await
        .unwrap();
    let Pair {
        nodes,
        stores,
        mut hqs,
        dir: _dir,
        broker: _broker,
    } = Pair::start(&url).await;

    // Each store receives 10 units and lends 3 of them to HQ.
    for ((node, _, _), s) in nodes.iter().zip(&stores) {
        let lent = node
            .submit(vec![
                Payload::StockReceive {
                    store: s.clone(),
                    sku: sku(),
                    qty: 10,
                    reason: ReceiveReason::Delivery,
                },
                Payload::StockTransfer {
                    store: s.clone(),
                    sku: sku(),
                    to: ActorId::hq(),
                    qty: 3,
                },
            ])
            .await
            .unwrap();
        let (actor, seq) = (s.actor(), lent.ops[1].seq);
        pg_until(Duration::from_secs(20), "the loan reaches the log", || {
            logged(&pg, &actor, seq)
        })
        .await;
    }
    let (victim, survivor, _) = holder_of_a(&url, &hqs).await;

    // Every group issuing HQ's ops now queues behind this lock: a process can ingest a
    // request, and blocks when it answers.
    let blocker = storenode::store::pg::connect(&storenode::store::pg::parse_url(&url).unwrap())
        .await
        .unwrap();
    blocker
        .batch_execute("BEGIN; SELECT actor FROM hq_actor WHERE actor = 'hq' FOR UPDATE")
        .await
        .unwrap();
    let (a, _, _) = &nodes[0];
    let asked_a = ask_back(a, &store_a(), 2, &pg).await;
    pg_until(
        Duration::from_secs(20),
        "store a's holder answers",
        || async { waiting_on_locks(&pg).await >= 1 },
    )
    .await;
    // The survivor's file holds store a's request before it answers one of its own store
    // (a per-process mark would then move past store a's request for good).
    let survivor_file = rusqlite::Connection::open(hqs[survivor].db()).unwrap();
    pg_until(
        Duration::from_secs(20),
        "the survivor tails the request",
        || {
            let found = survivor_file
                .query_row(
                    "SELECT count(*) FROM ops WHERE actor = ?1 AND seq = ?2",
                    rusqlite::params![store_a().actor().as_str(), asked_a as i64],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap_or(0);
            async move { found == 1 }
        },
    )
    .await;
    let (b, _, _) = &nodes[1];
    let asked_b = ask_back(b, &store_b(), 1, &pg).await;
    pg_until(Duration::from_secs(20), "both holders answer", || async {
        waiting_on_locks(&pg).await >= 2
    })
    .await;
    assert_eq!(hq_transfers(&pg).await, 0, "nobody answered yet");

    hqs[victim].kill();
    let killed = Instant::now();
    blocker.batch_execute("ROLLBACK").await.unwrap();
    drop(blocker);

    // The survivor takes store a's lease and answers its request, once.
    pg_until(
        Duration::from_secs(30),
        "store a's request answered",
        || async { answer_of(&pg, &store_a().actor(), asked_a).await.is_some() },
    )
    .await;
    eprintln!("answered {:?} after the SIGKILL", killed.elapsed());
    let now = leases(&url).await;
    assert_eq!(now[store_a().as_str()].0, hqs[survivor].name, "{now:?}");
    let answer_a = answer_of(&pg, &store_a().actor(), asked_a).await.unwrap();
    let answer_b = answer_of(&pg, &store_b().actor(), asked_b).await;
    assert!(answer_b.is_some_and(|b| b != answer_a), "{answer_b:?}");
    assert_eq!(hq_transfers(&pg).await, 2, "one answer per request");
    let n = a.clone();
    wait_for(
        Duration::from_secs(20),
        "the answer reaches store a",
        || n.read(|r| r.version().contains(&ActorId::hq(), answer_a)),
    )
    .await;

    // The killed process comes back (its file holds the request, its mark below it) and
    // takes a store: it answers nothing again. A later request of that store is answered
    // after its rescan, once.
    let back = restart_until_spread(&url, &mut hqs[victim]).await;
    let (returned, _) = back
        .iter()
        .find(|(_, (h, _))| *h == hqs[victim].name)
        .unwrap();
    let i = usize::from(returned != store_a().as_str());
    let (node, _, _) = &nodes[i];
    let again = ask_back(node, &stores[i], 1, &pg).await;
    pg_until(
        Duration::from_secs(30),
        "the later request answered",
        || async { answer_of(&pg, &stores[i].actor(), again).await.is_some() },
    )
    .await;
    assert_eq!(hq_transfers(&pg).await, 3, "nothing answered twice");
    let rows: i64 = pg
        .query_one(
            "SELECT count(*) FROM hq_rights_answers WHERE answer_seq IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_with_another_signing_key_refuses_to_start_and_names_the_key_file() {
    let cluster = PgCluster::start();
    let url = cluster.new_database().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = free_port(); // nothing listens: sync keeps trying, the checks come first
    let _first = Hq::start(dir.path(), "hq-one", broker, &url);
    // hq-two makes a key of its own on first start.
    let other = Hq::configure(dir.path(), "hq-two", broker, &url);
    let (status, stderr) = other.run_refused(Duration::from_secs(20));
    assert!(!status.success());
    let key_file = storenode::signing::HqKey::path_for(&other.db());
    assert!(
        stderr.contains("copy the key file") && stderr.contains(&key_file.display().to_string()),
        "{stderr}"
    );
    // With the shared key it starts.
    pg_support::hq::share_hq_key(dir.path(), &other.db());
    let mut other = other;
    other.restart();
    let (status, _) = http(other.port, "GET", "/api/v1/stores", None, None).unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_live_process_with_the_same_client_id_refuses_until_the_first_is_gone() {
    let cluster = PgCluster::start();
    let url = cluster.new_database().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = free_port();
    let mut first = Hq::start(dir.path(), "hq-one", broker, &url);
    // Same client id, another file and port (its config names hq-one too).
    let twin_dir = tempfile::tempdir().unwrap();
    let twin = Hq::configure(twin_dir.path(), "hq-one", broker, &url);
    pg_support::hq::share_hq_key(dir.path(), &twin.db());
    let (status, stderr) = twin.run_refused(Duration::from_secs(30));
    assert!(!status.success());
    assert!(
        stderr.contains("client_id \"hq-one\"") && stderr.contains("its own client_id"),
        "{stderr}"
    );
    // Once the first is gone (SIGKILL: its members row expires), the name is free.
    first.kill();
    let mut twin = twin;
    twin.restart();
    let (status, _) = http(twin.port, "GET", "/api/v1/stores", None, None).unwrap();
    assert_eq!(status, 200);
}
