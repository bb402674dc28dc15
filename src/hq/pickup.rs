//! Pickup code and signed QR payload, until `domain::pickup` lands from the devices branch
//! (same alphabet, same `PU1:<order-id>:<code>:<mac>` format, so codes stay valid after the
//! switch).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const PICKUP_ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const QR_MAC_BYTES: usize = 16;

/// A six-character pickup code from six random bytes.
pub fn code_from_random(bytes: [u8; 6]) -> String {
    bytes
        .iter()
        .map(|b| char::from(PICKUP_ALPHABET[usize::from(*b) % PICKUP_ALPHABET.len()]))
        .collect()
}

/// `PU1:<order-id>:<code>:<mac>`, MAC = HMAC-SHA256 under `key`, first 16 bytes in hex.
pub fn qr_payload(order_id: &str, code: &str, key: &[u8]) -> String {
    let signed = format!("PU1:{order_id}:{code}");
    let tag = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(signed.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC accepts keys of any length; this arm is never taken.
        Err(_) => vec![0; QR_MAC_BYTES],
    };
    format!("{signed}:{}", hex::encode(&tag[..QR_MAC_BYTES]))
}
