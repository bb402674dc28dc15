//! Shared harness of the sync integration tests: a broker (mosquitto or embedded), HQ and two
//! stores in-process, each its own Node on a temp SQLite file, and the scenarios both broker
//! flavours run.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use storenode::domain::op::{OrderLine, ReceiveReason, SaleLine, Tender};
use storenode::domain::{
    ActorId, CustomerId, DomainError, Ean13, OrderId, Payload, SaleId, Sku, StoreId,
};
use storenode::store::{Node, SubmitError};
use storenode::sync::{
    spawn_hq_sync, spawn_store_sync, start_embedded_broker, HqSyncConfig, HqSyncHandle,
    StoreSyncConfig, StoreSyncHandle,
};
use tokio::sync::watch;

pub const CHAIN: &str = "acme";

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

pub fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("broker did not listen on {port}");
}

/// A mosquitto process on its own port; killed on drop.
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn mosquitto_bin() -> PathBuf {
    for p in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("mosquitto is not installed: run `apt-get install mosquitto` (.ci/run installs it)");
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Mosquitto {
            port: free_port(),
            dir,
            child: None,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 0\nmax_inflight_messages 100\nmax_packet_size 1048576\n\
                 set_tcp_nodelay true\n",
                self.port
            ),
        )
        .unwrap();
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto (apt-get install mosquitto)");
        self.child = Some(child);
        wait_port(self.port);
    }

    /// SIGKILL the broker (no clean shutdown, in-flight messages lost).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn embedded_broker() -> u16 {
    let addr = start_embedded_broker("127.0.0.1:0".parse().unwrap()).expect("embedded broker");
    addr.port()
}

pub fn sku() -> Sku {
    Sku::parse("SKU-1").unwrap()
}
pub fn store_a() -> StoreId {
    StoreId::parse("norte").unwrap()
}
pub fn store_b() -> StoreId {
    StoreId::parse("sur").unwrap()
}

/// The PostgreSQL cluster HQ's op log goes to (its `postgres` database URL), in the test
/// binaries that run the scenarios with HQ on PostgreSQL; unset, HQ has only its SQLite file.
static HQ_ON_POSTGRES: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// From now on every `Chain` of this test binary keeps HQ's log in a database of its own on
/// the cluster at `admin_url`.
pub fn hq_on_postgres(admin_url: String) {
    let _ = HQ_ON_POSTGRES.set(admin_url);
}

