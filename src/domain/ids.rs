//! Identifier and value types, parsed once at the edge so the rest of the domain can trust them.
//!
//! Every constructor validates; fields are private. Errors name the offending value.
//!
//! The text is a `SmolStr`: ids of up to 23 bytes (nearly all of them) live inline with no heap
//! allocation, longer ones share one allocation between clones. A replica holds several ids per
//! SKU and per order, so this is most of its memory.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use smol_str::SmolStr;
use std::fmt;

/// Why an identifier or value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A store id is a lowercase slug such as `madrid-centro`.
    #[error("invalid store id {0:?}: expected 1-40 of a-z, 0-9 and '-'")]
    Store(String),
    /// An actor is `hq` or `store:<store-id>`.
    #[error("invalid actor {0:?}: expected \"hq\" or \"store:<id>\"")]
    Actor(String),
    /// A sku is 1-32 of A-Z, a-z, 0-9, '-', '_', '.'.
    #[error("invalid sku {0:?}: expected 1-32 of letters, digits, '-', '_', '.'")]
    Sku(String),
    /// An EAN-13 is 13 digits whose last is the check digit.
    #[error("invalid ean {value:?}: {reason}")]
    Ean { value: String, reason: String },
    /// Customer, order and sale ids are 1-64 of letters, digits, '-' and '_'.
    #[error("invalid {kind} id {value:?}: expected 1-64 of letters, digits, '-', '_'")]
    Id { kind: &'static str, value: String },
}

