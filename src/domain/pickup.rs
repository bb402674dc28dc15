//! Pickup codes and the signed pickup QR payload (DESIGN.md section 3).
//!
//! Every pickup order carries a 6-character code drawn from an alphabet without look-alike
//! characters (no 0/O, 1/I/L), and a QR payload `PU1:<order-id>:<code>:<mac>` whose MAC is
//! HMAC-SHA256 under the chain key, truncated to 16 bytes and written as lowercase hex, so a
//! counter can verify it offline. Pure: randomness and keys are passed in.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The characters a pickup code is made of: no 0, O, 1, I or L.
pub const PICKUP_ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Length of a pickup code in characters.
pub const PICKUP_CODE_LEN: usize = 6;
/// Prefix (with version) of the pickup QR payload.
pub const QR_PREFIX: &str = "PU1";
/// Number of MAC bytes kept in the QR payload (hex doubles it).
pub const QR_MAC_BYTES: usize = 16;
/// Longest order id accepted in a QR payload.
pub const ORDER_ID_LEN_MAX: usize = 64;
/// Longest QR payload accepted before parsing anything.
pub const QR_PAYLOAD_LEN_MAX: usize =
    QR_PREFIX.len() + 1 + ORDER_ID_LEN_MAX + 1 + PICKUP_CODE_LEN + 1 + 2 * QR_MAC_BYTES;

/// Why a pickup code or QR payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickupError {
    /// The code does not have exactly six characters.
    #[error("pickup code must have {PICKUP_CODE_LEN} characters, got {0}")]
    CodeLength(usize),
    /// The code holds a character outside the pickup alphabet.
    #[error("pickup code character {0:?} is not allowed")]
    CodeChar(char),
    /// The payload does not start with `PU1:`.
    #[error("qr payload does not start with {QR_PREFIX}:")]
    NotPickupQr,
    /// The payload is longer than any valid payload.
    #[error("qr payload has {0} bytes, at most {QR_PAYLOAD_LEN_MAX} allowed")]
    PayloadTooLong(usize),
    /// The payload does not have the four `:`-separated fields.
    #[error("qr payload must have 4 fields separated by ':', got {0}")]
    FieldCount(usize),
    /// The order id is empty, too long or has characters outside `[A-Za-z0-9-]`.
    #[error("invalid order id {0:?} in qr payload")]
    OrderId(String),
    /// The MAC field is not 32 lowercase or uppercase hex digits.
    #[error("qr mac {0:?} is not {n} hex digits", n = 2 * QR_MAC_BYTES)]
    MacFormat(String),
    /// No key in the key ring produces this MAC: forged, damaged or signed with a retired key.
    #[error("qr mac does not match for order {0}")]
    MacMismatch(String),
}

/// A validated pickup code: exactly six characters of [`PICKUP_ALPHABET`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PickupCode(String);

impl PickupCode {
    /// Builds a code from six random bytes (the caller owns the randomness source).
    /// Each byte picks a letter modulo 31; the slight bias is irrelevant for a 30-bit code
    /// that also needs the order to be in the store's pickup queue.
    pub fn from_random(bytes: [u8; PICKUP_CODE_LEN]) -> PickupCode {
        let code = bytes
            .iter()
            .map(|b| char::from(PICKUP_ALPHABET[usize::from(*b) % PICKUP_ALPHABET.len()]))
            .collect();
        PickupCode(code)
    }

    /// Parses a code typed or scanned by a person: surrounding spaces are trimmed and
    /// lowercase letters accepted.
    pub fn parse(input: &str) -> Result<PickupCode, PickupError> {
        let trimmed = input.trim();
        let count = trimmed.chars().count();
        if count != PICKUP_CODE_LEN {
            return Err(PickupError::CodeLength(count));
        }
        let mut code = String::with_capacity(PICKUP_CODE_LEN);
        for c in trimmed.chars() {
            let upper = c.to_ascii_uppercase();
            if !upper.is_ascii() || !PICKUP_ALPHABET.contains(&(upper as u8)) {
                return Err(PickupError::CodeChar(c));
            }
            code.push(upper);
        }
        Ok(PickupCode(code))
    }

    /// The code as six uppercase characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PickupCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pickup QR whose MAC was verified with one of the chain keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickupQr {
    order_id: String,
    code: PickupCode,
}

impl PickupQr {
    /// The order this QR hands over.
    pub fn order_id(&self) -> &str {
        &self.order_id
    }

    /// The pickup code printed beside the QR.
    pub fn code(&self) -> &PickupCode {
        &self.code
    }
}

/// True when `id` is a valid order id: 1 to 64 characters of `[A-Za-z0-9-]`.
pub fn is_valid_order_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ORDER_ID_LEN_MAX
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn mac_for(key: &[u8], signed: &str) -> Hmac<Sha256> {
    // HMAC is defined for keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .expect("hmac-sha256 accepts keys of any length");
    mac.update(signed.as_bytes());
    mac
}

/// The QR payload for an order: `PU1:<order-id>:<code>:<mac>`.
///
/// The caller passes a valid order id (see [`is_valid_order_id`]); ids are minted by the domain.
pub fn qr_payload(order_id: &str, code: &PickupCode, key: &[u8]) -> String {
    debug_assert!(is_valid_order_id(order_id), "invalid order id {order_id:?}");
    let signed = format!("{QR_PREFIX}:{order_id}:{}", code.as_str());
    let tag = mac_for(key, &signed).finalize().into_bytes();
    format!("{signed}:{}", hex::encode(&tag[..QR_MAC_BYTES]))
}

