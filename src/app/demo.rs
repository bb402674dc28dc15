//! `storenode demo`: HQ and two stores in one process, linked, seeded on first start, with a
//! few pickup orders placed through HQ's own API. A second start reuses the data directory.
//! Stores sign their batches with keys created beside their databases, and HQ is configured
//! with their public keys; HQ signs its down-batches with its key beside `hq.db`, and the
//! stores are configured with its public key: the demo runs signed both ways.
//!
//! Ports: HQ on `base_port`, madrid-centro on `base_port + 1`, sevilla-nervion on
//! `base_port + 2`; the broker on `broker_port`.

use super::sync_views::{hq_sync_config, store_sync_config, DemoLinks, HqSyncView, StoreLinkView};
use super::{interrupted, seed, serve, shutdown_channel, spawn_webhook};
use crate::config::{Config, HqConfig, StoreConfig};
use crate::devices::printer_sim::PrinterSim;
use crate::domain::{ActorId, Sku, StoreId};
use crate::hq::{self, HqSettings, HqState};
use crate::signing::{HqKey, StoreKey};
use crate::store::Node;
use crate::sync::{spawn_hq_sync, spawn_store_sync, start_embedded_broker};
use anyhow::{anyhow, Context};
use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// The HQ API token of the demo.
pub const DEMO_TOKEN: &str = "demo-hq-token";
/// The HQ console's demo accounts: (user, name, role, password). Not secrets.
pub const DEMO_CONSOLE_ACCOUNTS: [(&str, &str, &str, &str); 2] = [
    ("ana", "Ana Torres", "admin", "ana-demo"),
    ("luis", "Luis Romero", "read_only", "luis-demo"),
];
/// The demo's stores.
pub const DEMO_STORES: [&str; 2] = ["madrid-centro", "sevilla-nervion"];
/// Demo QR key (hex); not a secret.
const DEMO_QR_KEY: &str = "64656d6f2d717200000000000000000000000000000000000000000000000001";
const PIN_1234: &str = "$argon2id$v=19$m=19456,t=2,p=1$mPJcWO0y8M4JmavqsPBudQ$La2MA8lSSOedwNST+u8HnJZbbqunV9omzXvbyeMB1xY";
const PIN_4321: &str = "$argon2id$v=19$m=19456,t=2,p=1$mnl/iPjmHVLibZErQMRERQ$YPAFXL4zyoCw8kx64ghhiDWZ1M5D8gyADAF1SFdLs5w";
/// Orders placed at HQ on first start: (idempotency key, store, customer, line count).
const SEED_ORDERS: [(&str, &str, &str, usize); 4] = [
    ("demo-seed-1", "madrid-centro", "C-0001", 2),
    ("demo-seed-2", "madrid-centro", "C-0002", 1),
    ("demo-seed-3", "madrid-centro", "C-0003", 3),
    ("demo-seed-4", "sevilla-nervion", "C-0004", 2),
];
/// How long start-up waits for the stores to lend HQ rights before placing seed orders.
const ALLOCATION_WAIT_MS: u64 = 15_000;

/// Options of `storenode demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub data_dir: PathBuf,
    pub base_port: u16,
    pub broker_port: u16,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            data_dir: PathBuf::from("demo-data"),
            base_port: 8080,
            broker_port: 1883,
        }
    }
}

