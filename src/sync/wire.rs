//! Sync payloads on the wire: one version byte (`WIRE_VERSION`), then the postcard encoding of
//! a [`Message`]. Ops travel with the domain types' serde.
//!
//! Invariants: every payload the encoder produces is at most `PAYLOAD_BYTES_MAX` bytes and holds
//! at most `BATCH_OPS_MAX` ops (the encoder splits batches); `decode` never panics on any bytes
//! and refuses unknown versions, oversized payloads and trailing garbage.

use crate::domain::{ActorId, Op, StoreId};
use crate::signing::StoreKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

mod down;
mod epoch;
pub use down::{
    down_batch, encode_signed_down, encode_signed_reply, from_hq, open_signed_down, DownRefused,
    SignedDown, SignedReply,
};
pub use epoch::{
    encode_epoch_down, epoch_signed_bytes, open_signed_epoch_down, EpochAck, EpochDownBatch,
    EPOCH_DOWN_TAG,
};

/// The only payload version this build speaks.
pub const WIRE_VERSION: u8 = 1;
/// Largest payload a node sends or accepts.
pub const PAYLOAD_BYTES_MAX: usize = 256 * 1024;
/// Most ops one batch may carry.
pub const BATCH_OPS_MAX: usize = 2_000;

/// A batch of the store's own ops, oldest first (store -> HQ, topic `up`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpBatch {
    pub store: StoreId,
    pub ops: Vec<Op>,
}

/// Entries of HQ's down-log for one store: `ops[i]` is entry `first_idx + i` (HQ -> store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownBatch {
    pub first_idx: u64,
    pub ops: Vec<Op>,
}

/// What the sender has durably applied (both directions share the `ack` topic, so `from` says
/// who sent it and each side ignores its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub from: ActorId,
    /// Contiguous seq per actor.
    pub vv: BTreeMap<ActorId, u64>,
    /// Last down-log index applied (store -> HQ); 0 in HQ's acks.
    pub down_idx: u64,
    /// The receiver should resend everything after this ack (sent on connect or on a gap).
    pub resend: bool,
    /// The receiver should answer with its own ack with `resend` set (sent on connect).
    pub reply: bool,
}

/// Retained liveness of a node; also its Last Will with `online = false`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub online: bool,
    pub version: String,
    pub outbox: u64,
    pub at_ms: u64,
}

/// An up-batch signed by its store (store -> HQ, topic `up`): `batch` is the postcard
/// encoding of an [`UpBatch`] and `signature` the store's ed25519 signature over exactly those
/// bytes (`crate::signing`). HQ verifies the bytes before it decodes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedUp {
    pub store: StoreId,
    pub batch: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Every sync message. Variant order is part of the wire format: only append (golden bytes in
/// `tests/formats.rs` catch a reorder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Up(UpBatch),
    Down(DownBatch),
    Ack(Ack),
    Status(Status),
    SignedUp(SignedUp),
    /// A store asks HQ for customers (topic `lookup`, `crate::sync::lookup`).
    Lookup(lookup::SignedLookup),
    /// HQ's answer to a lookup (topic `down`).
    LookupReply(lookup::LookupReply),
    /// A down-batch signed by HQ (topic `down`).
    SignedDown(SignedDown),
    /// An ack or lookup reply signed by HQ (topics `ack` and `down`).
    SignedReply(SignedReply),
    /// A down-batch numbered by a lease epoch (HQ -> store, topic `down`; `wire::epoch`).
    EpochDown(EpochDownBatch),
    /// An epoch down-batch signed by HQ: `batch` encodes an [`EpochDownBatch`].
    SignedEpochDown(SignedDown),
    /// A store's ack whose `down_idx` counts in a lease epoch's numbering (topic `ack`).
    EpochAck(EpochAck),
}

impl Message {
    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Up(_) => "up",
            Message::Down(_) => "down",
            Message::Ack(_) => "ack",
            Message::Status(_) => "status",
            Message::SignedUp(_) => "signed_up",
            Message::Lookup(_) => "lookup",
            Message::LookupReply(_) => "lookup_reply",
            Message::SignedDown(_) => "signed_down",
            Message::SignedReply(_) => "signed_reply",
            Message::EpochDown(_) => "epoch_down",
            Message::SignedEpochDown(_) => "signed_epoch_down",
            Message::EpochAck(_) => "epoch_ack",
        }
    }
}

/// Why a payload could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// No bytes at all.
    #[error("empty payload")]
    Empty,
    /// Larger than `PAYLOAD_BYTES_MAX`.
    #[error("payload of {len} bytes exceeds the limit of {max}")]
    Oversized { len: usize, max: usize },
    /// A version byte this build does not know.
    #[error("unknown payload version {0}, expected {WIRE_VERSION}")]
    UnknownVersion(u8),
    /// The body is not a valid message.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// Bytes left over after the message.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    /// A batch with more ops than `BATCH_OPS_MAX`.
    #[error("batch of {count} ops exceeds the limit of {max}")]
    TooManyOps { count: usize, max: usize },
    /// A single op that cannot fit in any payload.
    #[error("op {actor}/{seq} encodes to {bytes} bytes, more than a payload holds")]
    OpTooLarge {
        actor: ActorId,
        seq: u64,
        bytes: usize,
    },
}

