use super::*;
use crate::domain::op::ReceiveReason;
use crate::domain::{ActorId, Hlc, Payload, Sku};

fn s(id: &str) -> StoreId {
    StoreId::parse(id).unwrap()
}

fn op(actor: ActorId, seq: u64) -> Op {
    Op {
        actor,
        seq,
        hlc: Hlc::new(seq, 0),
        payload: Payload::StockReceive {
            store: s("madrid-centro"),
            sku: Sku::parse("SKU-1").unwrap(),
            qty: 3,
            reason: ReceiveReason::Delivery,
        },
    }
}

fn two_stores() -> (StoreKey, StoreKey, StoreKeys) {
    let a = StoreKey::from_secret(s("madrid-centro"), [1; 32]);
    let b = StoreKey::from_secret(s("sevilla-nervion"), [2; 32]);
    let keys = StoreKeys::parse([
        (a.store().clone(), a.public_hex().as_str()),
        (b.store().clone(), b.public_hex().as_str()),
    ])
    .unwrap();
    (a, b, keys)
}

#[test]
fn a_batch_signed_by_its_store_is_accepted() {
    let (a, _, keys) = two_stores();
    let batch = b"batch bytes".to_vec();
    let sig = a.sign(&batch);
    assert_eq!(
        keys.verify(a.store(), a.store(), &batch, Some(&sig)),
        Ok(())
    );
    let ops = [op(a.store().actor(), 1), op(a.store().actor(), 2)];
    assert_eq!(keys.check_ops(a.store(), &ops), Ok(()));
    assert!(keys.rejected().is_empty());
}

#[test]
fn unsigned_tampered_cross_store_and_foreign_actor_batches_are_refused_and_counted() {
    let (a, b, keys) = two_stores();
    let batch = b"batch bytes".to_vec();
    let sig = a.sign(&batch);
    let (sa, sb) = (a.store(), b.store());
    assert_eq!(
        keys.verify(sa, sa, &batch, None),
        Err(Rejected::Unsigned { store: sa.clone() })
    );
    let mut tampered = batch.clone();
    tampered[0] ^= 1;
    assert_eq!(
        keys.verify(sa, sa, &tampered, Some(&sig)),
        Err(Rejected::BadSignature { store: sa.clone() })
    );
    assert_eq!(
        keys.verify(sa, sa, &batch, Some(&sig[..10])),
        Err(Rejected::BadSignature { store: sa.clone() })
    );
    // A signs a batch claiming to be B's and sends it on B's topic.
    let forged = a.sign(&batch);
    assert_eq!(
        keys.verify(sb, sb, &batch, Some(&forged)),
        Err(Rejected::SignedByOtherStore {
            store: sb.clone(),
            signer: sa.clone()
        })
    );
    // A's genuine batch replayed on B's topic.
    assert_eq!(
        keys.verify(sb, sa, &batch, Some(&sig)),
        Err(Rejected::TopicMismatch {
            topic: sb.clone(),
            claimed: sa.clone()
        })
    );
    let unknown = s("bilbao-abando");
    assert_eq!(
        keys.verify(&unknown, &unknown, &batch, Some(&sig)),
        Err(Rejected::UnknownStore { store: unknown })
    );
    // A signed batch from A that carries ops of B or HQ.
    let ops = [op(sa.actor(), 1), op(sb.actor(), 7)];
    assert!(matches!(
        keys.check_ops(sa, &ops),
        Err(Rejected::ForeignActor { seq: 7, .. })
    ));
    assert!(keys.check_ops(sa, &[op(ActorId::hq(), 1)]).is_err());
    let counts = keys.rejected();
    assert_eq!(counts.get("unsigned"), Some(&1));
    assert_eq!(counts.get("bad_signature"), Some(&2));
    assert_eq!(counts.get("signed_by_other_store"), Some(&1));
    assert_eq!(counts.get("topic_mismatch"), Some(&1));
    assert_eq!(counts.get("unknown_store"), Some(&1));
    assert_eq!(counts.get("foreign_actor"), Some(&2));
}

#[test]
fn a_store_key_is_created_once_beside_the_database_and_kept_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let first = StoreKey::load_or_create(&db, s("madrid-centro")).unwrap();
    let again = StoreKey::load_or_create(&db, s("madrid-centro")).unwrap();
    assert_eq!(first.public_hex(), again.public_hex());
    let path = StoreKey::path_for(&db);
    assert!(path.ends_with("store.db.ed25519"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let secret = std::fs::read_to_string(&path).unwrap();
    assert!(!format!("{first:?}").contains(secret.trim()));
    // Another database gets another key.
    let other = StoreKey::load_or_create(&dir.path().join("b.db"), s("madrid-centro")).unwrap();
    assert_ne!(first.public_hex(), other.public_hex());
}

#[test]
fn a_damaged_key_file_is_refused_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    std::fs::write(StoreKey::path_for(&db), "not a key\n").unwrap();
    let err = StoreKey::load_or_create(&db, s("madrid-centro")).unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(
        std::fs::read_to_string(StoreKey::path_for(&db)).unwrap(),
        "not a key\n"
    );
    assert!(StoreKeys::parse([(s("x"), "zz")]).is_err());
    assert!(StoreKeys::parse([(s("x"), "00")]).is_err());
}