/// HQ's config, registering each demo store's public key (`store_keys`).
fn hq_config(o: &DemoOptions, store_keys: &[(StoreId, String)]) -> anyhow::Result<HqConfig> {
    let mut console = String::new();
    for (user, name, role, password) in DEMO_CONSOLE_ACCOUNTS {
        let hash = crate::hq::console::hash_password(password).map_err(|e| anyhow!("{e}"))?;
        console.push_str(&format!(
            "[[console.accounts]]\nuser = \"{user}\"\nname = \"{name}\"\nrole = \"{role}\"\npassword_hash = \"{hash}\"\n"
        ));
    }
    let mut keys = console;
    keys.push_str("[store_keys]\n");
    for (store, key) in store_keys {
        keys.push_str(&format!("{store} = \"{key}\"\n"));
    }
    let text = format!(
        "role = \"hq\"\nchain = \"demo\"\ndb = {db:?}\nstores = [\"madrid-centro\", \"sevilla-nervion\"]\n\
         token = \"{DEMO_TOKEN}\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
         [pickup]\nqr_keys = [\"{DEMO_QR_KEY}\"]\n{keys}",
        db = o.data_dir.join("hq.db").display().to_string(),
        broker = o.broker_port,
        port = o.base_port,
    );
    match Config::parse(&text).map_err(|e| anyhow!("demo hq config: {e}"))? {
        Config::Hq(c) => Ok(*c),
        Config::Store(_) => Err(anyhow!("demo hq config is not an hq config")),
    }
}

/// The AEAT's QR validation service in its test environment: demo invoices are not real.
pub const DEMO_QR_BASE_URL: &str = "https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR";

/// A demo store's invoice series: its initials (`madrid-centro` -> `MC`).
fn demo_series(store: &str) -> String {
    store
        .split('-')
        .filter_map(|w| w.chars().next())
        .flat_map(char::to_uppercase)
        .collect()
}

fn store_config(
    o: &DemoOptions,
    hq_public_key: &str,
    store: &str,
    port: u16,
    printer: std::net::SocketAddr,
    scanner: u16,
) -> anyhow::Result<StoreConfig> {
    let dir = o.data_dir.join(store);
    let text = format!(
        "role = \"store\"\nstore = \"{store}\"\nchain = \"demo\"\ndata_dir = {dir:?}\n\
         hq_public_key = \"{hq_public_key}\"\n\
         transfer_to = [\"madrid-centro\", \"sevilla-nervion\"]\n\
         [mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\n[http]\nlisten = \"127.0.0.1:{port}\"\n\
         [allocation]\nhq_share_percent = 30\nmin_one_above = 2\n\
         [pickup]\nexpire_after_days = 7\nqr_keys = [\"{DEMO_QR_KEY}\"]\n\
         [[printers]]\nname = \"counter\"\nuri = \"tcp://{printer}\"\n\
         [[scanners]]\nname = \"counter\"\nuri = \"tcp://127.0.0.1:{scanner}\"\n\
         [till]\nassociate_max_discount_pct = 10\ncash_session_required = true\ntills = [\"T1\", \"T2\"]\n\
         [[staff]]\nstaff = \"1001\"\nname = \"Lucía Pérez\"\nrole = \"associate\"\npin_hash = \"{PIN_1234}\"\n\
         [[staff]]\nstaff = \"9001\"\nname = \"Javier Gómez\"\nrole = \"manager\"\npin_hash = \"{PIN_4321}\"\n\
         [fiscal]\nnif = \"89890001K\"\nname = \"Tiendas Demo SL\"\naddress = [\"Calle Mayor 1, 28013 Madrid\"]\n\
         series = \"{series}\"\ntimezone = \"Europe/Madrid\"\nqr_base_url = \"{DEMO_QR_BASE_URL}\"\n",
        dir = dir.display().to_string(),
        broker = o.broker_port,
        series = demo_series(store),
    );
    match Config::parse(&text).map_err(|e| anyhow!("demo store config: {e}"))? {
        Config::Store(c) => Ok(*c),
        Config::Hq(_) => Err(anyhow!("demo store config is not a store config")),
    }
}

/// Seed HQ (catalog, customers, carts) and each store (its stock, after HQ's catalog) once.
async fn seed_once(hq: &Node, stores: &[(StoreId, Node)]) -> anyhow::Result<bool> {
    let fresh = hq.read(|r| r.state().catalog.is_empty());
    if fresh {
        seed::seed_hq(hq).await?;
    }
    let hq_ops = hq
        .query(|conn| Node::ops_since(conn, &ActorId::hq(), 0, 100_000))
        .await?;
    for (id, node) in stores {
        if node.read(|r| r.state().catalog.is_empty()) {
            node.ingest(hq_ops.clone()).await?;
        }
        let stocked = node.read(|r| r.state().stock.keys().any(|(s, _)| s == id));
        if !stocked {
            seed::seed_stock(node).await?;
        }
        open_demo_drawer(id, node).await?;
    }
    Ok(fresh)
}

/// Float of the demo's tills, in cents.
const DEMO_FLOAT_CENTS: i64 = 15_000;

/// The tills of each demo store (`[till] tills` of its config).
const DEMO_TILLS: [&str; 2] = ["T1", "T2"];

/// The demo's tills take cash at once (DESIGN.md §18): a till that never had a cash session
/// opens one with a float on first start.
async fn open_demo_drawer(id: &StoreId, node: &Node) -> anyhow::Result<()> {
    for till in DEMO_TILLS {
        let till = crate::domain::ids::TillId::parse(till)?;
        if node.read(|r| r.state().cash.of_store(id).any(|s| s.till == till)) {
            continue;
        }
        let now = crate::store::now_ms();
        let session = crate::domain::ids::CashSessionId::parse(&format!("Z{now}-demo-{till}"))?;
        node.submit(vec![crate::domain::Payload::CashOpenTill {
            store: id.clone(),
            till,
            session,
            float_cents: DEMO_FLOAT_CENTS,
            staff: "9001".into(),
            opened_ms: now,
        }])
        .await?;
    }
    Ok(())
}

/// Place the demo's pickup orders through HQ's API (idempotent: keys are fixed).
async fn seed_orders(state: &HqState) -> anyhow::Result<()> {
    for (i, (key, store, customer, lines)) in SEED_ORDERS.into_iter().enumerate() {
        let used_key = key.to_string();
        let used = state
            .node
            .query(move |conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM hq_idempotency WHERE key = ?1",
                    [used_key],
                    |r| r.get::<_, i64>(0),
                )
            })
            .await?;
        if used > 0 {
            continue;
        }
        let store_id = StoreId::parse(store)?;
        let deadline = Instant::now() + Duration::from_millis(ALLOCATION_WAIT_MS);
        let skus: Vec<Sku> = loop {
            let skus = state.node.read(|r| {
                let st = r.state();
                st.stock
                    .iter()
                    .filter(|((s, _), c)| *s == store_id && c.rights(&ActorId::hq()) >= 2)
                    .map(|((_, sku), _)| sku.clone())
                    .skip(i * 3)
                    .take(lines)
                    .collect::<Vec<_>>()
            });
            if skus.len() == lines || Instant::now() > deadline {
                break skus;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let body = json!({
            "store": store,
            "customer": {"id": customer},
            "lines": skus.iter().map(|s| json!({"sku": s, "qty": 1})).collect::<Vec<_>>(),
        });
        let request = Request::post("/api/v1/orders")
            .header("authorization", format!("Bearer {DEMO_TOKEN}"))
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))?;
        let response = hq::app(state.clone()).oneshot(request).await?;
        if !response.status().is_success() {
            tracing::warn!(key, status = %response.status(), "demo seed order refused");
        }
    }
    Ok(())
}

