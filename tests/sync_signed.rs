//! Signed store batches over a real broker (embedded): a store with its ed25519 key syncs as
//! usual; HQ, holding the stores' public keys, refuses an unsigned store, a batch signed by
//! another store's key, a batch replayed on another store's topic and a tampered one, counts
//! each by reason, and applies none of them. The other way round, a store holding HQ's public
//! key applies only down-batches HQ signed for it, in process and with real processes.

mod sync_support;

use std::sync::Arc;
use std::time::Duration;
use storenode::domain::op::ReceiveReason;
use storenode::domain::{ActorId, Ean13, Hlc, Op, Payload, StoreId};
use storenode::signing::{HqKey, HqPublicKey, StoreKey, StoreKeys};
use storenode::store::Node;
use storenode::sync::wire::{self, DownBatch, Message, SignedDown, SignedUp, UpBatch};
use storenode::sync::{spawn_hq_sync, spawn_store_sync, HqSyncConfig, StoreSyncConfig};
use sync_support::{embedded_broker, publish_raw, sku, store_a, store_b, wait_for, CHAIN};
use tokio::sync::watch;

fn receive(store: &StoreId, qty: u32) -> Payload {
    Payload::StockReceive {
        store: store.clone(),
        sku: sku(),
        qty,
        reason: ReceiveReason::Delivery,
    }
}

