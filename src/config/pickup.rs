//! `[pickup]` of a store and of HQ: the rotating chain keys of pickup QR MACs and how long a
//! store keeps an uncollected order. A key is at least `QR_KEY_BYTES_MIN` bytes of hex and
//! never shown in `Debug` output.

use super::{push, ConfigError};
use serde::Deserialize;
use std::fmt;

/// A chain key for pickup QR MACs, given in hex in the file.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct QrKey(Vec<u8>);

/// Shortest QR key accepted, in bytes.
pub const QR_KEY_BYTES_MIN: usize = 16;

impl QrKey {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A fresh random QR key (32 bytes as hex) to put first in `pickup.qr_keys` when rotating
/// (`storenode new-qr-key`).
pub fn new_qr_key_hex() -> String {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    hex::encode(key)
}

/// Rotation keeps a few keys at most: the current one and the ones codes in flight may use.
pub const QR_KEYS_MAX: usize = 4;

pub(super) fn check_qr_keys(keys: &[QrKey], errs: &mut Vec<ConfigError>) {
    if keys.is_empty() {
        push(errs, "pickup.qr_keys", "needs at least one key");
    }
    if keys.len() > QR_KEYS_MAX {
        push(
            errs,
            "pickup.qr_keys",
            format!(
                "{} keys; keep at most {QR_KEYS_MAX} (the current one first, then the previous \
                 ones codes in flight may still use)",
                keys.len()
            ),
        );
    }
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].contains(k) {
            push(errs, &format!("pickup.qr_keys[{i}]"), "duplicate key");
        }
    }
}

impl fmt::Debug for QrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QrKey({} bytes)", self.0.len())
    }
}

impl TryFrom<String> for QrKey {
    type Error = String;
    fn try_from(s: String) -> Result<QrKey, String> {
        let bytes = hex::decode(s.trim()).map_err(|e| format!("not hex: {e}"))?;
        if bytes.len() < QR_KEY_BYTES_MIN {
            return Err(format!(
                "key of {} bytes, expected at least {QR_KEY_BYTES_MIN}",
                bytes.len()
            ));
        }
        Ok(QrKey(bytes))
    }
}

/// Pickup settings of a store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorePickupConfig {
    pub expire_after_days: u32,
    /// Newest first: the first signs, all verify (key rotation).
    pub qr_keys: Vec<QrKey>,
}

/// Pickup settings of HQ.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HqPickupConfig {
    /// Newest first: the first signs the QR payload of new orders.
    pub qr_keys: Vec<QrKey>,
}
