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

/// Every sync message. Variant order is part of the wire format: only append.
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
    let (batch, rest) = postcard::take_from_bytes::<UpBatch>(&signed.batch)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Trailing(rest.len()));
    }
    if batch.ops.len() > BATCH_OPS_MAX {
        return Err(WireError::TooManyOps {
            count: batch.ops.len(),
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
        Message::Ack(a) => serde_json::json!({
            "type": "ack", "from": a.from, "vv": a.vv, "down_idx": a.down_idx,
            "resend": a.resend, "reply": a.reply,
        }),
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
    };
    let mut value = serde_json::json!({ "version": WIRE_VERSION });
    if let (Some(map), serde_json::Value::Object(fields)) = (value.as_object_mut(), body) {
        map.extend(fields);
    }
    value
}

pub mod lookup;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::op::Payload;
    use crate::domain::{CustomerId, Hlc, Sku};
    use proptest::prelude::*;

    fn cart_op(seq: u64, qty: u32) -> Op {
        Op {
            actor: StoreId::parse("norte").unwrap().actor(),
            seq,
            hlc: Hlc::new(1_000 + seq, 0),
            payload: Payload::CartSet {
                customer: CustomerId::parse("c-1").unwrap(),
                sku: Sku::parse("SKU-1").unwrap(),
                qty,
            },
        }
    }

    #[test]
    fn an_up_batch_round_trips() {
        let msg = Message::Up(UpBatch {
            store: StoreId::parse("norte").unwrap(),
            ops: (1..=3).map(|s| cart_op(s, 2)).collect(),
        });
        let bytes = encode(&msg).unwrap();
        assert_eq!(bytes[0], WIRE_VERSION);
        assert_eq!(decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn a_signed_up_batch_round_trips_and_its_inner_batch_opens() {
        let key = StoreKey::from_secret(StoreId::parse("norte").unwrap(), [7; 32]);
        let ops: Vec<Op> = (1..=25).map(|s| cart_op(s, 2)).collect();
        let batches = encode_signed_up(&key, &ops, 10).unwrap();
        assert_eq!(batches.len(), 3);
        let mut back = Vec::new();
        for b in &batches {
            let Message::SignedUp(signed) = decode(&b.bytes).unwrap() else {
                panic!("not a signed batch")
            };
            assert_eq!(signed.signature, key.sign(&signed.batch).to_vec());
            back.extend(open_signed_up(&signed).unwrap().ops);
        }
        assert_eq!(back, ops);
        let json = to_json(&decode(&batches[0].bytes).unwrap());
        assert_eq!(json["type"], "signed_up");
        let mut broken = SignedUp {
            store: key.store().clone(),
            batch: vec![1, 2, 3],
            signature: vec![],
        };
        assert!(open_signed_up(&broken).is_err());
        broken.batch = postcard::to_allocvec(&UpBatch {
            store: key.store().clone(),
            ops: vec![],
        })
        .unwrap();
        broken.batch.push(9);
        assert_eq!(open_signed_up(&broken), Err(WireError::Trailing(1)));
    }

    #[test]
    fn an_unknown_version_is_refused_by_number() {
        let mut bytes = encode(&Message::Status(Status {
            online: true,
            version: "0.1.0".into(),
            outbox: 0,
            at_ms: 5,
        }))
        .unwrap();
        bytes[0] = 9;
        assert_eq!(decode(&bytes), Err(WireError::UnknownVersion(9)));
    }

    #[test]
    fn oversized_empty_and_trailing_payloads_are_refused() {
        assert_eq!(decode(&[]), Err(WireError::Empty));
        let big = vec![1u8; PAYLOAD_BYTES_MAX + 1];
        assert!(matches!(decode(&big), Err(WireError::Oversized { .. })));
        let mut bytes = encode(&Message::Down(DownBatch {
            first_idx: 1,
            ops: vec![],
        }))
        .unwrap();
        bytes.push(0);
        assert_eq!(decode(&bytes), Err(WireError::Trailing(1)));
    }

    #[test]
    fn the_encoder_splits_by_count_and_numbers_down_batches() {
        let ops: Vec<Op> = (1..=25).map(|s| cart_op(s, 1)).collect();
        let batches = encode_down(100, &ops, 10).unwrap();
        assert_eq!(
            batches.iter().map(|b| b.ops).collect::<Vec<_>>(),
            vec![10, 10, 5]
        );
        let Message::Down(third) = decode(&batches[2].bytes).unwrap() else {
            panic!("not a down batch")
        };
        assert_eq!(third.first_idx, 120);
        assert_eq!(third.ops, ops[20..].to_vec());
    }

    #[test]
    fn the_encoder_splits_by_size() {
        let ops: Vec<Op> = (1..=BATCH_OPS_MAX as u64)
            .map(|seq| Op {
                payload: Payload::CustomerUpdate {
                    customer: CustomerId::parse("c-1").unwrap(),
                    patch: crate::domain::op::ProfilePatch {
                        name: Some("n".repeat(200)),
                        ..Default::default()
                    },
                },
                ..cart_op(seq, 1)
            })
            .collect();
        let store = StoreId::parse("norte").unwrap();
        let one = postcard::to_allocvec(&ops[0]).unwrap().len();
        let batches = encode_up(&store, &ops, BATCH_OPS_MAX).unwrap();
        assert!(one * ops.len() > PAYLOAD_BYTES_MAX);
        assert!(batches.len() >= 2);
        let total: usize = batches.iter().map(|b| b.ops).sum();
        assert_eq!(total, ops.len());
        assert!(batches.iter().all(|b| b.bytes.len() <= PAYLOAD_BYTES_MAX));
    }

    #[test]
    fn json_names_the_type_and_version() {
        let json = to_json(&Message::Ack(Ack {
            from: ActorId::hq(),
            vv: BTreeMap::from([(ActorId::hq(), 4)]),
            down_idx: 0,
            resend: false,
            reply: false,
        }));
        assert_eq!(json["type"], "ack");
        assert_eq!(json["version"], 1);
        assert_eq!(json["vv"]["hq"], 4);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn random_bodies_after_a_valid_version_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut payload = vec![WIRE_VERSION];
            payload.extend(bytes);
            let _ = decode(&payload);
        }

        #[test]
        fn batches_round_trip(seqs in 1u64..60, qty in 1u32..100, first in 1u64..1_000) {
            let ops: Vec<Op> = (1..=seqs).map(|s| cart_op(s, qty)).collect();
            let batches = encode_down(first, &ops, 7).unwrap();
            let mut back = Vec::new();
            for b in &batches {
                let Message::Down(d) = decode(&b.bytes).unwrap() else { panic!("kind") };
                prop_assert_eq!(d.first_idx, first + back.len() as u64);
                back.extend(d.ops);
            }
            prop_assert_eq!(back, ops);
        }
    }
}
