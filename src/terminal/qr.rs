//! The pickup QR as the terminal uses it, over `domain::pickup`: sign for bag labels, verify
//! at the counter. Without configured keys (a demo without a chain key) the MAC field is left
//! empty and not checked; the pickup code inside must still match the order.

use crate::domain::pickup::{qr_payload, verify_qr, PickupCode};

/// The QR payload for an order.
pub fn payload(order_id: &str, code: &str, key: Option<&[u8]>) -> String {
    match (key, PickupCode::parse(code)) {
        (Some(key), Ok(code)) => qr_payload(order_id, &code, key),
        _ => format!("PU1:{order_id}:{code}:"),
    }
}

/// A scanned QR's order id and code, if well formed and signed by one of `keys`.
pub fn verify(payload: &str, keys: &[Vec<u8>]) -> Option<(String, String)> {
    if keys.is_empty() {
        let fields: Vec<&str> = payload.trim().split(':').collect();
        return match fields[..] {
            ["PU1", order, code, _] => Some((order.to_string(), code.to_ascii_uppercase())),
            _ => None,
        };
    }
    let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    verify_qr(payload, &keys)
        .ok()
        .map(|qr| (qr.order_id().to_string(), qr.code().as_str().to_string()))
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