impl WireError {
    /// Label for the rejection metric.
    pub fn reason(&self) -> &'static str {
        match self {
            WireError::Empty | WireError::Malformed(_) | WireError::Trailing(_) => "malformed",
            WireError::Oversized { .. } | WireError::OpTooLarge { .. } => "oversized",
            WireError::UnknownVersion(_) => "unknown_version",
            WireError::TooManyOps { .. } => "too_many_ops",
        }
    }
}

/// Decode a payload. Never panics.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    if bytes.len() > PAYLOAD_BYTES_MAX {
        return Err(WireError::Oversized {
            len: bytes.len(),
            max: PAYLOAD_BYTES_MAX,
        });
    }
    let (&version, body) = bytes.split_first().ok_or(WireError::Empty)?;
    if version != WIRE_VERSION {
        return Err(WireError::UnknownVersion(version));
    }
    let (msg, rest) = postcard::take_from_bytes::<Message>(body)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Trailing(rest.len()));
    }
    let count = match &msg {
        Message::Up(b) => b.ops.len(),
        Message::Down(b) => b.ops.len(),
        Message::EpochDown(b) => b.ops.len(),
        _ => 0,
    };
    if count > BATCH_OPS_MAX {
        return Err(WireError::TooManyOps {
            count,
            max: BATCH_OPS_MAX,
        });
    }
    lookup::check_bounds(&msg)?;
    Ok(msg)
}

/// Encode one message; fails if it would not fit in a payload.
pub fn encode(msg: &Message) -> Result<Vec<u8>, WireError> {
    let mut out = vec![WIRE_VERSION];
    out = postcard::to_extend(msg, out).map_err(|e| WireError::Malformed(e.to_string()))?;
    if out.len() > PAYLOAD_BYTES_MAX {
        return Err(WireError::Oversized {
            len: out.len(),
            max: PAYLOAD_BYTES_MAX,
        });
    }
    Ok(out)
}

/// One encoded batch and how many of the input ops it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub ops: usize,
}

/// Encode `ops` as up-batches of at most `ops_max` ops and `PAYLOAD_BYTES_MAX` bytes each.
pub fn encode_up(store: &StoreId, ops: &[Op], ops_max: usize) -> Result<Vec<Encoded>, WireError> {
    encode_split(ops, ops_max, |_, chunk| {
        Message::Up(UpBatch {
            store: store.clone(),
            ops: chunk.to_vec(),
        })
    })
}

