//! Batch signatures (ed25519): each store signs the batches it sends up, and HQ accepts a
//! batch only if the store named on its topic signed it and every op in it is that store's own.
//! HQ signs the down-batches it sends each store in turn (`hq.rs`), so a store trusts HQ, not
//! whoever can publish on its topic.
//!
//! A store's key is generated on first start and kept beside its database (`<db>.ed25519`,
//! mode 0600); HQ holds every store's public key. What is signed is the exact batch bytes,
//! prefixed with a context and the store id, and HQ verifies before it parses the batch, so a
//! compromised store can neither forge another store's sales nor replay its signature on
//! another store's topic.

use crate::domain::{Op, StoreId};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod hq;
pub use hq::{hq_public_key_command, DownRejected, HqKey, HqPublicKey};

/// Domain separation: these signatures mean "store batch, protocol v1" and nothing else.
const CONTEXT: &[u8] = b"storenode/v1/up-batch\0";
/// Length of an ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// Why a key could not be loaded, created or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The key file exists but does not hold a key; it is left alone (never regenerated,
    /// which would silently change the store's identity).
    #[error(
        "key file {0} is damaged (expected 64 hex digits); restore it or re-register the store"
    )]
    Damaged(String),
    /// HQ's public key in a store's configuration is not valid.
    #[error("HQ's public key is invalid: {0}")]
    BadHqKey(String),
    /// A public key in HQ's configuration is not valid.
    #[error("public key of store {store} is invalid: {reason}")]
    BadPublicKey { store: String, reason: String },
}

/// Why HQ refused a batch. Each is counted and logged; nothing in the batch is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// The batch carries no signature.
    #[error("unsigned batch on store {store}'s topic")]
    Unsigned { store: StoreId },
    /// No public key is registered for the store.
    #[error("no public key registered for store {store}")]
    UnknownStore { store: StoreId },
    /// The batch names another store than the topic it came on.
    #[error("batch for store {claimed} arrived on store {topic}'s topic")]
    TopicMismatch { topic: StoreId, claimed: StoreId },
    /// The signature is malformed or does not verify with any registered key.
    #[error("bad signature on a batch from store {store}")]
    BadSignature { store: StoreId },
    /// Valid signature, but by another store's key: a store forging another's batch.
    #[error("batch for store {store} was signed by store {signer}")]
    SignedByOtherStore { store: StoreId, signer: StoreId },
    /// An op in the batch claims an author other than the store.
    #[error("batch from store {store} carries op {actor}/{seq} of another actor")]
    ForeignActor {
        store: StoreId,
        actor: String,
        seq: u64,
    },
}

impl Rejected {
    /// Label for the rejection counter and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejected::Unsigned { .. } => "unsigned",
            Rejected::UnknownStore { .. } => "unknown_store",
            Rejected::TopicMismatch { .. } => "topic_mismatch",
            Rejected::BadSignature { .. } => "bad_signature",
            Rejected::SignedByOtherStore { .. } => "signed_by_other_store",
            Rejected::ForeignActor { .. } => "foreign_actor",
        }
    }
}

/// The bytes a signature covers: context, store id, batch bytes.
fn signed_bytes(store: &StoreId, batch: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CONTEXT.len() + store.as_str().len() + 1 + batch.len());
    out.extend_from_slice(CONTEXT);
    out.extend_from_slice(store.as_str().as_bytes());
    out.push(0);
    out.extend_from_slice(batch);
    out
}

/// A store's signing key.
pub struct StoreKey {
    store: StoreId,
    key: SigningKey,
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "StoreKey({}, {})", self.store, self.public_hex())
    }
}

impl StoreKey {
    /// Where the key of the database at `db` lives.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".ed25519");
        PathBuf::from(name)
    }

    /// Load the key beside `db`, or create it on first start (fsynced, mode 0600).
    pub fn load_or_create(db: &Path, store: StoreId) -> Result<StoreKey, KeyError> {
        let key = load_or_create_secret(&StoreKey::path_for(db))?;
        Ok(StoreKey { store, key })
    }

    /// A key from 32 secret bytes (tests, simulations).
    pub fn from_secret(store: StoreId, secret: [u8; 32]) -> StoreKey {
        StoreKey {
            store,
            key: SigningKey::from_bytes(&secret),
        }
    }

    pub fn store(&self) -> &StoreId {
        &self.store
    }

    /// The public key as 64 hex digits, for HQ's configuration.
    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Sign the encoded batch bytes this store is about to publish.
    pub fn sign(&self, batch: &[u8]) -> [u8; SIGNATURE_BYTES] {
        self.key.sign(&signed_bytes(&self.store, batch)).to_bytes()
    }
}