/// The TCP scanner source of the `i`th demo store: network scanners (or `nc`) send `code\r\n`.
fn scanner_port(o: &DemoOptions, i: usize) -> u16 {
    o.base_port.saturating_add(11 + i as u16)
}

fn banner(o: &DemoOptions) -> String {
    let b = o.base_port;
    format!(
        "\nstorenode demo is running (data in {dir})\n\n\
         HQ dashboard and API   http://127.0.0.1:{b}/   (API token: {DEMO_TOKEN})\n\
         HQ console             http://127.0.0.1:{b}/console/   (admin ana / ana-demo, read-only luis / luis-demo)\n\
         madrid-centro          http://127.0.0.1:{m}/\n\
         sevilla-nervion        http://127.0.0.1:{s}/\n\
         MQTT broker            127.0.0.1:{broker}\n\
         Printer output         {printers}/<store>/\n\
         Scanners (TCP)         madrid-centro 127.0.0.1:{scan_m}, sevilla-nervion 127.0.0.1:{scan_s}\n\n\
         Terminal logins: associate 1001 / PIN 1234, manager 9001 / PIN 4321\n\
         Try: curl -H 'Authorization: Bearer {DEMO_TOKEN}' http://127.0.0.1:{b}/api/v1/stores\n\
         Scan: open a terminal page, then  printf '8410234782535\\r\\n' > /dev/tcp/127.0.0.1/{scan_m}\n\
         Ctrl-C stops the demo; starting it again reuses the data.\n",
        dir = o.data_dir.display(),
        m = b.saturating_add(1),
        s = b.saturating_add(2),
        broker = o.broker_port,
        printers = o.data_dir.join("printers").display(),
        scan_m = scanner_port(o, 0),
        scan_s = scanner_port(o, 1),
    )
}

