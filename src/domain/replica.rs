//! A replica: the merged state, its version vector and its clock, and the calling protocol
//! every adapter follows.
//!
//! Protocol: on start, `apply` every op from the log in log order. To make a change, call
//! `prepare(now_ms, payload)`: it validates against the local state, stamps the op with the
//! next seq and an HLC, applies it, and returns it for the caller to persist and publish.
//! Ops from peers go through `apply`, which is idempotent and order-independent. Effects
//! returned by both tell the adapter what to do next (notify, release, top up).

use super::digest::{digest_all, digest_for_store, Digest};
use super::error::DomainError;
use super::hlc::Hlc;
use super::ids::ActorId;
use super::op::{Op, Payload};
use super::state::{Effect, State};
use super::validate::{check_authority, may_author, validate};
use super::version::VersionVector;

/// Outcome of applying an op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// First time this op was seen; the effects it caused.
    New(Vec<Effect>),
    /// Already applied; nothing changed.
    Duplicate,
}

/// One replica of the chain's shared state.
#[derive(Debug, Clone)]
pub struct Replica {
    actor: ActorId,
    clock: Hlc,
    seen: VersionVector,
    state: State,
}

impl Replica {
    /// Pack the state's maps densely after a bulk load (see `State::compact`); changes no
    /// content.
    pub fn compact(&mut self) {
        self.state.compact();
    }

    pub fn new(actor: ActorId) -> Replica {
        Replica {
            actor,
            clock: Hlc::ZERO,
            seen: VersionVector::new(),
            state: State::default(),
        }
    }

    /// A replica as a snapshot of it was written (`store::snapshot`): its clock, the ops it
    /// had seen and its state. The caller then applies the ops logged after the snapshot, in
    /// log order, as on start.
    pub fn restore(actor: ActorId, clock: Hlc, seen: VersionVector, state: State) -> Replica {
        Replica {
            actor,
            clock,
            seen,
            state,
        }
    }

    pub fn actor(&self) -> &ActorId {
        &self.actor
    }
    pub fn state(&self) -> &State {
        &self.state
    }
    pub fn version(&self) -> &VersionVector {
        &self.seen
    }
    pub fn clock(&self) -> Hlc {
        self.clock
    }
    /// Seq the next local op will get.
    pub fn next_seq(&self) -> u64 {
        self.seen.contiguous(&self.actor) + 1
    }

    /// Check `payload` without issuing it.
    pub fn check(&self, payload: &Payload) -> Result<(), DomainError> {
        may_author(&self.actor, payload)?;
        validate(&self.state, &self.actor, payload)
    }

    /// Validate, stamp and apply a local change. The returned op must be persisted before
    /// anyone is told it happened.
    pub fn prepare(
        &mut self,
        now_ms: u64,
        payload: Payload,
    ) -> Result<(Op, Vec<Effect>), DomainError> {
        self.check(&payload)?;
        let op = Op {
            actor: self.actor.clone(),
            seq: self.next_seq(),
            hlc: self.clock.tick(now_ms),
            payload,
        };
        match self.apply(&op)? {
            Applied::New(effects) => Ok((op, effects)),
            Applied::Duplicate => unreachable!("a fresh seq cannot be a duplicate"),
        }
    }

    /// Merge an op from the log or a peer. Idempotent; any order gives the same state, except
    /// that the local actor's own ops must come in seq order (a gap means a lost write).
    pub fn apply(&mut self, op: &Op) -> Result<Applied, DomainError> {
        if self.seen.contains(&op.actor, op.seq) {
            return Ok(Applied::Duplicate);
        }
        if op.seq == 0 {
            return Err(DomainError::InvalidField {
                field: "seq",
                reason: "seq starts at 1".to_string(),
            });
        }
        if op.actor == self.actor && op.seq != self.next_seq() {
            return Err(DomainError::SeqGap {
                actor: op.actor.clone(),
                got: op.seq,
                expected: self.next_seq(),
            });
        }
        check_authority(op)?;
        self.seen.insert(&op.actor, op.seq);
        self.clock.observe(op.hlc);
        let mut effects = Vec::new();
        self.state.merge(op, &mut effects);
        Ok(Applied::New(effects))
    }

    /// Take a closed sale out of memory (`history`): the record to keep, if it may leave.
    pub fn evict_sale(&mut self, sale: &super::ids::SaleId) -> Option<super::state::SaleRecord> {
        self.state.evict_sale(sale)
    }

    /// Put back a sale this replica evicted, before an op that names it (`history`).
    pub fn rehydrate_sale(&mut self, record: super::state::SaleRecord) -> bool {
        self.state.rehydrate_sale(record)
    }

    /// Take a finished order out of memory (`history`): the record to keep, if it may leave.
    pub fn evict_order(&mut self, order: &super::ids::OrderId) -> Option<super::order::Order> {
        self.state.evict_order(order)
    }

    /// Put back an order this replica evicted, before an op that names it (`history`).
    pub fn rehydrate_order(&mut self, record: super::order::Order) -> bool {
        self.state.rehydrate_order(record)
    }

    /// Hash of the whole state: equal on two replicas that applied the same ops.
    pub fn digest(&self) -> Digest {
        digest_all(&self.state)
    }

    /// Hash of what a store shares with HQ: catalog, that store's stock, orders, sales and
    /// its customers. Equal on the store and HQ once they have exchanged everything.
    pub fn digest_for_store(&self, store: &super::ids::StoreId) -> Digest {
        digest_for_store(&self.state, store)
    }
}