fn is_slug(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

fn is_token(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// A store of the chain, e.g. `madrid-centro`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreId(SmolStr);

impl StoreId {
    pub fn parse(s: &str) -> Result<StoreId, IdError> {
        if is_slug(s, 40) {
            Ok(StoreId(SmolStr::new(s)))
        } else {
            Err(IdError::Store(s.to_string()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The actor id of this store's replica.
    pub fn actor(&self) -> ActorId {
        ActorId(smol_str::format_smolstr!("store:{}", self.0))
    }
}

/// A replica that authors operations: `hq` or `store:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorId(SmolStr);

impl ActorId {
    pub fn hq() -> ActorId {
        ActorId(SmolStr::new_static("hq"))
    }
    pub fn parse(s: &str) -> Result<ActorId, IdError> {
        if s == "hq" {
            return Ok(ActorId::hq());
        }
        match s.strip_prefix("store:") {
            Some(store) if is_slug(store, 40) => Ok(ActorId(SmolStr::new(s))),
            _ => Err(IdError::Actor(s.to_string())),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_hq(&self) -> bool {
        self.0 == "hq"
    }
    /// Whether this actor is `store`'s replica (`store.actor() == *self`, without building
    /// the id).
    pub fn is_store(&self, store: &StoreId) -> bool {
        self.0.strip_prefix("store:") == Some(store.as_str())
    }
    /// The store this actor is, if it is a store.
    pub fn store(&self) -> Option<StoreId> {
        self.0
            .strip_prefix("store:")
            .map(|s| StoreId(SmolStr::new(s)))
    }
}

/// A stock-keeping unit code, e.g. `SKU-000123`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sku(SmolStr);

impl Sku {
    pub fn parse(s: &str) -> Result<Sku, IdError> {
        if is_token(s, 32, b"-_.") {
            Ok(Sku(SmolStr::new(s)))
        } else {
            Err(IdError::Sku(s.to_string()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A GTIN-13 (EAN-13) with a verified check digit, held as its number (8 bytes instead of a
/// 24-byte string: the catalog keeps one per SKU twice). It is text everywhere outside memory:
/// serde writes and reads the 13 digits, so wire and digest bytes are those of the string, and
/// numeric order is the digits' order (all have 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Ean13(u64);

impl Serialize for Ean13 {
    /// The 13 digits as a string, formatted on the stack.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut digits = [b'0'; 13];
        let mut n = self.0;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        // ASCII digits are UTF-8.
        s.serialize_str(std::str::from_utf8(&digits).unwrap_or_default())
    }
}

/// The EAN/GTIN check digit of a digit string (weights 3,1,3,... from the right).
pub fn gtin_check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

impl Ean13 {
    pub fn parse(s: &str) -> Result<Ean13, IdError> {
        let err = |reason: String| IdError::Ean {
            value: s.to_string(),
            reason,
        };
        if s.len() != 13 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("expected 13 digits".to_string()));
        }
        let digits: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
        let expected = gtin_check_digit(&digits[..12]);
        if digits[12] != expected {
            return Err(err(format!(
                "check digit {}, expected {expected}",
                digits[12]
            )));
        }
        let number = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(*d));
        Ok(Ean13(number))
    }
}

impl TryFrom<String> for Ean13 {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Ean13::parse(&s)
    }
}
impl From<Ean13> for String {
    fn from(v: Ean13) -> String {
        v.to_string()
    }
}
impl fmt::Display for Ean13 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:013}", self.0)
    }
}

macro_rules! token_id {
    ($name:ident, $kind:literal) => {
        #[doc = concat!("A ", $kind, " id: 1-64 of letters, digits, '-' and '_'.")]
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(SmolStr);

        impl $name {
            pub fn parse(s: &str) -> Result<$name, IdError> {
                if is_token(s, 64, b"-_") {
                    Ok($name(SmolStr::new(s)))
                } else {
                    Err(IdError::Id {
                        kind: $kind,
                        value: s.to_string(),
                    })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

token_id!(CustomerId, "customer");
token_id!(OrderId, "order");
token_id!(SaleId, "sale");
token_id!(MotionId, "shipment or transfer");
token_id!(ReturnId, "return");
token_id!(PromotionId, "promotion");
token_id!(CashSessionId, "cash session");
token_id!(TillId, "till");
token_id!(Category, "category");

/// Reads a string id with its `parse`, from borrowed or owned text alike.
struct ParseVisitor<T>(fn(&str) -> Result<T, IdError>);

impl<T> de::Visitor<'_> for ParseVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
}

macro_rules! string_plumbing {
    ($($name:ident),*) => {$(
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                $name::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0.into()
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        // Written and read as a plain string (the bytes `into`/`try_from = "String"` gave),
        // without building a `String` for each id on the way.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                d.deserialize_str(ParseVisitor($name::parse))
            }
        }
    )*};
}

string_plumbing!(
    StoreId,
    ActorId,
    Sku,
    CustomerId,
    OrderId,
    SaleId,
    MotionId,
    ReturnId,
    PromotionId,
    CashSessionId,
    TillId,
    Category
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ean13_with_wrong_check_digit_names_both_digits() {
        let good = Ean13::parse("4006381333931").unwrap();
        assert_eq!(good.to_string(), "4006381333931");
        let err = Ean13::parse("4006381333932").unwrap_err().to_string();
        assert!(err.contains("check digit 2, expected 1"), "{err}");
    }

    #[test]
    fn an_ean_with_leading_zeros_keeps_its_digits_in_text_and_on_the_wire() {
        let ean = Ean13::parse("0036000291452").unwrap();
        assert_eq!(ean.to_string(), "0036000291452");
        let as_text = postcard::to_allocvec(&"0036000291452".to_string()).unwrap();
        assert_eq!(postcard::to_allocvec(&ean).unwrap(), as_text);
        assert_eq!(postcard::from_bytes::<Ean13>(&as_text).unwrap(), ean);
        assert!(
            postcard::from_bytes::<Ean13>(&postcard::to_allocvec("0036000291453").unwrap())
                .is_err()
        );
    }

    #[test]
    fn eans_order_as_their_digits_do() {
        let low = Ean13::parse("0036000291452").unwrap();
        let high = Ean13::parse("4006381333931").unwrap();
        assert!(low < high);
        assert!(low.to_string() < high.to_string());
    }

    #[test]
    fn actors_and_stores_round_trip() {
        let store = StoreId::parse("madrid-centro").unwrap();
        assert_eq!(store.actor().as_str(), "store:madrid-centro");
        assert_eq!(store.actor().store(), Some(store));
        assert!(ActorId::parse("store:Madrid").is_err());
        assert!(ActorId::parse("hq").unwrap().is_hq());
        assert!(StoreId::parse("").is_err());
    }

    #[test]
    fn skus_refuse_spaces_and_overlong_values() {
        assert!(Sku::parse("SKU-000123").is_ok());
        assert!(Sku::parse("SKU 1").is_err());
        assert!(Sku::parse(&"A".repeat(33)).is_err());
    }

    #[test]
    fn ids_are_written_and_read_as_the_plain_strings_they_were_before() {
        let sku = Sku::parse("SKU-000123").unwrap();
        let bytes = postcard::to_allocvec(&sku).unwrap();
        assert_eq!(bytes, postcard::to_allocvec("SKU-000123").unwrap());
        assert_eq!(postcard::from_bytes::<Sku>(&bytes).unwrap(), sku);
        let ean = Ean13::parse("0036000291452").unwrap();
        assert_eq!(
            postcard::to_allocvec(&ean).unwrap(),
            postcard::to_allocvec("0036000291452").unwrap()
        );
        assert_eq!(serde_json::to_string(&ean).unwrap(), "\"0036000291452\"");
        let actor: ActorId = serde_json::from_str("\"store:madrid-centro\"").unwrap();
        assert!(actor.is_store(&StoreId::parse("madrid-centro").unwrap()));
        assert!(serde_json::from_str::<ActorId>("\"store:Madrid\"").is_err());
        assert!(serde_json::from_str::<SaleId>("12").is_err());
    }
}
