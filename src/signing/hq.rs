//! HQ's down-batch signatures: HQ signs every batch of its down-log it sends a store, and a
//! store holding HQ's public key applies only batches that verify.
//!
//! HQ's key lives beside its database (`<hq db>.ed25519`, created on first start like a
//! store's); each store's config names the public half (`hq_public_key`). What is signed is a
//! context, the receiving store's id and the exact batch bytes, so a batch HQ sent one store
//! cannot be replayed on another store's topic, and a store signature can never pass as HQ's.

use super::{load_or_create_secret, KeyError, StoreKey, SIGNATURE_BYTES};
use crate::domain::StoreId;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use std::path::{Path, PathBuf};

/// Domain separation: these signatures mean "HQ down-batch, protocol v1" and nothing else.
const DOWN_CONTEXT: &[u8] = b"storenode/v1/down-batch\0";
/// Domain separation for HQ's acks and lookup replies (`wire::SignedReply`), so a signed reply
/// can never pass as a down-batch or the other way round.
const REPLY_CONTEXT: &[u8] = b"storenode/v1/hq-reply\0";

/// Why a store refused a down-batch, an ack or a lookup reply that claims to come from HQ.
/// Counted by reason; nothing in it is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownRejected {
    /// An unsigned down-batch reached a store that holds HQ's public key.
    #[error("unsigned down-batch on store {store}'s topic")]
    Unsigned { store: StoreId },
    /// The signature is malformed, by another key, or for another store.
    #[error("down-batch on store {store}'s topic is not signed by HQ")]
    BadSignature { store: StoreId },
    /// A bare ack or lookup reply from HQ reached a store that holds HQ's public key.
    #[error("unsigned reply from HQ on store {store}'s topic")]
    UnsignedReply { store: StoreId },
    /// An ack or lookup reply whose signature is malformed, by another key, or for another
    /// store (a genuine reply replayed on this store's topic).
    #[error("reply on store {store}'s topic is not signed by HQ for it")]
    BadReplySignature { store: StoreId },
}

impl DownRejected {
    /// Label for the rejection counter and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            DownRejected::Unsigned { .. } => "down_unsigned",
            DownRejected::BadSignature { .. } => "down_bad_signature",
            DownRejected::UnsignedReply { .. } => "reply_unsigned",
            DownRejected::BadReplySignature { .. } => "reply_bad_signature",
        }
    }
}

/// The bytes a signature covers: context, receiving store, message bytes.
fn signed_bytes(context: &[u8], store: &StoreId, batch: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(context.len() + store.as_str().len() + 1 + batch.len());
    out.extend_from_slice(context);
    out.extend_from_slice(store.as_str().as_bytes());
    out.push(0);
    out.extend_from_slice(batch);
    out
}

/// HQ's signing key.
pub struct HqKey {
    key: SigningKey,
}

impl std::fmt::Debug for HqKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "HqKey({})", self.public_hex())
    }
}

impl HqKey {
    /// Where the key of HQ's database at `db` lives (`<db>.ed25519`, as for a store).
    pub fn path_for(db: &Path) -> PathBuf {
        StoreKey::path_for(db)
    }

    /// Load the key beside `db`, or create it on first start (fsynced, mode 0600).
    pub fn load_or_create(db: &Path) -> Result<HqKey, KeyError> {
        Ok(HqKey {
            key: load_or_create_secret(&HqKey::path_for(db))?,
        })
    }

    /// A key from 32 secret bytes (tests, simulations).
    pub fn from_secret(secret: [u8; 32]) -> HqKey {
        HqKey {
            key: SigningKey::from_bytes(&secret),
        }
    }

    /// The public key as 64 hex digits, for the stores' `hq_public_key`.
    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Sign the encoded down-batch bytes HQ is about to publish to `store`.
    pub fn sign(&self, store: &StoreId, batch: &[u8]) -> [u8; SIGNATURE_BYTES] {
        self.key
            .sign(&signed_bytes(DOWN_CONTEXT, store, batch))
            .to_bytes()
    }

    /// Sign the encoded ack or lookup reply HQ is about to publish to `store`.
    pub fn sign_reply(&self, store: &StoreId, message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        self.key
            .sign(&signed_bytes(REPLY_CONTEXT, store, message))
            .to_bytes()
    }
}

/// HQ's public key, as a store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HqPublicKey {
    key: VerifyingKey,
}

impl HqPublicKey {
    /// From 64 hex digits (a store's `hq_public_key`).
    pub fn parse(text: &str) -> Result<HqPublicKey, KeyError> {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .map_err(|e| KeyError::BadHqKey(e.to_string()))?
            .try_into()
            .map_err(|_| KeyError::BadHqKey("expected 32 bytes (64 hex digits)".into()))?;
        let key =
            VerifyingKey::from_bytes(&bytes).map_err(|e| KeyError::BadHqKey(e.to_string()))?;
        Ok(HqPublicKey { key })
    }

