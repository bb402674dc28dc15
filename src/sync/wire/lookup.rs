//! Customer lookup messages (`Message::Lookup`, `Message::LookupReply`): their types, bounds,
//! signing bytes and codec. The protocol around them (HQ's answer, the store's wait) is
//! `crate::sync::lookup`, which re-exports everything here; this file sits under `wire` so
//! the codec never depends on the lookup logic.

use super::{encode, Message, WireError};
use crate::domain::{CustomerId, StoreId};
use crate::signing::StoreKey;
use serde::{Deserialize, Serialize};

/// Most terms one lookup carries (a digit string is tried as a phone and as a loyalty card).
pub const LOOKUP_TERMS_MAX: usize = 3;
/// Longest term, in characters.
pub const LOOKUP_TERM_CHARS_MAX: usize = 100;
/// Largest signed request body.
pub const LOOKUP_BODY_BYTES_MAX: usize = 1_024;
/// Most customers HQ returns for one lookup.
pub const LOOKUP_RESULTS_MAX: usize = 5;
/// Prefix of the bytes a lookup signature covers, so a signed lookup can never pass as a
/// signed up-batch or the other way round.
pub const SIGN_TAG: &[u8] = b"storenode-lookup-v1\0";

/// One exact identifier to look for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LookupTerm {
    /// Digits of a phone number.
    Phone(String),
    /// An email address (compared case-folded).
    Email(String),
    /// Digits of a loyalty card.
    LoyaltyCard(String),
}

/// What a store asks HQ (the signed body of a [`SignedLookup`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRequest {
    pub store: StoreId,
    /// Chosen by the store; echoed in the reply.
    pub id: u64,
    pub at_ms: u64,
    pub terms: Vec<LookupTerm>,
}

/// A lookup on the wire (store -> HQ, topic `lookup`): `body` is the postcard encoding of a
/// [`LookupRequest`], `signature` the store's signature over `SIGN_TAG + body` when the store
/// has a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedLookup {
    pub store: StoreId,
    pub body: Vec<u8>,
    pub signature: Option<Vec<u8>>,
}

/// HQ's answer (HQ -> store, topic `down`): the matching customers, possibly none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupReply {
    pub id: u64,
    pub customers: Vec<CustomerId>,
}

/// Bounds of lookup messages, checked by `wire::decode`.
pub(crate) fn check_bounds(msg: &Message) -> Result<(), WireError> {
    match msg {
        Message::Lookup(l) if l.body.len() > LOOKUP_BODY_BYTES_MAX => Err(WireError::Oversized {
            len: l.body.len(),
            max: LOOKUP_BODY_BYTES_MAX,
        }),
        Message::LookupReply(r) if r.customers.len() > LOOKUP_RESULTS_MAX => Err(
            WireError::Malformed(format!("lookup reply with {} customers", r.customers.len())),
        ),
        _ => Ok(()),
    }
}

pub(crate) fn signed_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGN_TAG.len() + body.len());
    out.extend_from_slice(SIGN_TAG);
    out.extend_from_slice(body);
    out
}

/// Encode a lookup, signed with `key` when given.
pub fn encode_lookup(req: &LookupRequest, key: Option<&StoreKey>) -> Result<Vec<u8>, WireError> {
    let body = postcard::to_allocvec(req).map_err(|e| WireError::Malformed(e.to_string()))?;
    if body.len() > LOOKUP_BODY_BYTES_MAX {
        return Err(WireError::Oversized {
            len: body.len(),
            max: LOOKUP_BODY_BYTES_MAX,
        });
    }
    let signature = key.map(|k| k.sign(&signed_bytes(&body)).to_vec());
    encode(&Message::Lookup(SignedLookup {
        store: req.store.clone(),
        body,
        signature,
    }))
}

/// The request inside a lookup (after its signature verified). Never panics.
pub fn open_lookup(signed: &SignedLookup) -> Result<LookupRequest, WireError> {
    let (req, rest) = postcard::take_from_bytes::<LookupRequest>(&signed.body)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Trailing(rest.len()));
    }
    if req.terms.len() > LOOKUP_TERMS_MAX {
        return Err(WireError::Malformed(format!(
            "lookup with {} terms",
            req.terms.len()
        )));
    }
    let long = req.terms.iter().any(|t| match t {
        LookupTerm::Phone(s) | LookupTerm::Email(s) | LookupTerm::LoyaltyCard(s) => {
            s.chars().count() > LOOKUP_TERM_CHARS_MAX
        }
    });
    if long {
        return Err(WireError::Malformed("lookup term too long".into()));
    }
    Ok(req)
}

/// The request as JSON, for `storenode decode`.
pub(crate) fn lookup_json(signed: &SignedLookup) -> serde_json::Value {
    let inner = open_lookup(signed);
    serde_json::json!({
        "type": "lookup", "store": signed.store,
        "signature": signed.signature.as_ref().map(hex::encode),
        "id": inner.as_ref().map(|r| r.id).ok(),
        "at_ms": inner.as_ref().map(|r| r.at_ms).ok(),
        "terms": inner.as_ref().map(|r| &r.terms).ok(),
        "body_error": inner.as_ref().err().map(|e| e.to_string()),
    })
}
