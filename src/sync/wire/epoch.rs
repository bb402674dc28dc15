//! The down stream of a lease epoch (several HQ processes, `crate::sync::lease`): each process
//! numbers a store's down-log its own way, so a batch says which lease epoch numbered it
//! (`Message::EpochDown`, signed: `Message::SignedEpochDown`) and the store's ack says which
//! epoch its `down_idx` counts in (`Message::EpochAck`). Epoch 0 is the single HQ of old:
//! it keeps sending `Down` / `SignedDown` and stores keep sending `Ack`, byte for byte as before.
//!
//! A signed epoch batch is signed over `EPOCH_DOWN_TAG` followed by its bytes, so the bytes of
//! a plain `SignedDown` can never pass as an epoch batch or the other way round.

use super::{encode, encode_split, Ack, DownBatch, Encoded, Message, SignedDown, WireError};
use crate::domain::{Op, StoreId};
use crate::signing::HqKey;
use serde::{Deserialize, Serialize};

/// Prefix of the bytes HQ signs for a `SignedEpochDown` (domain separation from `SignedDown`).
pub const EPOCH_DOWN_TAG: &[u8] = b"storenode-epoch-down\0";

/// Entries of a lease holder's down stream for one store (HQ -> store): `ops[i]` is entry
/// `first_idx + i` in the numbering of lease `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochDownBatch {
    pub epoch: u64,
    pub first_idx: u64,
    pub ops: Vec<Op>,
}

impl EpochDownBatch {
    /// A batch of the single HQ of old (`Down`): epoch 0.
    pub fn of_epoch_zero(batch: DownBatch) -> EpochDownBatch {
        EpochDownBatch {
            epoch: 0,
            first_idx: batch.first_idx,
            ops: batch.ops,
        }
    }
}

/// A store's ack whose `down_idx` counts in the numbering of lease `epoch` (store -> HQ).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochAck {
    pub epoch: u64,
    pub ack: Ack,
}

/// The bytes HQ signs for a signed epoch batch whose postcard encoding is `batch`.
pub fn epoch_signed_bytes(batch: &[u8]) -> Vec<u8> {
    [EPOCH_DOWN_TAG, batch].concat()
}

/// Encode entries `first_idx..` of `store`'s down stream of lease `epoch`, split like
/// `encode_down`: epoch 0 as the old `Down` / `SignedDown`, any other as `EpochDown` /
/// `SignedEpochDown`, signed by `key` when there is one.
pub fn encode_epoch_down(
    key: Option<&HqKey>,
    store: &StoreId,
    epoch: u64,
    first_idx: u64,
    ops: &[Op],
    ops_max: usize,
) -> Result<Vec<Encoded>, WireError> {
    match (epoch, key) {
        (0, Some(key)) => super::encode_signed_down(key, store, first_idx, ops, ops_max),
        (0, None) => super::encode_down(first_idx, ops, ops_max),
        (_, None) => encode_split(ops, ops_max, |offset, chunk| {
            Message::EpochDown(EpochDownBatch {
                epoch,
                first_idx: first_idx + offset as u64,
                ops: chunk.to_vec(),
            })
        }),
        (_, Some(key)) => {
            let plain = encode_split(ops, ops_max, |offset, chunk| {
                Message::EpochDown(EpochDownBatch {
                    epoch,
                    first_idx: first_idx + offset as u64,
                    ops: chunk.to_vec(),
                })
            })?;
            let mut out = Vec::with_capacity(plain.len());
            let mut offset = 0;
            for chunk in plain {
                let inner = EpochDownBatch {
                    epoch,
                    first_idx: first_idx + offset as u64,
                    ops: ops[offset..offset + chunk.ops].to_vec(),
                };
                offset += chunk.ops;
                let batch = postcard::to_allocvec(&inner)
                    .map_err(|e| WireError::Malformed(e.to_string()))?;
                let signature = key.sign(store, &epoch_signed_bytes(&batch)).to_vec();
                let bytes = encode(&Message::SignedEpochDown(SignedDown {
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
    }
}

/// The batch inside a signed epoch batch (call only after its signature verified). Refuses
/// malformed bytes, trailing garbage and too many ops, like `decode`.
pub fn open_signed_epoch_down(signed: &SignedDown) -> Result<EpochDownBatch, WireError> {
    super::open_inner(&signed.batch, |b: &EpochDownBatch| b.ops.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::op::Payload;
    use crate::domain::{CustomerId, Hlc, Sku};

    fn op(seq: u64) -> Op {
        Op {
            actor: crate::domain::ActorId::hq(),
            seq,
            hlc: Hlc::new(1_000 + seq, 0),
            payload: Payload::CartSet {
                customer: CustomerId::parse("c-1").unwrap(),
                sku: Sku::parse("SKU-1").unwrap(),
                qty: 1,
            },
        }
    }

    #[test]
    fn epoch_zero_is_encoded_as_the_old_down_batch_and_any_other_as_an_epoch_batch() {
        let store = StoreId::parse("norte").unwrap();
        let ops: Vec<Op> = (1..=5).map(op).collect();
        let old = encode_epoch_down(None, &store, 0, 7, &ops, 2).unwrap();
        assert!(matches!(
            super::super::decode(&old[0].bytes),
            Ok(Message::Down(_))
        ));
        let new = encode_epoch_down(None, &store, 3, 7, &ops, 2).unwrap();
        assert_eq!(new.len(), 3);
        let Ok(Message::EpochDown(b)) = super::super::decode(&new[2].bytes) else {
            panic!("not an epoch batch")
        };
        assert_eq!((b.epoch, b.first_idx, b.ops.len()), (3, 11, 1));
    }

    #[test]
    fn a_signed_epoch_batch_verifies_only_as_an_epoch_batch() {
        let store = StoreId::parse("norte").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = HqKey::load_or_create(&dir.path().join("hq.db")).unwrap();
        let public = crate::signing::HqPublicKey::parse(&key.public_hex()).unwrap();
        let ops: Vec<Op> = (1..=2).map(op).collect();
        let out = encode_epoch_down(Some(&key), &store, 4, 1, &ops, 10).unwrap();
        let msg = super::super::decode(&out[0].bytes).unwrap();
        let opened = super::super::down_batch(&msg, &store, Some(&public))
            .expect("a down batch")
            .expect("verified");
        assert_eq!((opened.epoch, opened.first_idx, opened.ops), (4, 1, ops));
        let Message::SignedEpochDown(signed) = msg else {
            panic!("not signed")
        };
        let as_plain = Message::SignedDown(signed);
        let refused = super::super::down_batch(&as_plain, &store, Some(&public)).unwrap();
        assert!(refused.is_err(), "{refused:?}");
    }
}