/// HQ's node in `dir`: its SQLite file, or the cache of the PostgreSQL database named in
/// `dir/hq.pgurl` (with `hq_on_postgres`, created on first open, so a reopened chain finds
/// its log again).
pub async fn open_hq(dir: &std::path::Path) -> Node {
    let named = dir.join("hq.pgurl");
    let url = match (std::fs::read_to_string(&named), HQ_ON_POSTGRES.get()) {
        (Ok(url), _) => url,
        (Err(_), None) => return Node::open(&dir.join("hq.db"), ActorId::hq()).unwrap(),
        (Err(_), Some(admin)) => {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let db = format!(
                "hq_{}",
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let config = storenode::store::pg::parse_url(admin).unwrap();
            let client = storenode::store::pg::connect(&config).await.unwrap();
            client
                .batch_execute(&format!("CREATE DATABASE {db}"))
                .await
                .unwrap();
            let url = admin.replace("/postgres", &format!("/{db}"));
            std::fs::write(&named, &url).unwrap();
            url
        }
    };
    let patience = Some(Duration::from_secs(10));
    storenode::store::pg::open_node(&dir.join("hq.db"), ActorId::hq(), &url, patience)
        .await
        .unwrap()
        .0
}

/// HQ and two stores on one broker.
pub struct Chain {
    dir: Option<tempfile::TempDir>,
    pub port: u16,
    pub hq: Node,
    pub a: Node,
    pub b: Node,
    pub hq_sync: HqSyncHandle,
    pub a_sync: StoreSyncHandle,
    pub b_sync: StoreSyncHandle,
    shutdown: watch::Sender<bool>,
}

impl Chain {
    pub async fn start(port: u16) -> Chain {
        Chain::open(tempfile::tempdir().unwrap(), port).await
    }

    /// Shut every engine and writer down, wait for them, and hand back the files. The writers
    /// must have closed their connections before a caller deletes or replaces a file: SQLite
    /// shares locks per inode within a process, and a new file on a reused inode beside a
    /// connection still open fails with "disk I/O error".
    pub async fn close(mut self) -> tempfile::TempDir {
        self.shutdown.send_replace(true);
        self.hq_sync.join().await;
        self.a_sync.join().await;
        self.b_sync.join().await;
        for node in [self.hq.clone(), self.a.clone(), self.b.clone()] {
            tokio::task::spawn_blocking(move || node.close_blocking())
                .await
                .unwrap()
                .unwrap();
        }
        self.dir.take().unwrap()
    }

    /// The folder holding every replica's files.
    pub fn path(&self) -> std::path::PathBuf {
        self.dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default()
    }

    /// HQ and stores on the databases in `dir` (new or reopened).
    pub async fn open(dir: tempfile::TempDir, port: u16) -> Chain {
        let hq = open_hq(dir.path()).await;
        let a = Node::open(&dir.path().join("a.db"), store_a().actor()).unwrap();
        let b = Node::open(&dir.path().join("b.db"), store_b().actor()).unwrap();
        let (shutdown, rx) = watch::channel(false);
        let mut hq_cfg = HqSyncConfig::new(CHAIN, vec![store_a(), store_b()], "127.0.0.1", port);
        hq_cfg.retransmit_ms = 500;
        hq_cfg.keepalive_s = 5;
        let hq_sync = spawn_hq_sync(hq.clone(), hq_cfg, rx.clone());
        let store_cfg = |s: StoreId| {
            let mut c = StoreSyncConfig::new(CHAIN, s, "127.0.0.1", port);
            c.retransmit_ms = 500;
            c.keepalive_s = 5;
            c
        };
        let a_sync = spawn_store_sync(a.clone(), store_cfg(store_a()), rx.clone());
        let b_sync = spawn_store_sync(b.clone(), store_cfg(store_b()), rx);
        Chain {
            dir: Some(dir),
            port,
            hq,
            a,
            b,
            hq_sync,
            a_sync,
            b_sync,
            shutdown,
        }
    }

    /// Catalog at HQ, 10 units received at each store, HQ holding its allocation at both.
    pub async fn seed(&self) {
        self.hq
            .submit(vec![Payload::CatalogPut {
                sku: sku(),
                ean: Ean13::parse("4006381333931").unwrap(),
                name: "Green tea".into(),
                price_cents: 250,
                vat_bp: 1000,
            }])
            .await
            .unwrap();
        for (node, store) in [(&self.a, store_a()), (&self.b, store_b())] {
            let n = node.clone();
            wait_for(Duration::from_secs(5), "catalog reaches the store", || {
                n.read(|r| r.state().catalog.contains(&sku()))
            })
            .await;
            node.submit(vec![Payload::StockReceive {
                store: store.clone(),
                sku: sku(),
                qty: 10,
                reason: ReceiveReason::Delivery,
            }])
            .await
            .unwrap();
            let hq = self.hq.clone();
            wait_for(Duration::from_secs(5), "HQ holds its allocation", || {
                hq.read(|r| r.state().rights(&store, &sku(), &ActorId::hq())) >= 3
            })
            .await;
        }
    }

    pub async fn converged(&self, store: &StoreId, node: &Node, within: Duration) {
        let hq = self.hq.clone();
        let n = node.clone();
        let s = store.clone();
        wait_for(within, "store and HQ digests converge", || {
            let mine = n.read(|r| (r.digest_for_store(&s), r.next_seq() - 1));
            let theirs = hq.read(|r| (r.digest_for_store(&s), r.version().contiguous(&s.actor())));
            mine == theirs
        })
        .await;
    }

    pub fn stop(&self) {
        self.shutdown.send_replace(true);
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// Poll `cond` until it holds or `within` passes (then panic naming `what`).
pub async fn wait_for(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {within:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

static ORDER_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub fn order(store: &StoreId, customer: &str, qty: u32) -> Payload {
    let n = ORDER_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Payload::OrderPlace {
        order_id: OrderId::parse(&format!("o-{n}")).unwrap(),
        store: store.clone(),
        customer: CustomerId::parse(customer).unwrap(),
        lines: vec![OrderLine { sku: sku(), qty }],
        pickup_code: "ABCDEF".into(),
        placed_at_ms: 1,
    }
}

pub fn sale(store: &StoreId, qty: u32) -> Payload {
    let n = ORDER_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Payload::Sale {
        store: store.clone(),
        sale_id: SaleId::parse(&format!("s-{n}")).unwrap(),
        lines: vec![SaleLine {
            sku: sku(),
            qty,
            unit_cents: 250,
            vat_bp: 1000,
        }],
        tender: Tender::Cash,
        customer: None,
    }
}

/// Units consumed at the store by sales and orders, and units ever received there.
pub fn sold_and_stock(node: &Node, store: &StoreId) -> (u64, u64) {
    node.read(|r| {
        let st = r.state();
        let sold: u64 = st
            .sales
            .values()
            .filter(|s| &s.store == store)
            .flat_map(|s| s.lines.iter().map(|l| u64::from(l.qty)))
            .sum();
        let ordered: u64 = st
            .orders
            .values()
            .filter(|o| &o.store == store)
            .flat_map(|o| o.lines.values().map(|l| u64::from(l.qty)))
            .sum();
        (sold + ordered, 10)
    })
}

pub fn is_insufficient(e: &SubmitError) -> bool {
    matches!(
        e,
        SubmitError::Domain(DomainError::InsufficientStock { .. })
    )
}

// ---------------------------------------------------------------- scenarios

/// An order placed at HQ reaches its store (only) within a second; a sale at a store shows
/// at HQ within a second.
pub async fn orders_and_sales_flow_within_a_second(port: u16) {
    let chain = Chain::start(port).await;
    chain.seed().await;
    let placed = chain
        .hq
        .submit(vec![order(&store_a(), "c-1", 1)])
        .await
        .unwrap();
    let Payload::OrderPlace { order_id, .. } = &placed.ops[0].payload else {
        unreachable!()
    };
    let a = chain.a.clone();
    let id = order_id.clone();
    wait_for(Duration::from_secs(1), "the order is at store a", || {
        a.read(|r| r.state().orders.contains_key(&id))
    })
    .await;
    assert!(!chain.b.read(|r| r.state().orders.contains_key(order_id)));
    let before = chain.hq.read(|r| r.state().available(&store_b(), &sku()));
    chain.b.submit(vec![sale(&store_b(), 2)]).await.unwrap();
    let hq = chain.hq.clone();
    wait_for(Duration::from_secs(1), "the sale shows at HQ", || {
        hq.read(|r| r.state().available(&store_b(), &sku())) == before - 2
    })
    .await;
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(5))
        .await;
    chain
        .converged(&store_b(), &chain.b, Duration::from_secs(5))
        .await;
    let links = chain.hq_sync.stores();
    assert!(links.iter().all(|l| l.online), "{links:?}");
    assert!(chain.a_sync.status().online);
    assert_eq!(chain.hq_sync.metrics().rejected_total(), 0);
}

/// With store a's link cut, HQ sells exactly its allocation then refuses; the store keeps
/// selling; after the link returns both converge and nothing was oversold.
pub async fn a_cut_link_keeps_both_sides_selling_without_oversell(port: u16) {
    let chain = Chain::start(port).await;
    chain.seed().await;
    chain.a_sync.set_link(false);
    let hq_sync = chain.hq_sync.clone();
    wait_for(Duration::from_secs(5), "HQ sees store a offline", || {
        hq_sync
            .stores()
            .iter()
            .any(|l| l.store == store_a() && !l.online)
    })
    .await;
    // The link task marks itself offline after it told HQ so: the two may land in either order.
    let a_sync = chain.a_sync.clone();
    wait_for(
        Duration::from_secs(5),
        "store a sees itself offline",
        || !a_sync.status().online,
    )
    .await;
    let allocated = chain
        .hq
        .read(|r| r.state().rights(&store_a(), &sku(), &ActorId::hq()));
    let mut placed = 0;
    loop {
        match chain.hq.submit(vec![order(&store_a(), "c-9", 1)]).await {
            Ok(_) => placed += 1,
            Err(e) if is_insufficient(&e) => break,
            Err(e) => panic!("unexpected error {e}"),
        }
        assert!(placed <= 10, "HQ oversold");
    }
    assert_eq!(placed, allocated, "HQ sells exactly its allocation");
    let own = chain
        .a
        .read(|r| r.state().rights(&store_a(), &sku(), &store_a().actor()));
    for _ in 0..own {
        chain.a.submit(vec![sale(&store_a(), 1)]).await.unwrap();
    }
    let refused = chain.a.submit(vec![sale(&store_a(), 1)]).await.unwrap_err();
    assert!(is_insufficient(&refused), "{refused}");
    assert!(chain.a_sync.status().outbox > 0);
    chain.a_sync.set_link(true);
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(10))
        .await;
    let (sold, stock) = sold_and_stock(&chain.hq, &store_a());
    assert!(sold <= stock, "sold {sold} > stock {stock}");
    assert_eq!(sold_and_stock(&chain.a, &store_a()), (sold, stock));
    let a_sync = chain.a_sync.clone();
    wait_for(Duration::from_secs(5), "store a's outbox drains", || {
        a_sync.status().outbox == 0
    })
    .await;
    assert_no_loss_no_double(&chain).await;
}

/// Every op in HQ's down-log for each store is in that store's log, and HQ holds every op
/// each store authored, exactly once.
pub async fn assert_no_loss_no_double(chain: &Chain) {
    for (store, node) in [(store_a(), &chain.a), (store_b(), &chain.b)] {
        let s = store.clone();
        let wanted: Vec<(String, i64)> = chain
            .hq
            .query(move |c| {
                let mut st =
                    c.prepare("SELECT DISTINCT actor, seq FROM downlog WHERE store = ?1")?;
                let rows = st.query_map([s.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .await
            .unwrap();
        // Digests can agree while the last routed ops are still in flight (an op that changes
        // nothing visible, such as a cart set losing to an equal one): wait for them.
        let missing = || -> Vec<(String, i64)> {
            node.read(|r| {
                wanted
                    .iter()
                    .filter(|(a, seq)| {
                        !r.version()
                            .contains(&ActorId::parse(a).unwrap(), *seq as u64)
                    })
                    .cloned()
                    .collect()
            })
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !missing().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let missing = missing();
        assert!(missing.is_empty(), "store {store} misses {missing:?}");
        // The in-memory replica runs ahead of the commit by a moment: poll the log.
        let own = node.read(|r| r.next_seq() - 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let actor = store.actor();
            let at_hq: u64 = chain
                .hq
                .query(move |c| {
                    c.query_row(
                        "SELECT COUNT(*) FROM ops WHERE actor = ?1",
                        [actor.as_str()],
                        |r| r.get::<_, i64>(0),
                    )
                })
                .await
                .unwrap() as u64;
            if at_hq == own {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "HQ holds {at_hq} ops of {store}, the store wrote {own}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Keep writing at HQ (prices, carts) and at store a (carts of a followed customer) until
/// `n` rounds are done.
pub fn spawn_writers(chain: &Chain, n: u32) -> tokio::task::JoinHandle<()> {
    let (hq, a) = (chain.hq.clone(), chain.a.clone());
    tokio::spawn(async move {
        let customer = CustomerId::parse("c-busy").unwrap();
        a.submit(vec![Payload::CustomerFollow {
            customer: customer.clone(),
            store: store_a(),
        }])
        .await
        .unwrap();
        for i in 0..n {
            hq.submit(vec![Payload::CatalogPut {
                sku: sku(),
                ean: Ean13::parse("4006381333931").unwrap(),
                name: "Green tea".into(),
                price_cents: 250 + i64::from(i),
                vat_bp: 1000,
            }])
            .await
            .unwrap();
            let cart = |q: u32| Payload::CartSet {
                customer: customer.clone(),
                sku: sku(),
                qty: q,
            };
            a.submit(vec![cart(i % 7 + 1)]).await.unwrap();
            hq.submit(vec![cart(i % 5 + 1)]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

/// SIGKILL mosquitto while both sides are writing, restart it on the same port: nothing is
/// lost, nothing applied twice, digests converge.
pub async fn a_broker_killed_mid_stream_loses_nothing(broker: &mut Mosquitto) {
    let chain = Chain::start(broker.port).await;
    chain.seed().await;
    let writers = spawn_writers(&chain, 300);
    let hq = chain.hq.clone();
    wait_for(Duration::from_secs(10), "a stream is in flight", || {
        hq.read(|r| r.version().contiguous(&ActorId::hq())) > 60
    })
    .await;
    broker.kill();
    let a_sync = chain.a_sync.clone();
    wait_for(
        Duration::from_secs(10),
        "store a notices the broker is gone",
        || !a_sync.status().online,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await; // an outage with writes going on
    broker.restart();
    writers.await.unwrap();
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(20))
        .await;
    chain
        .converged(&store_b(), &chain.b, Duration::from_secs(20))
        .await;
    let price = |n: &Node| n.read(|r| r.state().catalog.get(&sku()).map(|p| p.price_cents));
    assert_eq!(price(&chain.a), Some(250 + 299));
    assert_eq!(price(&chain.b), Some(250 + 299));
    assert_no_loss_no_double(&chain).await;
}

/// Garbage, oversized, unknown-version, wrong-actor and unknown-store payloads are refused,
/// counted by reason, and change nothing at HQ.
pub async fn bad_payloads_are_refused_counted_and_change_nothing(port: u16) {
    use storenode::domain::op::ProfilePatch;
    use storenode::domain::{Hlc, Op};
    use storenode::sync::wire::{self, Message, UpBatch, PAYLOAD_BYTES_MAX};
    let chain = Chain::start(port).await;
    chain.seed().await;
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(5))
        .await;
    let before = chain.hq.read(|r| (r.digest(), r.version().total()));
    let foreign = Op {
        actor: store_b().actor(),
        seq: 99,
        hlc: Hlc::new(1, 0),
        payload: Payload::CustomerUpdate {
            customer: CustomerId::parse("c-evil").unwrap(),
            patch: ProfilePatch {
                name: Some("Mallory".into()),
                ..ProfilePatch::default()
            },
        },
    };
    let wrong_actor = wire::encode(&Message::Up(UpBatch {
        store: store_a(),
        ops: vec![foreign.clone()],
    }))
    .unwrap();
    let ghost = wire::encode(&Message::Up(UpBatch {
        store: StoreId::parse("ghost").unwrap(),
        ops: vec![Op {
            actor: StoreId::parse("ghost").unwrap().actor(),
            seq: 1,
            ..foreign
        }],
    }))
    .unwrap();
    let up = format!("storenode/v1/{CHAIN}/store/norte/up");
    let mut unknown_version = wrong_actor.clone();
    unknown_version[0] = 7;
    let mut oversized = vec![1u8; PAYLOAD_BYTES_MAX + 10];
    oversized[0] = wire::WIRE_VERSION;
    let sends = vec![
        (up.clone(), b"\x01garbage that is not postcard".to_vec()),
        (up.clone(), oversized),
        (up.clone(), unknown_version),
        (up.clone(), wrong_actor),
        (format!("storenode/v1/{CHAIN}/store/ghost/up"), ghost),
    ];
    publish_raw(port, sends).await;
    let m = chain.hq_sync.metrics();
    wait_for(Duration::from_secs(5), "HQ counts every refusal", || {
        [
            "malformed",
            "oversized",
            "unknown_version",
            "wrong_actor",
            "unknown_store",
        ]
        .iter()
        .all(|r| m.rejected(r) >= 1)
    })
    .await;
    assert_eq!(chain.hq.read(|r| (r.digest(), r.version().total())), before);
    let text = m.render_prometheus("storenode_sync");
    assert!(text.contains("reason=\"wrong_actor\"} 1"), "{text}");
    // Sync still works afterwards.
    chain.a.submit(vec![sale(&store_a(), 1)]).await.unwrap();
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(5))
        .await;
}

/// Publish raw payloads with a plain client and wait until the broker acknowledged them.
pub async fn publish_raw(port: u16, sends: Vec<(String, Vec<u8>)>) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new("mallory", "127.0.0.1", port);
    opts.set_max_packet_size(2 * 1024 * 1024, 2 * 1024 * 1024);
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let total = sends.len();
    for (topic, payload) in sends {
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    let mut acked = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while acked < total {
        assert!(
            Instant::now() < deadline,
            "broker did not ack the raw publishes"
        );
        match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("raw client failed: {e}"),
            Err(_) => panic!("raw client timed out"),
        }
    }
}

/// A cart and profile written at HQ reach a store only once the customer enters its scope
/// (an order there, or the store following them); an erasure reaches every store.
pub async fn customer_data_follows_the_customer_into_a_stores_scope(port: u16) {
    use storenode::domain::op::ProfilePatch;
    let chain = Chain::start(port).await;
    chain.seed().await;
    let c7 = CustomerId::parse("c-7").unwrap();
    chain
        .hq
        .submit(vec![
            Payload::CartSet {
                customer: c7.clone(),
                sku: sku(),
                qty: 4,
            },
            Payload::CustomerUpdate {
                customer: c7.clone(),
                patch: ProfilePatch {
                    name: Some("Ana".into()),
                    ..ProfilePatch::default()
                },
            },
        ])
        .await
        .unwrap();
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(5))
        .await;
    assert!(chain.a.read(|r| !r.state().carts.contains_key(&c7)));
    chain
        .hq
        .submit(vec![order(&store_a(), "c-7", 1)])
        .await
        .unwrap();
    let (a, c) = (chain.a.clone(), c7.clone());
    wait_for(
        Duration::from_secs(2),
        "store a holds c-7's cart and name",
        || {
            a.read(|r| {
                let st = r.state();
                st.carts
                    .get(&c)
                    .is_some_and(|cart| cart.lines().get(&sku()) == Some(&4))
                    && st
                        .customers
                        .get(&c)
                        .and_then(|x| x.name().map(str::to_string))
                        == Some("Ana".to_string())
            })
        },
    )
    .await;
    assert!(chain.b.read(|r| !r.state().carts.contains_key(&c7)));
    chain
        .b
        .submit(vec![Payload::CustomerFollow {
            customer: c7.clone(),
            store: store_b(),
        }])
        .await
        .unwrap();
    let (b, c) = (chain.b.clone(), c7.clone());
    wait_for(
        Duration::from_secs(2),
        "store b gets c-7's past cart",
        || b.read(|r| r.state().carts.contains_key(&c)),
    )
    .await;
    chain
        .hq
        .submit(vec![Payload::CustomerErase {
            customer: c7.clone(),
        }])
        .await
        .unwrap();
    for node in [&chain.a, &chain.b] {
        let (n, c) = (node.clone(), c7.clone());
        wait_for(
            Duration::from_secs(2),
            "the erasure reaches every store",
            || n.read(|r| r.state().customer_erased(&c)),
        )
        .await;
    }
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(5))
        .await;
    chain
        .converged(&store_b(), &chain.b, Duration::from_secs(5))
        .await;
}

/// HQ cancels an order: its store releases the units. A low count asks HQ for rights back:
/// HQ returns them and the store covers the shortfall with them.
pub async fn cancellations_and_counts_trigger_the_right_reactions(port: u16) {
    use storenode::domain::count::plan_count;
    use storenode::domain::op::CancelKind;
    let chain = Chain::start(port).await;
    chain.seed().await;
    let placed = chain
        .hq
        .submit(vec![order(&store_a(), "c-1", 1)])
        .await
        .unwrap();
    let Payload::OrderPlace { order_id, .. } = placed.ops[0].payload.clone() else {
        unreachable!()
    };
    chain
        .hq
        .submit(vec![Payload::OrderCancel {
            order_id: order_id.clone(),
            store: store_a(),
            kind: CancelKind::Cancelled,
        }])
        .await
        .unwrap();
    let hq = chain.hq.clone();
    wait_for(
        Duration::from_secs(3),
        "store a released the cancelled order",
        || hq.read(|r| r.state().orders.get(&order_id).is_some_and(|o| o.released)),
    )
    .await;
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(5))
        .await;
    // One unit fewer on the shelf than the store's own rights can cover, planned in the
    // writer on the state the count commits on (a down-batch landing between a read and the
    // submit would make a plan read earlier stale).
    let seen = std::sync::Arc::new(std::sync::Mutex::new((0i64, 0i64, 0u32)));
    let out = seen.clone();
    let build: storenode::store::BuildPayloads = Box::new(move |r, _now| {
        let st = r.state();
        let hq_rights = st.rights(&store_a(), &sku(), &ActorId::hq());
        let own = st.rights(&store_a(), &sku(), &store_a().actor());
        let counted = (st.on_hand(&store_a(), &sku()) - own - 1).max(0) as u32;
        *out.lock().unwrap() = (hq_rights, own, counted);
        Ok(plan_count(st, &store_a(), &sku(), counted))
    });
    let (submitted, ()) = chain.a.submit_built(build, |_, _| Ok(())).await.unwrap();
    let (hq_rights, own, counted) = *seen.lock().unwrap();
    assert!(hq_rights > 0 && own > 0, "hq {hq_rights}, store {own}");
    assert!(submitted
        .ops
        .iter()
        .any(|op| matches!(op.payload, Payload::RightsReturnRequested { qty: 1, .. })));
    let a = chain.a.clone();
    wait_for(
        Duration::from_secs(3),
        "HQ returned a right and the store covered the shortfall",
        || {
            a.read(|r| {
                let st = r.state();
                st.shortfall.get(&(store_a(), sku())).copied().unwrap_or(0) == 0
                    && st.rights(&store_a(), &sku(), &ActorId::hq()) == hq_rights - 1
            })
        },
    )
    .await;
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(5))
        .await;
    assert_eq!(
        chain.a.read(|r| r.state().on_hand(&store_a(), &sku())),
        i64::from(counted)
    );
}

/// Every node restarts (same files) with ops still unsent: the persisted positions resume
/// sync and nothing is lost or doubled.
pub async fn a_restart_of_every_node_resumes_where_sync_stopped(port: u16) {
    let chain = Chain::start(port).await;
    chain.seed().await;
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(5))
        .await;
    let a_sync = chain.a_sync.clone();
    wait_for(
        Duration::from_secs(5),
        "HQ acked every op of store a",
        || a_sync.status().outbox == 0,
    )
    .await;
    chain.a_sync.set_link(false);
    chain.a.submit(vec![sale(&store_a(), 1)]).await.unwrap();
    chain.a.submit(vec![sale(&store_a(), 2)]).await.unwrap();
    chain
        .hq
        .submit(vec![order(&store_a(), "c-3", 1)])
        .await
        .unwrap();
    let acked: u64 = chain
        .a
        .query(|c| storenode::sync::persist::get_u64(c, storenode::sync::persist::KEY_HQ_ACKED_SEQ))
        .await
        .unwrap();
    assert!(acked > 0, "the store persisted HQ's ack");
    let dir = chain.close().await;
    let chain = Chain::open(dir, port).await;
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(10))
        .await;
    chain
        .converged(&store_b(), &chain.b, Duration::from_secs(10))
        .await;
    assert_no_loss_no_double(&chain).await;
    let (sold, stock) = sold_and_stock(&chain.hq, &store_a());
    assert!(sold <= stock);
}

/// A store added to HQ's configuration after the catalog was routed still gets it.
pub async fn a_store_added_later_gets_the_whole_catalog(port: u16) {
    let dir = tempfile::tempdir().unwrap();
    let hq = Node::open(&dir.path().join("hq.db"), ActorId::hq()).unwrap();
    let a = Node::open(&dir.path().join("a.db"), store_a().actor()).unwrap();
    let b = Node::open(&dir.path().join("b.db"), store_b().actor()).unwrap();
    let (stop_first, rx1) = watch::channel(false);
    let first = spawn_hq_sync(
        hq.clone(),
        HqSyncConfig::new(CHAIN, vec![store_a()], "127.0.0.1", port),
        rx1,
    );
    let (shutdown, rx) = watch::channel(false);
    let _a_sync = spawn_store_sync(
        a.clone(),
        StoreSyncConfig::new(CHAIN, store_a(), "127.0.0.1", port),
        rx.clone(),
    );
    hq.submit(vec![Payload::CatalogPut {
        sku: sku(),
        ean: Ean13::parse("4006381333931").unwrap(),
        name: "Green tea".into(),
        price_cents: 250,
        vat_bp: 1000,
    }])
    .await
    .unwrap();
    let n = a.clone();
    wait_for(Duration::from_secs(5), "store a gets the catalog", || {
        n.read(|r| r.state().catalog.contains(&sku()))
    })
    .await;
    stop_first.send_replace(true);
    first.join().await;
    let _second = spawn_hq_sync(
        hq.clone(),
        HqSyncConfig::new(CHAIN, vec![store_a(), store_b()], "127.0.0.1", port),
        rx.clone(),
    );
    let _b_sync = spawn_store_sync(
        b.clone(),
        StoreSyncConfig::new(CHAIN, store_b(), "127.0.0.1", port),
        rx,
    );
    let n = b.clone();
    wait_for(
        Duration::from_secs(5),
        "store b, added later, gets the catalog",
        || n.read(|r| r.state().catalog.contains(&sku())),
    )
    .await;
    shutdown.send_replace(true);
}

/// A long outage's backlog (thousands of ops) drains in bounded batches once the link returns.
pub async fn a_long_outage_backlog_drains_in_bounded_batches(port: u16) {
    let chain = Chain::start(port).await;
    chain.seed().await;
    chain.a_sync.set_link(false);
    let customer = CustomerId::parse("c-long").unwrap();
    let carts: Vec<Payload> = (0..3_000u32)
        .map(|i| Payload::CartSet {
            customer: customer.clone(),
            sku: sku(),
            qty: i % 9 + 1,
        })
        .collect();
    for chunk in carts.chunks(100) {
        chain.a.submit(chunk.to_vec()).await.unwrap();
    }
    let a_sync = chain.a_sync.clone();
    wait_for(
        Duration::from_secs(2),
        "the outbox shows the backlog",
        || a_sync.status().outbox >= 3_000,
    )
    .await;
    let sent_before = chain
        .a_sync
        .metrics()
        .batches_sent
        .load(std::sync::atomic::Ordering::Relaxed);
    chain.a_sync.set_link(true);
    chain
        .converged(&store_a(), &chain.a, Duration::from_secs(20))
        .await;
    let batches = chain
        .a_sync
        .metrics()
        .batches_sent
        .load(std::sync::atomic::Ordering::Relaxed)
        - sent_before;
    assert!(
        batches >= 6,
        "3000 ops in batches of at most 500, got {batches} batches"
    );
    assert_no_loss_no_double(&chain).await;
}