fn signed(key: &StoreKey, claimed: &StoreId, ops: Vec<Op>) -> Vec<u8> {
    let batch = postcard::to_allocvec(&UpBatch {
        store: claimed.clone(),
        ops,
    })
    .unwrap();
    let signature = key.sign(&batch).to_vec();
    wire::encode(&Message::SignedUp(SignedUp {
        store: claimed.clone(),
        batch,
        signature,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_applies_signed_batches_and_refuses_unsigned_forged_and_replayed_ones() {
    let port = embedded_broker();
    let dir = tempfile::tempdir().unwrap();
    let (a_db, b_db) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let hq = Node::open(&dir.path().join("hq.db"), ActorId::hq()).unwrap();
    let a = Node::open(&a_db, store_a().actor()).unwrap();
    let b = Node::open(&b_db, store_b().actor()).unwrap();
    // Keys are created beside each store's database on first start; HQ registers both.
    let a_cfg = StoreSyncConfig::new(CHAIN, store_a(), "127.0.0.1", port)
        .with_key_beside(&a_db)
        .unwrap();
    let b_key = StoreKey::load_or_create(&b_db, store_b()).unwrap();
    let a_key = StoreKey::load_or_create(&a_db, store_a()).unwrap();
    assert_eq!(
        a_key.public_hex(),
        a_cfg.signing_key.as_ref().unwrap().public_hex()
    );
    let keys = StoreKeys::parse([
        (store_a(), a_key.public_hex().as_str()),
        (store_b(), b_key.public_hex().as_str()),
    ])
    .unwrap();
    let (shutdown, rx) = watch::channel(false);
    let mut hq_cfg = HqSyncConfig::new(CHAIN, vec![store_a(), store_b()], "127.0.0.1", port);
    hq_cfg.store_keys = Some(Arc::new(keys));
    hq_cfg.retransmit_ms = 500;
    let hq_sync = spawn_hq_sync(hq.clone(), hq_cfg, rx.clone());
    let mut a_cfg = a_cfg;
    a_cfg.retransmit_ms = 500;
    let _a_sync = spawn_store_sync(a.clone(), a_cfg, rx.clone());
    // Store B runs without its key: its batches go out unsigned.
    let mut b_cfg = StoreSyncConfig::new(CHAIN, store_b(), "127.0.0.1", port);
    b_cfg.retransmit_ms = 500;
    let _b_sync = spawn_store_sync(b.clone(), b_cfg, rx);

    hq.submit(vec![Payload::CatalogPut {
        sku: sku(),
        ean: Ean13::parse("4006381333931").unwrap(),
        name: "Green tea".into(),
        price_cents: 250,
        vat_bp: 1000,
    }])
    .await
    .unwrap();
    for node in [&a, &b] {
        let n = node.clone();
        wait_for(
            Duration::from_secs(10),
            "the catalog reaches the store",
            || n.read(|r| r.state().catalog.contains(&sku())),
        )
        .await;
    }
    a.submit(vec![receive(&store_a(), 10)]).await.unwrap();
    b.submit(vec![receive(&store_b(), 10)]).await.unwrap();

    // A's signed batches arrive and converge.
    let (h, n) = (hq.clone(), a.clone());
    wait_for(Duration::from_secs(10), "A's signed ops reach HQ", || {
        let last = n.read(|r| r.next_seq() - 1);
        h.read(|r| r.version().contiguous(&store_a().actor())) == last
    })
    .await;
    let m = hq_sync.metrics();
    wait_for(
        Duration::from_secs(10),
        "B's unsigned batches are refused",
        || m.rejected("unsigned") >= 1,
    )
    .await;
    assert_eq!(hq.read(|r| r.version().contiguous(&store_b().actor())), 0);

    // A compromised store A forges B's stock: signed with A's key, on B's topic; the same
    // batch claiming B on A's own topic; and B's genuine-looking batch with a flipped byte.
    let forged_op = Op {
        actor: store_b().actor(),
        seq: 1,
        hlc: Hlc::new(storenode::store::now_ms(), 0),
        payload: receive(&store_b(), 500),
    };
    let on_b = format!("storenode/v1/{CHAIN}/store/{}/up", store_b());
    let on_a = format!("storenode/v1/{CHAIN}/store/{}/up", store_a());
    let mut tampered = signed(&b_key, &store_b(), vec![forged_op.clone()]);
    let flip = tampered.len() - 70;
    tampered[flip] ^= 0x40;
    publish_raw(
        port,
        vec![
            (
                on_b.clone(),
                signed(&a_key, &store_b(), vec![forged_op.clone()]),
            ),
            (on_a, signed(&a_key, &store_b(), vec![forged_op.clone()])),
            (on_b, tampered),
        ],
    )
    .await;
    wait_for(Duration::from_secs(10), "every forgery is counted", || {
        m.rejected("signed_by_other_store") >= 1
            && m.rejected("topic_mismatch") >= 1
            && m.rejected("bad_signature") + m.rejected("malformed") >= 1
    })
    .await;
    assert_eq!(hq.read(|r| r.version().contiguous(&store_b().actor())), 0);
    assert_eq!(
        hq.read(|r| r.state().rights(&store_b(), &sku(), &store_b().actor())),
        0
    );
    // A keeps syncing after all that.
    a.submit(vec![receive(&store_a(), 1)]).await.unwrap();
    let (h, n) = (hq.clone(), a.clone());
    wait_for(Duration::from_secs(10), "A still syncs", || {
        let last = n.read(|r| r.next_seq() - 1);
        h.read(|r| r.version().contiguous(&store_a().actor())) == last
    })
    .await;
    shutdown.send_replace(true);
}

fn tea(n: u32) -> Payload {
    Payload::CatalogPut {
        sku: storenode::domain::Sku::parse(&format!("SKU-TEA-{n}")).unwrap(),
        ean: Ean13::parse("4006381333931").unwrap(),
        name: format!("Tea {n}"),
        price_cents: 250,
        vat_bp: 1000,
    }
}

fn signed_down(key: &HqKey, store: &StoreId, batch: DownBatch) -> Vec<u8> {
    let batch = postcard::to_allocvec(&batch).unwrap();
    let signature = key.sign(store, &batch).to_vec();
    wire::encode(&Message::SignedDown(SignedDown {
        store: store.clone(),
        batch,
        signature,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_applies_only_down_batches_hq_signed_for_it() {
    let port = embedded_broker();
    let dir = tempfile::tempdir().unwrap();
    let hq = Node::open(&dir.path().join("hq.db"), ActorId::hq()).unwrap();
    let a = Node::open(&dir.path().join("a.db"), store_a().actor()).unwrap();
    let hq_key = Arc::new(HqKey::from_secret([5; 32]));
    let (shutdown, rx) = watch::channel(false);
    let mut hq_cfg = HqSyncConfig::new(CHAIN, vec![store_a(), store_b()], "127.0.0.1", port);
    hq_cfg.hq_key = Some(hq_key.clone());
    let _hq_sync = spawn_hq_sync(hq.clone(), hq_cfg, rx.clone());
    let mut a_cfg = StoreSyncConfig::new(CHAIN, store_a(), "127.0.0.1", port);
    a_cfg.hq_public_key = Some(Arc::new(HqPublicKey::parse(&hq_key.public_hex()).unwrap()));
    let a_sync = spawn_store_sync(a.clone(), a_cfg, rx);

    hq.submit(vec![tea(1)]).await.unwrap();
    let n = a.clone();
    wait_for(
        Duration::from_secs(10),
        "HQ's signed batch is applied",
        || n.read(|r| r.version().contiguous(&ActorId::hq())) == 1,
    )
    .await;

    // Whoever can publish on A's down topic: an unsigned batch, one signed with another key,
    // and one HQ really signed, but for store B, replayed on A's topic.
    let forged = |n: u32| DownBatch {
        first_idx: 2,
        ops: vec![Op {
            actor: ActorId::hq(),
            seq: 2,
            hlc: Hlc::new(storenode::store::now_ms(), 0),
            payload: tea(n),
        }],
    };
    let down = format!("storenode/v1/{CHAIN}/store/{}/down", store_a());
    let other_key = HqKey::from_secret([6; 32]);
    publish_raw(
        port,
        vec![
            (
                down.clone(),
                wire::encode(&Message::Down(forged(66))).unwrap(),
            ),
            (
                down.clone(),
                signed_down(&other_key, &store_a(), forged(67)),
            ),
            (down, signed_down(&hq_key, &store_b(), forged(68))),
        ],
    )
    .await;
    let m = a_sync.metrics();
    wait_for(Duration::from_secs(10), "every forgery is counted", || {
        m.rejected("down_unsigned") == 1 && m.rejected("down_bad_signature") == 2
    })
    .await;
    assert_eq!(a.read(|r| r.version().contiguous(&ActorId::hq())), 1);

    // HQ's next genuine batch (entry 2) is still taken: no forgery moved the cursor.
    hq.submit(vec![tea(2)]).await.unwrap();
    let n = a.clone();
    wait_for(
        Duration::from_secs(10),
        "HQ's next batch is applied",
        || n.read(|r| r.version().contiguous(&ActorId::hq())) == 2,
    )
    .await;
    for n in [66, 67, 68] {
        let forged = storenode::domain::Sku::parse(&format!("SKU-TEA-{n}")).unwrap();
        assert!(!a.read(|r| r.state().catalog.contains(&forged)), "{forged}");
    }
    shutdown.send_replace(true);
}

#[test]
fn the_key_command_prints_the_same_public_key_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_storenode"))
            .args(["key", "--store", "norte", "--db"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    assert!(first.starts_with("norte "), "{first}");
    assert_eq!(first.trim().len(), "norte ".len() + 64);
    assert_eq!(run(), first);
}

/// A child process killed (SIGKILL) on drop, so a failing test leaves nothing behind.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_bin(args: &[&str], config: &std::path::Path) -> Proc {
    Proc(
        std::process::Command::new(env!("CARGO_BIN_EXE_storenode"))
            .args(args)
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// `GET path` over plain HTTP/1.0: (status, body), or None while nothing listens.
fn http_get(port: u16, path: &str, token: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    Some((status, out.split("\r\n\r\n").nth(1)?.to_string()))
}

/// Poll `f` every 50 ms until it gives a value or `within` passes.
fn poll<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A prometheus counter's value in `text` (0 when absent).
fn counter(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// A store's available units at HQ, from the availability API.
fn available_at_hq(port: u16, token: &str, store: &StoreId) -> Option<u64> {
    let (status, body) = http_get(port, &format!("/api/v1/availability?sku={}", sku()), token)?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["stores"]
        .as_array()?
        .iter()
        .find(|s| s["store"] == store.as_str())?["available"]
        .as_u64()
}

#[test]
fn an_hq_process_accepts_its_registered_store_and_refuses_one_with_another_key() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = rt.block_on(async { embedded_broker() });
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    // HQ's catalog, and each store's own stock receipt waiting in its outbox.
    rt.block_on(async {
        let hq = Node::open(&path("hq.db"), ActorId::hq()).unwrap();
        let put = hq
            .submit(vec![Payload::CatalogPut {
                sku: sku(),
                ean: Ean13::parse("4006381333931").unwrap(),
                name: "Green tea".into(),
                price_cents: 250,
                vat_bp: 1000,
            }])
            .await
            .unwrap()
            .ops;
        for (store, db) in [(store_a(), "a.db"), (store_b(), "b.db")] {
            let node = Node::open(&path(db), store.actor()).unwrap();
            node.ingest(put.clone()).await.unwrap();
            node.submit(vec![receive(&store, 10)]).await.unwrap();
        }
        // A second catalog entry only HQ has: it must travel down, signed.
        hq.submit(vec![tea(1)]).await.unwrap();
    });
    // HQ's key, created beside its database by `storenode key --hq`; A is configured with it,
    // B with the key of another HQ, so B must refuse every down-batch.
    let hq_key_line = |db: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_storenode"))
            .args(["key", "--hq", "--db"])
            .arg(path(db))
            .output()
            .unwrap();
        assert!(out.status.success());
        let line = String::from_utf8(out.stdout).unwrap();
        assert!(line.starts_with("hq_public_key = \""), "{line}");
        line.trim().to_string()
    };
    let hq_lines = [hq_key_line("hq.db"), hq_key_line("other-hq.db")];
    // Registration: `storenode key` creates A's key beside its database and prints it; B is
    // registered with the key of another database, so B's own key is not the one HQ knows.
    let key_line = |db: &str, store: &StoreId| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_storenode"))
            .args(["key", "--store", store.as_str(), "--db"])
            .arg(path(db))
            .output()
            .unwrap();
        assert!(out.status.success());
        let line = String::from_utf8(out.stdout).unwrap();
        line.split_whitespace().nth(1).unwrap().to_string()
    };
    let a_pub = key_line("a.db", &store_a());
    let b_registered = key_line("elsewhere.db", &store_b());
    let (hq_port, a_port, b_port) = (
        sync_support::free_port(),
        sync_support::free_port(),
        sync_support::free_port(),
    );
    let token = "process-test-token";
    std::fs::write(
        path("hq.toml"),
        format!(
            "role = \"hq\"\nchain = \"{CHAIN}\"\ndb = {db:?}\nstores = [\"{a}\", \"{b}\"]\n\
             token = \"{token}\"\n[mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\n\
             [http]\nlisten = \"127.0.0.1:{hq_port}\"\n[pickup]\nqr_keys = [\"{qr}\"]\n\
             [store_keys]\n{a} = \"{a_pub}\"\n{b} = \"{b_registered}\"\n",
            db = path("hq.db").display().to_string(),
            a = store_a(),
            b = store_b(),
            qr = "00112233445566778899aabbccddeeff",
        ),
    )
    .unwrap();
    let stores = [(store_a(), "a.db", a_port), (store_b(), "b.db", b_port)];
    for ((store, db, port), hq_line) in stores.into_iter().zip(&hq_lines) {
        std::fs::write(
            path(&format!("{store}.toml")),
            format!(
                "role = \"store\"\nstore = \"{store}\"\nchain = \"{CHAIN}\"\ndata_dir = {dir:?}\n\
                 db = {db:?}\n{hq_line}\n[mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\n\
                 [http]\nlisten = \"127.0.0.1:{port}\"\n\
                 [allocation]\nhq_share_percent = 30\nmin_one_above = 2\n\
                 [pickup]\nexpire_after_days = 7\nqr_keys = [\"00112233445566778899aabbccddeeff\"]\n",
                dir = dir.path().display().to_string(),
                db = path(db).display().to_string(),
            ),
        )
        .unwrap();
    }
    let _hq = spawn_bin(&["hq", "--config"], &path("hq.toml"));
    let _a = spawn_bin(&["run", "--config"], &path(&format!("{}.toml", store_a())));
    let _b = spawn_bin(&["run", "--config"], &path(&format!("{}.toml", store_b())));

    // A's signed receipt is applied at HQ.
    poll(Duration::from_secs(30), "A's signed ops reach HQ", || {
        available_at_hq(hq_port, token, &store_a()).filter(|n| *n == 10)
    });
    // B's batches, signed with a key HQ does not hold for B, are refused and counted...
    let refused = |text: &str| {
        counter(
            text,
            "storenode_sync_batches_rejected_total{reason=\"bad_signature\"}",
        )
    };
    let first = poll(Duration::from_secs(30), "B's batches are refused", || {
        let (_, text) = http_get(hq_port, "/metrics", token)?;
        Some(refused(&text)).filter(|n| *n >= 1)
    });
    // ...every time B retransmits (its store keeps them in its outbox), and none is applied.
    poll(
        Duration::from_secs(30),
        "B's retransmit is refused too",
        || {
            let (_, text) = http_get(hq_port, "/metrics", token)?;
            Some(refused(&text)).filter(|n| *n > first)
        },
    );
    assert_eq!(available_at_hq(hq_port, token, &store_b()), Some(0));
    assert_eq!(available_at_hq(hq_port, token, &store_a()), Some(10));
    let ops_of = |db: &str, actor: &str| -> i64 {
        rusqlite::Connection::open(path(db))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM ops WHERE actor = ?1", [actor], |r| {
                r.get(0)
            })
            .unwrap()
    };
    // Down the other way: A applies HQ's signed batch; B, holding another HQ's key, refuses
    // and counts each one.
    poll(
        Duration::from_secs(30),
        "HQ's signed batch reaches A",
        || (ops_of("a.db", "hq") == 2).then_some(()),
    );
    poll(Duration::from_secs(30), "B refuses HQ's batches", || {
        let (_, text) = http_get(b_port, "/metrics", token)?;
        let series = "storenode_sync_batches_rejected_total{reason=\"down_bad_signature\"}";
        (counter(&text, series) >= 1).then_some(())
    });
    drop((_a, _b, _hq));
    assert!(ops_of("hq.db", &store_a().actor().to_string()) >= 1);
    assert_eq!(ops_of("hq.db", &store_b().actor().to_string()), 0);
    assert_eq!(ops_of("b.db", "hq"), 1);
}
