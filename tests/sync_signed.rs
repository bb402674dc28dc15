//! Signed store batches over a real broker (embedded): a store with its ed25519 key syncs as
//! usual; HQ, holding the stores' public keys, refuses an unsigned store, a batch signed by
//! another store's key, a batch replayed on another store's topic and a tampered one, counts
//! each by reason, and applies none of them.

mod sync_support;

use std::sync::Arc;
use std::time::Duration;
use storenode::domain::op::ReceiveReason;
use storenode::domain::{ActorId, Ean13, Hlc, Op, Payload, StoreId};
use storenode::signing::{StoreKey, StoreKeys};
use storenode::store::Node;
use storenode::sync::wire::{self, Message, SignedUp, UpBatch};
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