/// Load the secret key at `path`, or create it (fsynced, mode 0600) when there is none. A
/// damaged file is an error, never replaced: that would silently change the signer's identity.
fn load_or_create_secret(path: &Path) -> Result<SigningKey, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| KeyError::Damaged(path.display().to_string()))?;
            Ok(SigningKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            write_secret(path, &hex::encode(secret)).map_err(io)?;
            Ok(SigningKey::from_bytes(&secret))
        }
        Err(e) => Err(io(e)),
    }
}

/// `storenode key`: the line registering a store's public key at HQ, creating the key beside
/// the database on first use.
pub fn public_key_command(db: &Path, store: &str) -> anyhow::Result<String> {
    let store = StoreId::parse(store)?;
    let key = StoreKey::load_or_create(db, store.clone())?;
    Ok(format!("{store} {}", key.public_hex()))
}

/// Write a new secret file atomically: temp file (0600), fsync, rename, fsync the folder.
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("ed25519.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let _ = std::fs::remove_file(&tmp);
    let mut file = opts.open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// HQ's registry of store public keys, with counters of refused batches.
#[derive(Debug, Default)]
pub struct StoreKeys {
    keys: BTreeMap<StoreId, VerifyingKey>,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl StoreKeys {
    /// Keys from configuration: store id and 64 hex digits each.
    pub fn parse<'a>(
        entries: impl IntoIterator<Item = (StoreId, &'a str)>,
    ) -> Result<StoreKeys, KeyError> {
        let mut keys = BTreeMap::new();
        for (store, text) in entries {
            let bad = |reason: String| KeyError::BadPublicKey {
                store: store.to_string(),
                reason,
            };
            let bytes: [u8; 32] = hex::decode(text.trim())
                .map_err(|e| bad(e.to_string()))?
                .try_into()
                .map_err(|_| bad("expected 32 bytes (64 hex digits)".into()))?;
            let key = VerifyingKey::from_bytes(&bytes).map_err(|e| bad(e.to_string()))?;
            keys.insert(store, key);
        }
        Ok(StoreKeys {
            keys,
            rejected: Mutex::default(),
        })
    }

    /// Check a batch that arrived on `topic_store`'s up topic, claiming to be `claimed`'s,
    /// before its ops are decoded or applied; `ops` are checked once decoded (see
    /// [`StoreKeys::check_ops`]). Counts and logs every refusal.
    pub fn verify(
        &self,
        topic_store: &StoreId,
        claimed: &StoreId,
        batch: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<(), Rejected> {
        let outcome = self.verify_inner(topic_store, claimed, batch, signature);
        self.note(outcome)
    }

    fn verify_inner(
        &self,
        topic_store: &StoreId,
        claimed: &StoreId,
        batch: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<(), Rejected> {
        if topic_store != claimed {
            return Err(Rejected::TopicMismatch {
                topic: topic_store.clone(),
                claimed: claimed.clone(),
            });
        }
        let Some(signature) = signature else {
            return Err(Rejected::Unsigned {
                store: claimed.clone(),
            });
        };
        let key = self
            .keys
            .get(claimed)
            .ok_or_else(|| Rejected::UnknownStore {
                store: claimed.clone(),
            })?;
        let bad = || Rejected::BadSignature {
            store: claimed.clone(),
        };
        let signature = Signature::from_slice(signature).map_err(|_| bad())?;
        if key
            .verify(&signed_bytes(claimed, batch), &signature)
            .is_ok()
        {
            return Ok(());
        }
        // Which store really signed it? Only to say so in the log: it is refused either way.
        for (other, key) in self.keys.iter().filter(|(s, _)| *s != claimed) {
            if key.verify(&signed_bytes(other, batch), &signature).is_ok()
                || key
                    .verify(&signed_bytes(claimed, batch), &signature)
                    .is_ok()
            {
                return Err(Rejected::SignedByOtherStore {
                    store: claimed.clone(),
                    signer: other.clone(),
                });
            }
        }
        Err(bad())
    }

    /// Every op of a verified batch must be authored by the store itself.
    pub fn check_ops(&self, store: &StoreId, ops: &[Op]) -> Result<(), Rejected> {
        let actor = store.actor();
        let outcome = match ops.iter().find(|op| op.actor != actor) {
            Some(op) => Err(Rejected::ForeignActor {
                store: store.clone(),
                actor: op.actor.to_string(),
                seq: op.seq,
            }),
            None => Ok(()),
        };
        self.note(outcome)
    }

    fn note(&self, outcome: Result<(), Rejected>) -> Result<(), Rejected> {
        if let Err(e) = &outcome {
            tracing::warn!(reason = e.reason(), error = %e, "store batch rejected");
            let mut counts = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
            *counts.entry(e.reason()).or_default() += 1;
        }
        outcome
    }

    /// Refused batches so far, by reason (`Rejected::reason`).
    pub fn rejected(&self) -> BTreeMap<&'static str, u64> {
        self.rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests;
