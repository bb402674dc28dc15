//! The seam between the writer and a shared op log outside the node's SQLite file.
//!
//! A `Journal` is told every op a group transaction wrote (local submits and ingested peer
//! ops, in their stored form) after they were applied and before SQLite commits; the group
//! commits only if the journal committed them first. With PostgreSQL (`store::pg`) the shared
//! log is the source of truth and the SQLite file a cache of it: whatever is acknowledged is
//! committed there, and a file that lost a group gets it back from the log at the next start.

use crate::domain::{ActorId, Op, State};

/// A shared log the writer commits to before its own file.
pub trait Journal: Send {
    /// Make `ops` durable, all or nothing. `state` is the replica after applying them (an
    /// erasure among them rewrites the customer's earlier ops in the journal too); `tx` is the
    /// group's SQLite transaction, still open, from which side rows belonging to the ops (an
    /// order's Idempotency-Key) are copied. An error fails the whole group: nothing of it is
    /// committed or acknowledged.
    fn commit(
        &mut self,
        tx: &rusqlite::Transaction,
        ops: &[Op],
        state: &State,
    ) -> Result<(), JournalError>;

    /// Called before a group that issues this node's own ops, with the seq the replica would
    /// give the next one: serialise with every other process writing as `actor` (a lock held
    /// until `commit` or `abandon`) and return the actor's ops the log holds from `next_seq`
    /// on, in seq order, which the writer applies before numbering any new op. Side rows of
    /// those ops (their orders' Idempotency-Keys) go into `tx`, the group's SQLite transaction,
    /// before any request of the group runs: a request reusing such a key then finds it there
    /// and is answered as the first was. A journal no other process writes to has nothing to
    /// return.
    fn begin_own(
        &mut self,
        tx: &rusqlite::Transaction,
        actor: &ActorId,
        next_seq: u64,
    ) -> Result<Vec<Op>, JournalError> {
        let _ = (tx, actor, next_seq);
        Ok(Vec::new())
    }

    /// The group begun with `begin_own` will not reach `commit`: release what it holds.
    fn abandon(&mut self) {}
}

/// Why the journal did not take a group.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The shared log could not be reached or did not commit; retry later.
    #[error("shared op log unavailable: {0}")]
    Unavailable(String),
    /// The shared log already holds one of this node's own ops with the same seq: the file is
    /// behind the log (restart to restore it) or another process writes as this actor.
    #[error("the shared op log already holds {actor}/{seq}; restart to restore from it")]
    Behind { actor: String, seq: u64 },
    /// The group's side rows could not be read from the SQLite transaction.
    #[error("reading the group's side rows: {0}")]
    Local(String),
    /// The shared log already holds this Idempotency-Key for another request.
    #[error("the shared op log already holds Idempotency-Key {0}")]
    KeyTaken(String),
    /// Another HQ process already answered this request for rights back (a lease changed
    /// hands while an answer was in flight): the group is refused, so it is not answered twice.
    #[error("another HQ process already answered the request for rights back {actor}/{seq}")]
    Answered { actor: String, seq: u64 },
}
