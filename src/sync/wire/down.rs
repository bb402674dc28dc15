//! HQ-signed down-batches on the wire (`Message::SignedDown`): encoding, opening, and the one
//! rule a store applies to everything on its `down` topic ([`down_batch`]): with HQ's public
//! key configured only batches HQ signed for this very store are taken, unsigned and badly
//! signed ones are refused with a metric label; without it both kinds are taken unchecked.

use super::{encode, encode_down, DownBatch, Encoded, EpochDownBatch, Message, WireError};
use crate::domain::{Op, StoreId};
use crate::signing::{DownRejected, HqKey, HqPublicKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A down-batch signed by HQ (HQ -> store, topic `down`): `batch` is the postcard encoding
/// of a [`DownBatch`], `store` the receiving store and `signature` HQ's ed25519 signature over
/// exactly those bytes for that store (`crate::signing::HqKey`). Verified before decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDown {
    pub store: StoreId,
    pub batch: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Encode down-log entries `first_idx..` for `store` as down-batches signed by HQ, split like
/// [`encode_down`].
pub fn encode_signed_down(
    key: &HqKey,
    store: &StoreId,
    first_idx: u64,
    ops: &[Op],
    ops_max: usize,
) -> Result<Vec<Encoded>, WireError> {
    let plain = encode_down(first_idx, ops, ops_max)?;
    let mut out = Vec::with_capacity(plain.len());
    let mut offset = 0;
    for chunk in plain {
        let inner = DownBatch {
            first_idx: first_idx + offset as u64,
            ops: ops[offset..offset + chunk.ops].to_vec(),
        };
        offset += chunk.ops;
        let batch =
            postcard::to_allocvec(&inner).map_err(|e| WireError::Malformed(e.to_string()))?;
        let signature = key.sign(store, &batch).to_vec();
        let bytes = encode(&Message::SignedDown(SignedDown {
            store: store.clone(),
            batch,
            signature,
        }))?;
        out.push(Encoded {
            bytes,
            ops: chunk.ops,
        });
    }
    Ok(out)
}

/// The batch inside a signed down-batch (call only after its signature verified). Refuses
/// malformed bytes, trailing garbage and too many ops, like [`decode`].
pub fn open_signed_down(signed: &SignedDown) -> Result<DownBatch, WireError> {
    super::open_inner(&signed.batch, |b: &DownBatch| b.ops.len())
}

/// An ack or lookup reply signed by HQ for one store: `message` is the full wire encoding of
/// a `Message::Ack` or `Message::LookupReply`, `signature` HQ's signature over those bytes for
/// `store` (`crate::signing::HqKey::sign_reply`). Verified before decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReply {
    pub store: StoreId,
    pub message: Vec<u8>,
    pub signature: Vec<u8>,
}

/// `msg` (an `Ack` or `LookupReply`) signed by HQ for `store`, encoded for the wire.
pub fn encode_signed_reply(
    key: &HqKey,
    store: &StoreId,
    msg: &Message,
) -> Result<Vec<u8>, WireError> {
    debug_assert!(matches!(msg, Message::Ack(_) | Message::LookupReply(_)));
    let message = encode(msg)?;
    let signature = key.sign_reply(store, &message).to_vec();
    encode(&Message::SignedReply(SignedReply {
        store: store.clone(),
        message,
        signature,
    }))
}

/// HQ's acks and lookup replies as a store takes them: a store holding HQ's key (`hq`) takes
/// them only signed by HQ for it, and refuses bare ones from HQ; one without takes both kinds
/// unchecked. A signed reply comes back opened; any other message (the store's own ack echoed
/// on its topic, say) passes through unchanged.
pub fn from_hq(
    msg: Message,
    store: &StoreId,
    hq: Option<&HqPublicKey>,
) -> Result<Message, DownRefused> {
    let unsigned = || DownRejected::UnsignedReply {
        store: store.clone(),
    };
    match (msg, hq) {
        (Message::Ack(a), Some(_)) if a.from.is_hq() => Err(unsigned().into()),
        (Message::LookupReply(_), Some(_)) => Err(unsigned().into()),
        (Message::SignedReply(signed), hq) => {
            if let Some(key) = hq {
                key.verify_reply(store, &signed.message, Some(&signed.signature))?;
            }
            match super::decode(&signed.message)? {
                inner @ (Message::Ack(_) | Message::LookupReply(_)) => Ok(inner),
                other => Err(WireError::Malformed(format!(
                    "a signed reply carries {}, not an ack or a lookup reply",
                    other.kind()
                ))
                .into()),
            }
        }
        (msg, _) => Ok(msg),
    }
}

/// Why a store did not take a down-batch, an ack or a lookup reply: not signed by HQ for it,
/// or not decodable inside.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DownRefused {
    #[error(transparent)]
    Signature(#[from] DownRejected),
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl DownRefused {
    /// Label for the rejection metric.
    pub fn reason(&self) -> &'static str {
        match self {
            DownRefused::Signature(e) => e.reason(),
            DownRefused::Wire(e) => e.reason(),
        }
    }
}

/// The down-batch `msg` carries for `store`, if it is one, with its lease epoch (0 for the
/// old `Down` / `SignedDown`): a store holding HQ's key (`hq`) takes only batches HQ signed for
/// it; one without takes every kind unchecked.
pub fn down_batch(
    msg: &Message,
    store: &StoreId,
    hq: Option<&HqPublicKey>,
) -> Option<Result<EpochDownBatch, DownRefused>> {
    let unsigned = || {
        Some(Err(DownRejected::Unsigned {
            store: store.clone(),
        }
        .into()))
    };
    match (msg, hq) {
        (Message::Down(batch), None) => Some(Ok(EpochDownBatch::of_epoch_zero(batch.clone()))),
        (Message::EpochDown(batch), None) => Some(Ok(batch.clone())),
        (Message::Down(_) | Message::EpochDown(_), Some(_)) => unsigned(),
        (Message::SignedDown(signed), hq) => Some((|| {
            if let Some(key) = hq {
                key.verify(store, &signed.batch, Some(&signed.signature))?;
            }
            Ok(EpochDownBatch::of_epoch_zero(open_signed_down(signed)?))
        })()),
        (Message::SignedEpochDown(signed), hq) => Some((|| {
            if let Some(key) = hq {
                let bytes = super::epoch_signed_bytes(&signed.batch);
                key.verify(store, &bytes, Some(&signed.signature))?;
            }
            Ok(super::open_signed_epoch_down(signed)?)
        })()),
        _ => None,
    }
}