fn open(path: &Path, actor: ActorId) -> anyhow::Result<Node> {
    Node::open(path, actor).with_context(|| format!("cannot open {}", path.display()))
}

/// Run the demo until Ctrl-C.
pub async fn demo(o: DemoOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&o.data_dir)
        .with_context(|| format!("cannot create {}", o.data_dir.display()))?;
    let (stop, shutdown) = shutdown_channel();
    let mut stores = Vec::new();
    let mut store_cfgs = Vec::new();
    let mut printers = Vec::new();
    let mut store_keys = Vec::new();
    // HQ's down-batch key (created on first start), named in every store's config.
    let hq_key = HqKey::load_or_create(&o.data_dir.join("hq.db"))?;
    for (i, name) in DEMO_STORES.iter().enumerate() {
        let port = o.base_port.saturating_add(1 + i as u16);
        let out = o.data_dir.join("printers").join(name);
        let sim = PrinterSim::bind(([127, 0, 0, 1], 0).into(), out.clone())
            .await
            .with_context(|| format!("printer emulator for {name}"))?;
        let cfg = store_config(
            &o,
            &hq_key.public_hex(),
            name,
            port,
            sim.local_addr()?,
            scanner_port(&o, i),
        )?;
        printers.push(tokio::spawn(sim.serve(shutdown.clone())));
        std::fs::create_dir_all(&cfg.data_dir)?;
        stores.push((cfg.store.clone(), open(&cfg.db_path(), cfg.store.actor())?));
        // Each store's signing key (created on first start), registered at HQ below.
        let key = StoreKey::load_or_create(&cfg.db_path(), cfg.store.clone())?;
        store_keys.push((cfg.store.clone(), key.public_hex()));
        store_cfgs.push(cfg);
    }
    let hq_cfg = hq_config(&o, &store_keys)?;
    let hq_node = open(&hq_cfg.db, ActorId::hq())?;
    let fresh = seed_once(&hq_node, &stores).await?;
    if fresh {
        tracing::info!("demo seeded from config/seed");
    }

    let broker = SocketAddr::from(([127, 0, 0, 1], o.broker_port));
    tokio::task::spawn_blocking(move || start_embedded_broker(broker))
        .await?
        .with_context(|| format!("embedded MQTT broker on {broker}"))?;
    let hq_sync = spawn_hq_sync(hq_node.clone(), hq_sync_config(&hq_cfg)?, shutdown.clone());
    let mut store_syncs = BTreeMap::new();
    for ((id, node), cfg) in stores.iter().zip(&store_cfgs) {
        let handle = spawn_store_sync(node.clone(), store_sync_config(cfg)?, shutdown.clone());
        store_syncs.insert(id.clone(), handle);
    }
    let settings = HqSettings::from_config(&hq_cfg);
    let webhook = spawn_webhook(&hq_node, &settings, shutdown.clone());
    let state = HqState::new(hq_node, settings, Arc::new(HqSyncView(hq_sync.clone())))
        .with_demo_links(Arc::new(DemoLinks(store_syncs.clone())), DEMO_TOKEN);
    seed_orders(&state).await?;

    let mut servers = Vec::new();
    let (_, hq_server) = serve(hq_cfg.http.listen, hq::app(state), shutdown.clone()).await?;
    servers.push(hq_server);
    for ((id, node), cfg) in stores.iter().zip(&store_cfgs) {
        let handle = store_syncs
            .get(id)
            .cloned()
            .ok_or_else(|| anyhow!("no sync for {id}"))?;
        let (router, tasks) = super::store_node::store_app(
            node.clone(),
            cfg,
            Arc::new(handle.clone()),
            Arc::new(StoreLinkView(handle)),
            shutdown.clone(),
        )
        .await?;
        servers.extend(tasks);
        servers.push(serve(cfg.http.listen, router, shutdown.clone()).await?.1);
    }
    println!("{}", banner(&o));

    interrupted().await;
    println!("stopping the demo...");
    let _ = stop.send(true);
    for task in servers.into_iter().chain(webhook) {
        let _ = task.await;
    }
    hq_sync.join().await;
    for handle in store_syncs.values() {
        handle.join().await;
    }
    for printer in printers {
        let _ = printer.await;
    }
    println!("demo stopped");
    Ok(())
}
