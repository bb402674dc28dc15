//! Where a simulated replica keeps its state: in memory (a `Replica` plus the list of
//! committed ops, fast, for many seeds) or a real `store::Node` on an SQLite file. Both answer
//! the same calls; a crash throws away everything but what was committed and replays it.

use std::path::PathBuf;
use storenode::domain::{ActorId, Applied, DomainError, Effect, Op, Replica};
use storenode::store::{Node, SubmitError};

/// Outcome of a local change: committed ops and effects, or the domain's refusal.
pub type Local = Result<(Vec<Op>, Vec<Effect>), DomainError>;

/// A replica's storage.
pub enum Backend {
    Memory {
        replica: Box<Replica>,
        /// Committed ops in commit order: what survives a crash.
        log: Vec<Op>,
    },
    Sqlite {
        node: Option<Node>,
        path: PathBuf,
        actor: ActorId,
    },
}

impl Backend {
    pub fn memory(actor: ActorId) -> Backend {
        Backend::Memory {
            replica: Box::new(Replica::new(actor)),
            log: Vec::new(),
        }
    }

    pub fn sqlite(path: PathBuf, actor: ActorId) -> Backend {
        let node = Node::open(&path, actor.clone()).expect("open simulated node");
        Backend::Sqlite {
            node: Some(node),
            path,
            actor,
        }
    }

    fn node(&self) -> &Node {
        match self {
            Backend::Sqlite { node: Some(n), .. } => n,
            _ => unreachable!("node is open between steps"),
        }
    }

    /// Issue local changes, all or nothing, committed when this returns.
    pub fn submit(&mut self, now_ms: u64, payloads: Vec<storenode::domain::Payload>) -> Local {
        match self {
            Backend::Memory { replica, log } => {
                let mut draft = (**replica).clone();
                let mut ops = Vec::new();
                let mut effects = Vec::new();
                for p in payloads {
                    let (op, eff) = draft.prepare(now_ms, p)?;
                    ops.push(op);
                    effects.extend(eff);
                }
                **replica = draft;
                log.extend(ops.iter().cloned());
                Ok((ops, effects))
            }
            Backend::Sqlite { .. } => match self.node().submit_blocking(now_ms, payloads) {
                Ok(s) => Ok((s.ops, s.effects)),
                Err(SubmitError::Domain(e)) => Err(e),
                Err(SubmitError::Store(e)) => panic!("store failed: {e}"),
            },
        }
    }

    /// Apply peer ops; returns how many were new and their effects.
    pub fn ingest(&mut self, ops: Vec<Op>) -> (usize, Vec<Effect>) {
        match self {
            Backend::Memory { replica, log } => {
                let mut applied = 0;
                let mut effects = Vec::new();
                for op in ops {
                    match replica.apply(&op) {
                        Ok(Applied::New(eff)) => {
                            applied += 1;
                            effects.extend(eff);
                            log.push(op);
                        }
                        Ok(Applied::Duplicate) => {}
                        Err(e) => panic!("peer op {:?} rejected: {e}", op.id()),
                    }
                }
                (applied, effects)
            }
            Backend::Sqlite { .. } => {
                let got = self.node().ingest_blocking(ops).expect("ingest");
                assert!(
                    got.rejected.is_empty(),
                    "peer ops rejected: {:?}",
                    got.rejected
                );
                (got.applied, got.effects)
            }
        }
    }

    pub fn read<R>(&self, f: impl FnOnce(&Replica) -> R) -> R {
        match self {
            Backend::Memory { replica, .. } => f(replica),
            Backend::Sqlite { .. } => self.node().read(f),
        }
    }

    /// Ops of `actor` above `after_seq`, in seq order, at most `limit`.
    pub fn ops_since(&self, actor: &ActorId, after_seq: u64, limit: usize) -> Vec<Op> {
        match self {
            Backend::Memory { log, .. } => {
                let mut ops: Vec<Op> = log
                    .iter()
                    .filter(|o| &o.actor == actor && o.seq > after_seq)
                    .cloned()
                    .collect();
                ops.sort_by_key(|o| o.seq);
                ops.truncate(limit);
                ops
            }
            Backend::Sqlite { .. } => self
                .node()
                .query_blocking(|c| Node::ops_since(c, actor, after_seq, limit))
                .expect("ops_since"),
        }
    }

    /// Power cut: drop every in-memory structure and rebuild from what was committed.
    pub fn crash(&mut self) {
        match self {
            Backend::Memory { replica, log } => {
                let mut fresh = Replica::new(replica.actor().clone());
                for op in log.iter() {
                    fresh.apply(op).expect("replay committed log");
                }
                **replica = fresh;
            }
            Backend::Sqlite { node, path, actor } => {
                drop(node.take());
                *node = Some(Node::open(path, actor.clone()).expect("reopen after crash"));
            }
        }
    }
}