/// Verifies a scanned QR payload against a key ring (current key first, then retired keys
/// still honoured during a rotation). The MAC comparison is constant-time.
pub fn verify_qr(payload: &str, keys: &[&[u8]]) -> Result<PickupQr, PickupError> {
    let payload = payload.trim();
    if payload.len() > QR_PAYLOAD_LEN_MAX {
        return Err(PickupError::PayloadTooLong(payload.len()));
    }
    if !payload.starts_with("PU1:") {
        return Err(PickupError::NotPickupQr);
    }
    let fields: Vec<&str> = payload.split(':').collect();
    let [_, order_id, code, mac_hex] = fields[..] else {
        return Err(PickupError::FieldCount(fields.len()));
    };
    if !is_valid_order_id(order_id) {
        return Err(PickupError::OrderId(order_id.to_string()));
    }
    let code = PickupCode::parse(code)?;
    let mac = match hex::decode(mac_hex) {
        Ok(bytes) if bytes.len() == QR_MAC_BYTES => bytes,
        _ => return Err(PickupError::MacFormat(mac_hex.to_string())),
    };
    let signed = format!("{QR_PREFIX}:{order_id}:{}", code.as_str());
    let matches = keys
        .iter()
        .any(|key| mac_for(key, &signed).verify_truncated_left(&mac).is_ok());
    if !matches {
        return Err(PickupError::MacMismatch(order_id.to_string()));
    }
    Ok(PickupQr {
        order_id: order_id.to_string(),
        code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"chain-key-2024";

    #[test]
    fn code_from_random_uses_only_the_unambiguous_alphabet() {
        let code = PickupCode::from_random([0, 30, 31, 255, 128, 7]);
        assert_eq!(code.as_str(), "A9AHEH");
        assert!(!code.as_str().contains(['0', 'O', '1', 'I', 'L']));
    }

    #[test]
    fn code_parse_trims_and_uppercases() {
        assert_eq!(PickupCode::parse("  a9ajk7 ").unwrap().as_str(), "A9AJK7");
    }

    #[test]
    fn code_parse_names_the_bad_character_or_length() {
        assert_eq!(PickupCode::parse("A9AJK0"), Err(PickupError::CodeChar('0')));
        assert_eq!(PickupCode::parse("ABCDE"), Err(PickupError::CodeLength(5)));
        assert_eq!(
            PickupCode::parse("ABCDEñ").unwrap_err().to_string(),
            "pickup code character 'ñ' is not allowed"
        );
    }

    #[test]
    fn qr_payload_has_the_documented_shape() {
        let code = PickupCode::parse("K7Q2MZ").unwrap();
        let qr = qr_payload("ord-42", &code, KEY);
        let parts: Vec<&str> = qr.split(':').collect();
        assert_eq!(&parts[..3], &["PU1", "ord-42", "K7Q2MZ"]);
        assert_eq!(parts[3].len(), 32);
        assert!(parts[3]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    #[test]
    fn verify_accepts_any_key_of_the_ring_for_rotation() {
        let code = PickupCode::parse("K7Q2MZ").unwrap();
        let qr = qr_payload("ord-42", &code, b"old-key");
        let verified = verify_qr(&qr, &[b"new-key", b"old-key"]).unwrap();
        assert_eq!(verified.order_id(), "ord-42");
        assert_eq!(verified.code(), &code);
        assert_eq!(
            verify_qr(&qr, &[b"new-key"]),
            Err(PickupError::MacMismatch("ord-42".into()))
        );
    }

    #[test]
    fn verify_rejects_a_tampered_mac_order_or_code() {
        let code = PickupCode::parse("K7Q2MZ").unwrap();
        let qr = qr_payload("ord-42", &code, KEY);
        let mut flipped = qr.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(
            verify_qr(&flipped, &[KEY]),
            Err(PickupError::MacMismatch(_))
        ));
        let other_order = qr.replace("ord-42", "ord-43");
        assert!(verify_qr(&other_order, &[KEY]).is_err());
        let other_code = qr.replace("K7Q2MZ", "K7Q2MA");
        assert!(verify_qr(&other_code, &[KEY]).is_err());
    }

    #[test]
    fn verify_explains_malformed_payloads() {
        assert_eq!(
            verify_qr("XX1:a:b:c", &[KEY]),
            Err(PickupError::NotPickupQr)
        );
        assert_eq!(
            verify_qr("PU1:a:b", &[KEY]),
            Err(PickupError::FieldCount(3))
        );
        assert_eq!(
            verify_qr("PU1:a b:K7Q2MZ:00", &[KEY]),
            Err(PickupError::OrderId("a b".into()))
        );
        assert_eq!(
            verify_qr("PU1:a:K7Q2MZ:zz", &[KEY]),
            Err(PickupError::MacFormat("zz".into()))
        );
    }

    proptest! {
        #[test]
        fn qr_round_trips(id in "[A-Za-z0-9-]{1,64}", bytes in any::<[u8; 6]>(), key in proptest::collection::vec(any::<u8>(), 0..80)) {
            let code = PickupCode::from_random(bytes);
            let qr = qr_payload(&id, &code, &key);
            let verified = verify_qr(&qr, &[&key]).unwrap();
            prop_assert_eq!(verified.order_id(), id.as_str());
            prop_assert_eq!(verified.code(), &code);
            prop_assert_eq!(PickupCode::parse(code.as_str()).unwrap(), code);
        }

        #[test]
        fn random_strings_never_panic(s in "\\PC{0,120}", t in "PU1:[A-Za-z0-9:-]{0,100}") {
            let _ = verify_qr(&s, &[KEY]);
            let _ = verify_qr(&t, &[KEY]);
            let _ = PickupCode::parse(&s);
        }
    }
}