/// Encode `ops` as signed up-batches, split like [`encode_up`], each signed with `key`.
pub fn encode_signed_up(
    key: &StoreKey,
    ops: &[Op],
    ops_max: usize,
) -> Result<Vec<Encoded>, WireError> {
    let store = key.store().clone();
    let plain = encode_up(&store, ops, ops_max)?;
    let mut out = Vec::with_capacity(plain.len());
    let mut offset = 0;
    for chunk in plain {
        let inner = UpBatch {
            store: store.clone(),
            ops: ops[offset..offset + chunk.ops].to_vec(),
        };
        offset += chunk.ops;
        let batch =
            postcard::to_allocvec(&inner).map_err(|e| WireError::Malformed(e.to_string()))?;
        let signature = key.sign(&batch).to_vec();
        let bytes = encode(&Message::SignedUp(SignedUp {
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

/// The batch inside a signed up-batch (call only after its signature verified). Refuses
/// malformed bytes, trailing garbage and too many ops, like [`decode`].
pub fn open_signed_up(signed: &SignedUp) -> Result<UpBatch, WireError> {
    open_inner(&signed.batch, |b: &UpBatch| b.ops.len())
}

/// Decodes the batch inside a signed message, refusing trailing bytes and more than
/// `BATCH_OPS_MAX` ops. Shared by the up and down directions.
pub(super) fn open_inner<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    ops_len: impl Fn(&T) -> usize,
) -> Result<T, WireError> {
    let (batch, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Trailing(rest.len()));
    }
    let count = ops_len(&batch);
    if count > BATCH_OPS_MAX {
        return Err(WireError::TooManyOps {
            count,
            max: BATCH_OPS_MAX,
        });
    }
    Ok(batch)
}

/// Encode down-log entries `first_idx..` as down-batches, split like [`encode_up`].
pub fn encode_down(first_idx: u64, ops: &[Op], ops_max: usize) -> Result<Vec<Encoded>, WireError> {
    encode_split(ops, ops_max, |offset, chunk| {
        Message::Down(DownBatch {
            first_idx: first_idx + offset as u64,
            ops: chunk.to_vec(),
        })
    })
}

/// Room left for the length varint and the header fields around the ops.
const HEADER_BYTES_RESERVE: usize = 128;

fn encode_split(
    ops: &[Op],
    ops_max: usize,
    make: impl Fn(usize, &[Op]) -> Message,
) -> Result<Vec<Encoded>, WireError> {
    let ops_max = ops_max.clamp(1, BATCH_OPS_MAX);
    let budget = PAYLOAD_BYTES_MAX - HEADER_BYTES_RESERVE;
    let mut out = Vec::new();
    let mut start = 0;
    while start < ops.len() {
        let mut end = start;
        let mut size = 0usize;
        while end < ops.len() && end - start < ops_max {
            let op = &ops[end];
            let op_bytes = postcard::to_allocvec(op)
                .map_err(|e| WireError::Malformed(e.to_string()))?
                .len();
            if op_bytes > budget {
                return Err(WireError::OpTooLarge {
                    actor: op.actor.clone(),
                    seq: op.seq,
                    bytes: op_bytes,
                });
            }
            if size + op_bytes > budget {
                break;
            }
            size += op_bytes;
            end += 1;
        }
        let bytes = encode(&make(start, &ops[start..end]))?;
        out.push(Encoded {
            bytes,
            ops: end - start,
        });
        start = end;
    }
    Ok(out)
}

/// The message as JSON, for `storenode decode` and logs.
pub fn to_json(msg: &Message) -> serde_json::Value {
    let body = match msg {
        Message::Up(b) => serde_json::json!({ "type": "up", "store": b.store, "ops": b.ops }),
        Message::Down(b) => {
            serde_json::json!({ "type": "down", "first_idx": b.first_idx, "ops": b.ops })
        }
        Message::Ack(a) => ack_json(a),
        Message::EpochDown(b) => serde_json::json!({
            "type": "epoch_down", "epoch": b.epoch, "first_idx": b.first_idx, "ops": b.ops,
        }),
        Message::SignedEpochDown(s) => {
            let inner = open_signed_epoch_down(s);
            serde_json::json!({
                "type": "signed_epoch_down", "store": s.store,
                "signature": hex::encode(&s.signature),
                "epoch": inner.as_ref().map(|b| b.epoch).ok(),
                "first_idx": inner.as_ref().map(|b| b.first_idx).ok(),
                "ops": inner.as_ref().map(|b| &b.ops).ok(),
                "batch_error": inner.as_ref().err().map(|e| e.to_string()),
            })
        }
        Message::EpochAck(e) => {
            let mut v = ack_json(&e.ack);
            v["type"] = "epoch_ack".into();
            v["epoch"] = e.epoch.into();
            v
        }
        Message::Status(s) => serde_json::json!({
            "type": "status", "online": s.online, "version": s.version,
            "outbox": s.outbox, "at_ms": s.at_ms,
        }),
        Message::SignedUp(s) => {
            let inner = open_signed_up(s);
            serde_json::json!({
                "type": "signed_up", "store": s.store, "signature": hex::encode(&s.signature),
                "ops": inner.as_ref().map(|b| &b.ops).ok(),
                "batch_error": inner.as_ref().err().map(|e| e.to_string()),
            })
        }
        Message::Lookup(l) => lookup::lookup_json(l),
        Message::LookupReply(r) => {
            serde_json::json!({ "type": "lookup_reply", "id": r.id, "customers": r.customers })
        }
        Message::SignedDown(s) => {
            let inner = open_signed_down(s);
            serde_json::json!({
                "type": "signed_down", "store": s.store, "signature": hex::encode(&s.signature),
                "first_idx": inner.as_ref().map(|b| b.first_idx).ok(),
                "ops": inner.as_ref().map(|b| &b.ops).ok(),
                "batch_error": inner.as_ref().err().map(|e| e.to_string()),
            })
        }
        Message::SignedReply(s) => {
            let inner = decode(&s.message);
            serde_json::json!({
                "type": "signed_reply", "store": s.store, "signature": hex::encode(&s.signature),
                "message": inner.as_ref().map(to_json).ok(),
                "message_error": inner.as_ref().err().map(|e| e.to_string()),
            })
        }
    };
    let mut value = serde_json::json!({ "version": WIRE_VERSION });
    if let (Some(map), serde_json::Value::Object(fields)) = (value.as_object_mut(), body) {
        map.extend(fields);
    }
    value
}

fn ack_json(a: &Ack) -> serde_json::Value {
    serde_json::json!({
        "type": "ack", "from": a.from, "vv": a.vv, "down_idx": a.down_idx,
        "resend": a.resend, "reply": a.reply,
    })
}

pub mod lookup;

#[cfg(test)]
mod tests;
