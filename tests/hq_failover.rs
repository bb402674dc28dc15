//! Failover of the syncing role: two real `storenode hq` processes, both syncing, on one
//! PostgreSQL log and one real mosquitto, two store nodes. The stores are spread over the two
//! processes by leases; the holder of one store is SIGKILLed while sales and HQ orders flow;
//! the other serves that store within the bound, nothing acknowledged is lost, nothing is
//! applied twice, digests end equal, and the restarted process gets a store back.

mod pg_support;
mod sync_support;

use pg_support::hq::leases;
use pg_support::http::http;
use pg_support::pair::{holder_of_a, restart_until_spread, Pair};
use pg_support::PgCluster;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storenode::domain::op::ReceiveReason;
use storenode::domain::{ActorId, OrderId, Payload, StoreId};
use storenode::store::pg::tail::Tail;
use storenode::store::Node;
use sync_support::*;

fn order_body(store: &StoreId, customer: &str) -> Value {
    json!({
        "store": store.as_str(),
        "customer": {"id": customer},
        "lines": [{"sku": sku().as_str(), "qty": 1}],
    })
}

/// A third HQ cache of the shared log, caught up on demand: what PostgreSQL holds.
async fn log_view(dir: &Path, url: &str) -> (Node, Tail) {
    let from = Tail::start_position(url).await.unwrap();
    let (node, _) = storenode::store::pg::open_node(
        &dir.join("check.db"),
        ActorId::hq(),
        url,
        Some(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    let tail = Tail::new(node.clone(), url, from).unwrap();
    (node, tail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_lease_holder_is_replaced_within_the_bound_and_gets_its_share_back() {
    let cluster = PgCluster::start();
    let admin = storenode::store::pg::connect(
        &storenode::store::pg::parse_url(&cluster.url("postgres")).unwrap(),
    )
    .await
    .unwrap();
    admin
        .batch_execute("CREATE DATABASE failover")
        .await
        .unwrap();
    let url = cluster.url("failover");
    let Pair {
        nodes,
        stores,
        mut hqs,
        dir,
        broker: _broker,
    } = Pair::start(&url).await;

    // 300 units received at each store.
    for ((node, _, _), s) in nodes.iter().zip(&stores) {
        node.submit(vec![Payload::StockReceive {
            store: s.clone(),
            sku: sku(),
            qty: 300,
            reason: ReceiveReason::Delivery,
        }])
        .await
        .unwrap();
    }

    // The victim holds store a; orders go to the survivor, sales are made at both stores.
    let (victim, survivor, held) = holder_of_a(&url, &hqs).await;
    let epoch_before = held[store_a().as_str()].1;
    let survivor_port = hqs[survivor].port;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let orders = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            let mut acked = Vec::new();
            for n in 0u64.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return acked;
                }
                let pickup = if n % 2 == 0 { store_a() } else { store_b() };
                let body = order_body(&pickup, &format!("C-{n:04}"));
                let key = format!("k-{n}");
                match http(
                    survivor_port,
                    "POST",
                    "/api/v1/orders",
                    Some(&key),
                    Some(&body),
                ) {
                    Some((201, placed)) => {
                        let id = placed["id"].as_str().unwrap().to_string();
                        acked.push((pickup, OrderId::parse(&id).unwrap()));
                    }
                    // HQ's allocation at a store may run short for a moment: not acknowledged.
                    Some((409 | 503, _)) => {}
                    other => panic!("unexpected answer {other:?}"),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            unreachable!()
        })
    };
    let sellers: Vec<_> = nodes
        .iter()
        .zip(&stores)
        .map(|((node, _, _), s)| {
            let (node, s, stop) = (node.clone(), s.clone(), stop.clone());
            tokio::spawn(async move {
                let mut sold = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match node.submit(vec![sale(&s, 1)]).await {
                        Ok(_) => sold += 1,
                        Err(e) if is_insufficient(&e) => {}
                        Err(e) => panic!("sale refused: {e}"),
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                sold
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    hqs[victim].kill();
    let killed = Instant::now();
    // A sale made right after the kill: acked again only by the new holder.
    let (a, a_sync, _) = &nodes[0];
    a.submit(vec![sale(&store_a(), 1)]).await.unwrap();
    let seq = a.read(|r| r.next_seq() - 1);
    // Acked again = in the log (only the survivor can have put it there) and out of the
    // store's outbox. The outbox alone is not enough: the engine may not have counted the
    // sale yet when the condition is first read.
    let config = storenode::store::pg::parse_url(&url).unwrap();
    let pg = storenode::store::pg::connect(&config).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logged = pg
            .query_opt(
                "SELECT 1 FROM ops WHERE actor = $1 AND seq = $2",
                &[&store_a().actor().as_str(), &(seq as i64)],
            )
            .await
            .unwrap()
            .is_some();
        if logged && a_sync.status().outbox == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "store a's ops are not acked again 30 s after the SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failover = killed.elapsed();
    let now = leases(&url).await;
    assert_eq!(now[store_a().as_str()].0, hqs[survivor].name, "{now:?}");
    assert!(
        now[store_a().as_str()].1 > epoch_before,
        "a new epoch: {now:?}"
    );
    assert!(
        failover < Duration::from_secs(10),
        "store a acked again only after {failover:?}"
    );
    eprintln!("failover: store a acked again {failover:?} after the SIGKILL");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked_orders = orders.await.unwrap();
    let mut sold = 0;
    for s in sellers {
        sold += s.await.unwrap();
    }
    assert!(
        sold > 0 && acked_orders.len() > 2,
        "{sold} sales, {} orders",
        acked_orders.len()
    );

    // The killed process comes back and gets its share.
    let back = restart_until_spread(&url, &mut hqs[victim]).await;
    assert!(back.values().any(|(h, _)| *h == hqs[victim].name));

    // Every acknowledged order reaches its store, once; every store op is in the log once,
    // and each store's digest equals the log's.
    for (pickup, id) in &acked_orders {
        let (node, _, _) = &nodes[usize::from(*pickup == store_b())];
        let node = node.clone();
        wait_for(
            Duration::from_secs(20),
            "an acknowledged order reaches its store",
            || node.read(|r| r.state().orders.contains_key(id)),
        )
        .await;
    }
    let (log, tail) = log_view(dir.path(), &url).await;
    for (s, (node, _, _)) in stores.iter().zip(&nodes) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            tail.catch_up().await.unwrap();
            let mine = node.read(|r| (r.digest_for_store(s), r.next_seq() - 1));
            let logged = log.read(|r| (r.digest_for_store(s), r.version().contiguous(&s.actor())));
            if mine == logged {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{s}: store {mine:?}, log {logged:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let config = storenode::store::pg::parse_url(&url).unwrap();
        let client = storenode::store::pg::connect(&config).await.unwrap();
        let row = client
            .query_one(
                "SELECT count(*), count(DISTINCT seq) FROM ops WHERE actor = $1",
                &[&s.actor().as_str()],
            )
            .await
            .unwrap();
        let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
        let own = node.read(|r| r.next_seq() - 1);
        assert_eq!(
            (rows as u64, distinct as u64),
            (own, own),
            "{s}: nothing lost, nothing twice"
        );
        let orders_here = acked_orders.iter().filter(|(p, _)| p == s).count();
        let held_orders = node.read(|r| r.state().orders.len());
        assert!(
            held_orders >= orders_here,
            "{s}: {held_orders} orders, {orders_here} acked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_spread_come_back_and_every_take_raises_the_epoch() {
    use storenode::store::pg::lease::Leases;
    let cluster = PgCluster::start();
    let url = cluster.url("postgres");
    let config = storenode::store::pg::parse_url(&url).unwrap();
    let mut client = storenode::store::pg::connect(&config).await.unwrap();
    storenode::store::pg::schema::migrate(&mut client)
        .await
        .unwrap();
    let stores: Vec<StoreId> = ["norte", "sur", "este"]
        .iter()
        .map(|s| StoreId::parse(s).unwrap())
        .collect();
    let now = tokio::time::Instant::now;
    let mut one = Leases::new(&url, "one", stores.clone()).unwrap();
    one.round().await.unwrap();
    assert_eq!(one.held(now()).len(), 3, "alone, it serves every store");
    assert!(one.held(now()).values().all(|e| *e == 1));

    let mut two = Leases::new(&url, "two", stores.clone()).unwrap();
    two.round().await.unwrap();
    assert!(two.held(now()).is_empty(), "nothing expired yet");
    one.round().await.unwrap();
    assert_eq!(one.held(now()).len(), 2, "gives back above ceil(3 / 2)");
    two.round().await.unwrap();
    let taken = two.held(now());
    assert_eq!(taken.len(), 1);
    assert!(
        taken.values().all(|e| *e == 2),
        "a take raises the epoch: {taken:?}"
    );
    let mine = one.held(now());
    assert!(
        mine.keys().all(|s| !taken.contains_key(s)),
        "one holder per store"
    );

    // `one` restarts under the same name: it takes its leases anew, under new epochs, and
    // none of `two`'s.
    let mut again = Leases::new(&url, "one", stores.clone()).unwrap();
    again.round().await.unwrap();
    let back = again.held(now());
    assert_eq!(back.len(), 2, "{back:?}");
    for (store, epoch) in &back {
        assert_eq!(*epoch, mine[store] + 1, "{store}");
    }
    two.round().await.unwrap();
    assert_eq!(two.held(now()), taken, "renewed under the same epoch");
    // A clean stop gives every lease back at once.
    two.release_all().await.unwrap();
    again.round().await.unwrap();
    assert_eq!(again.held(now()).len(), 3);
}