    /// Check a down-batch that arrived on `store`'s down topic, before it is decoded.
    pub fn verify(
        &self,
        store: &StoreId,
        batch: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<(), DownRejected> {
        self.check(DOWN_CONTEXT, store, batch, signature)
    }

    /// Check an ack or lookup reply that arrived for `store`, before it is decoded. Refusals
    /// have labels of their own (`reply_unsigned`, `reply_bad_signature`).
    pub fn verify_reply(
        &self,
        store: &StoreId,
        message: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<(), DownRejected> {
        self.check(REPLY_CONTEXT, store, message, signature)
            .map_err(|e| match e {
                DownRejected::Unsigned { store } => DownRejected::UnsignedReply { store },
                DownRejected::BadSignature { store } => DownRejected::BadReplySignature { store },
                other => other,
            })
    }

    fn check(
        &self,
        context: &[u8],
        store: &StoreId,
        batch: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<(), DownRejected> {
        let Some(signature) = signature else {
            return Err(DownRejected::Unsigned {
                store: store.clone(),
            });
        };
        let bad = || DownRejected::BadSignature {
            store: store.clone(),
        };
        let signature = Signature::from_slice(signature).map_err(|_| bad())?;
        self.key
            .verify(&signed_bytes(context, store, batch), &signature)
            .map_err(|_| bad())
    }
}

/// `storenode key --hq`: the line every store config needs, creating HQ's key beside its
/// database on first use.
pub fn hq_public_key_command(db: &Path) -> anyhow::Result<String> {
    let key = HqKey::load_or_create(db)?;
    Ok(format!("hq_public_key = \"{}\"", key.public_hex()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str) -> StoreId {
        StoreId::parse(id).unwrap()
    }

    #[test]
    fn a_down_batch_signed_by_hq_for_this_store_verifies() {
        let hq = HqKey::from_secret([9; 32]);
        let public = HqPublicKey::parse(&hq.public_hex()).unwrap();
        let sig = hq.sign(&s("madrid-centro"), b"batch");
        assert_eq!(
            public.verify(&s("madrid-centro"), b"batch", Some(&sig)),
            Ok(())
        );
    }

    #[test]
    fn unsigned_tampered_replayed_and_store_signed_down_batches_are_refused() {
        let hq = HqKey::from_secret([9; 32]);
        let public = HqPublicKey::parse(&hq.public_hex()).unwrap();
        let madrid = s("madrid-centro");
        let sig = hq.sign(&s("sevilla-nervion"), b"batch");
        let reason = |r: Result<(), DownRejected>| r.unwrap_err().reason();
        assert_eq!(
            reason(public.verify(&madrid, b"batch", None)),
            "down_unsigned"
        );
        // Sent to Sevilla, replayed on Madrid's topic.
        assert_eq!(
            reason(public.verify(&madrid, b"batch", Some(&sig))),
            "down_bad_signature"
        );
        let sig = hq.sign(&madrid, b"batch");
        assert_eq!(
            reason(public.verify(&madrid, b"batcH", Some(&sig))),
            "down_bad_signature"
        );
        assert_eq!(
            reason(public.verify(&madrid, b"batch", Some(&sig[..10]))),
            "down_bad_signature"
        );
        // A store's key (same secret bytes, store context) is not HQ's signature.
        let store = StoreKey::from_secret(madrid.clone(), [9; 32]);
        assert_eq!(
            reason(public.verify(&madrid, b"batch", Some(&store.sign(b"batch")))),
            "down_bad_signature"
        );
    }

    #[test]
    fn a_bad_hq_public_key_is_refused_with_the_reason() {
        let (short, not_hex) = ("0".repeat(62), "zz".repeat(32));
        for text in ["", "abc", short.as_str(), not_hex.as_str()] {
            let e = HqPublicKey::parse(text).unwrap_err();
            assert!(
                e.to_string().starts_with("HQ's public key is invalid"),
                "{e}"
            );
        }
    }

    #[test]
    fn hq_key_is_kept_beside_its_database_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hq.db");
        let first = HqKey::load_or_create(&db).unwrap();
        assert!(HqKey::path_for(&db).exists());
        let again = HqKey::load_or_create(&db).unwrap();
        assert_eq!(first.public_hex(), again.public_hex());
        let line = hq_public_key_command(&db).unwrap();
        assert_eq!(line, format!("hq_public_key = \"{}\"", first.public_hex()));
    }
}
