//! The pickup QR `PU1:<order-id>:<code>:<mac>` (DESIGN.md section 3): the MAC is
//! HMAC-SHA256 under the chain key, first 16 bytes, lowercase hex. Pure.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const MAC_BYTES: usize = 16;
const PAYLOAD_LEN_MAX: usize = 3 + 1 + 64 + 1 + 6 + 1 + 2 * MAC_BYTES;

fn mac(key: &[u8], signed: &str) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
    mac.update(signed.as_bytes());
    Some(mac)
}

/// The QR payload for an order; without a key, the MAC field is empty (demo without keys).
pub fn payload(order_id: &str, code: &str, key: Option<&[u8]>) -> String {
    let signed = format!("PU1:{order_id}:{code}");
    let tag = key
        .and_then(|k| mac(k, &signed))
        .map(|m| hex::encode(&m.finalize().into_bytes()[..MAC_BYTES]))
        .unwrap_or_default();
    format!("{signed}:{tag}")
}

/// A scanned QR's order id and code, if well formed and signed by one of `keys` (when no key
/// is configured the MAC is not checked: the code still must match the order).
pub fn verify(payload: &str, keys: &[Vec<u8>]) -> Option<(String, String)> {
    let payload = payload.trim();
    if payload.len() > PAYLOAD_LEN_MAX {
        return None;
    }
    let fields: Vec<&str> = payload.split(':').collect();
    let ["PU1", order, code, mac_hex] = fields[..] else {
        return None;
    };
    if !keys.is_empty() {
        let tag = hex::decode(mac_hex).ok().filter(|t| t.len() == MAC_BYTES)?;
        let signed = format!("PU1:{order}:{code}");
        let ok = keys
            .iter()
            .any(|k| mac(k, &signed).is_some_and(|m| m.verify_truncated_left(&tag).is_ok()));
        if !ok {
            return None;
        }
    }
    Some((order.to_string(), code.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_payload_verifies_and_a_tampered_one_does_not() {
        let keys = vec![b"chain-key".to_vec()];
        let p = payload("O-1", "ABC234", Some(b"chain-key"));
        assert_eq!(
            verify(&p, &keys),
            Some(("O-1".to_string(), "ABC234".to_string()))
        );
        assert_eq!(verify(&p.replace("O-1", "O-2"), &keys), None);
        assert_eq!(verify("garbage", &keys), None);
    }
}
