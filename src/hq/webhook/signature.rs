//! Webhook signatures, as Stripe signs its events: the header
//! `Storenode-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the
//! secret shared with the shop (`[webhook] secret`).
//!
//! The receiver recomputes the MAC over the raw body bytes, compares in constant time, and
//! refuses a timestamp older than its tolerance (five minutes is usual), which bounds replays;
//! the `Storenode-Event-Id` header (also `id` in the body) drops duplicates of at-least-once
//! delivery. `verify` is what a Rust receiver calls; README shows the same in a few lines.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Header carrying the timestamp and signature.
pub const SIGNATURE_HEADER: &str = "Storenode-Signature";
/// Header carrying the event id (unique per event, the same on every retry).
pub const EVENT_ID_HEADER: &str = "Storenode-Event-Id";
/// Header carrying the event type (`order.ready`, ...).
pub const EVENT_TYPE_HEADER: &str = "Storenode-Event-Type";
/// Age after which a receiver should refuse a delivery, seconds.
pub const TOLERANCE_S_DEFAULT: u64 = 300;
/// Longest header value `verify` reads.
const HEADER_LEN_MAX: usize = 512;

/// Why a delivery does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is not `t=<digits>,v1=<64 hex digits>`.
    #[error("malformed signature header")]
    Malformed,
    /// The timestamp is further than the tolerance from now (a replay, or a wrong clock).
    #[error("timestamp {age_s} s away from now, over the tolerance")]
    Stale { age_s: u64 },
    /// No `v1` signature matches the body under the secret.
    #[error("signature does not match the body")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp_s: u64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC is defined for keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .expect("hmac-sha256 accepts keys of any length");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `timestamp_s`.
pub fn sign(secret: &[u8], timestamp_s: u64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp_s, body).finalize().into_bytes();
    format!("t={timestamp_s},v1={}", hex::encode(tag))
}

/// Check a delivery: `header` is the `Storenode-Signature` value, `body` the raw bytes
/// received. Returns the signed timestamp. Several `v1=` entries (secret rotation) are
/// accepted if any matches.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_s: u64,
    tolerance_s: u64,
) -> Result<u64, SignatureError> {
    if header.len() > HEADER_LEN_MAX {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                timestamp = Some(t.parse::<u64>().map_err(|_| SignatureError::Malformed)?);
            }
            Some(("v1", sig)) => match hex::decode(sig) {
                Ok(bytes) if bytes.len() == 32 => signatures.push(bytes),
                _ => return Err(SignatureError::Malformed),
            },
            _ => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let age_s = now_s.abs_diff(timestamp);
    if age_s > tolerance_s {
        return Err(SignatureError::Stale { age_s });
    }
    let matches = signatures
        .iter()
        .any(|sig| mac(secret, timestamp, body).verify_slice(sig).is_ok());
    if matches {
        Ok(timestamp)
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec-test-0123456789";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"order.ready"}"#;

    #[test]
    fn a_signed_body_verifies_within_the_tolerance() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(
            verify(SECRET, &header, BODY, 1_700_000_100, 300),
            Ok(1_700_000_000)
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() {
        // Recomputed independently: HMAC-SHA256(secret, "1700000000." + body).
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET).unwrap();
        m.update(b"1700000000.");
        m.update(BODY);
        let expected = hex::encode(m.finalize().into_bytes());
        assert_eq!(
            sign(SECRET, 1_700_000_000, BODY),
            format!("t=1700000000,v1={expected}")
        );
    }

    #[test]
    fn a_changed_body_another_secret_or_an_old_delivery_is_refused() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        let now = 1_700_000_010;
        assert_eq!(
            verify(SECRET, &header, b"{}", now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"another-secret-000000", &header, BODY, now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, &header, BODY, 1_700_000_000 + 301, 300),
            Err(SignatureError::Stale { age_s: 301 })
        );
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        for h in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,v2=00",
            "garbage",
        ] {
            assert_eq!(
                verify(SECRET, h, BODY, 1, 300),
                Err(SignatureError::Malformed),
                "{h}"
            );
        }
    }
}
