//! Where a simulated replica keeps its state: in memory (a `Replica`, the list of committed
//! ops and the sync side tables, fast, for many seeds) or a real `store::Node` on an SQLite
//! file with the shipped side tables (`sync::persist`). Both answer the same calls; a crash
//! throws away everything but what was committed and replays it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use storenode::domain::reaction::plan_return;
use storenode::domain::{
    ActorId, Applied, CustomerId, DomainError, Effect, Op, Payload, Replica, StoreId,
};
use storenode::store::{decode_op, Node, SubmitError};
use storenode::sync::persist;
use storenode::sync::protocol::hq::{HqLoaded, IngestRoute};
use storenode::sync::protocol::store::{StoreCursors, KEY_DOWN_IDX, KEY_HQ_ACKED_SEQ};
use storenode::sync::route::RouteAction;

/// Outcome of a local change: committed ops and effects, or the domain's refusal.
pub type Local = Result<(Vec<Op>, Vec<Effect>), DomainError>;

/// Key of the simulation's mark of HQ's answered return requests (ops scanned in commit order).
const KEY_RETURNS_SCANNED: &str = "sim_returns_scanned";

/// The sync side tables of the memory backend, as `sync::persist` keeps them in SQLite.
#[derive(Default)]
pub struct Disk {
    cursors: BTreeMap<&'static str, u64>,
    routed: BTreeMap<ActorId, u64>,
    scope: BTreeSet<(StoreId, CustomerId)>,
    customer_ops: BTreeMap<CustomerId, BTreeSet<(ActorId, u64)>>,
    downlog: BTreeMap<StoreId, Vec<(ActorId, u64)>>,
}

/// A replica's storage.
pub enum Backend {
    Memory {
        replica: Box<Replica>,
        /// Committed ops in commit order: what survives a crash.
        log: Vec<Op>,
        /// Position in `log` of each op.
        index: BTreeMap<(ActorId, u64), usize>,
        disk: Box<Disk>,
    },
    Sqlite {
        node: Option<Node>,
        path: PathBuf,
        actor: ActorId,
        rt: tokio::runtime::Runtime,
    },
}

impl Backend {
    pub fn memory(actor: ActorId) -> Backend {
        Backend::Memory {
            replica: Box::new(Replica::new(actor)),
            log: Vec::new(),
            index: BTreeMap::new(),
            disk: Box::default(),
        }
    }

    pub fn sqlite(path: PathBuf, actor: ActorId) -> Backend {
        let node = Node::open(&path, actor.clone()).expect("open simulated node");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Backend::Sqlite {
            node: Some(node),
            path,
            actor,
            rt,
        }
    }

    fn node(&self) -> &Node {
        match self {
            Backend::Sqlite { node: Some(n), .. } => n,
            _ => unreachable!("node is open between steps"),
        }
    }

    /// Issue local changes, all or nothing, committed when this returns.
    pub fn submit(&mut self, now_ms: u64, payloads: Vec<Payload>) -> Local {
        match self {
            Backend::Memory {
                replica,
                log,
                index,
                ..
            } => {
                let mut draft = (**replica).clone();
                let mut ops = Vec::new();
                let mut effects = Vec::new();
                for p in payloads {
                    let (op, eff) = draft.prepare(now_ms, p)?;
                    ops.push(op);
                    effects.extend(eff);
                }
                **replica = draft;
                for op in &ops {
                    index.insert((op.actor.clone(), op.seq), log.len());
                    log.push(op.clone());
                }
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
            Backend::Memory {
                replica,
                log,
                index,
                ..
            } => {
                let mut applied = 0;
                let mut effects = Vec::new();
                for op in ops {
                    match replica.apply(&op) {
                        Ok(Applied::New(eff)) => {
                            applied += 1;
                            effects.extend(eff);
                            index.insert((op.actor.clone(), op.seq), log.len());
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

    /// HQ's ingest with the routing it carries (`HqAction::Ingest`), in one commit as HQ
    /// does it; returns how many ops were new, their effects, and what the routing wrote.
    pub fn ingest_routed(
        &mut self,
        ops: Vec<Op>,
        route: Option<IngestRoute>,
    ) -> (usize, Vec<Effect>, Option<BTreeMap<StoreId, u64>>) {
        let Some(route) = route else {
            let (applied, effects) = self.ingest(ops);
            return (applied, effects, None);
        };
        if let Backend::Sqlite {
            node: Some(n), rt, ..
        } = self
        {
            let (got, routed) = rt
                .block_on(n.ingest_then(ops, move |tx, ingested| {
                    persist::apply_ingest_route(tx, ingested, &route)
                }))
                .expect("ingest");
            assert!(
                got.rejected.is_empty(),
                "peer ops rejected: {:?}",
                got.rejected
            );
            return (got.applied, got.effects, routed);
        }
        let (applied, effects) = self.ingest(ops);
        let routed = self.apply_routes(route.actions, route.cursors);
        (applied, effects, Some(routed))
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

    /// Raise a persisted sync cursor.
    pub fn persist(&mut self, key: &'static str, value: u64) {
        match self {
            Backend::Memory { disk, .. } => {
                let v = disk.cursors.entry(key).or_default();
                *v = (*v).max(value);
            }
            Backend::Sqlite {
                node: Some(n), rt, ..
            } => rt
                .block_on(n.write(move |tx| persist::raise_u64(tx, key, value)))
                .expect("persist a cursor"),
            Backend::Sqlite { .. } => unreachable!("node is open between steps"),
        }
    }

    fn cursor(&self, key: &'static str) -> u64 {
        match self {
            Backend::Memory { disk, .. } => disk.cursors.get(key).copied().unwrap_or(0),
            Backend::Sqlite { .. } => self
                .node()
                .query_blocking(|c| persist::get_u64(c, key))
                .expect("read a cursor"),
        }
    }

    /// A store's persisted cursors.
    pub fn store_cursors(&self) -> StoreCursors {
        StoreCursors {
            hq_acked: self.cursor(KEY_HQ_ACKED_SEQ),
            down_idx: self.cursor(KEY_DOWN_IDX),
        }
    }

    /// HQ's persisted routing state.
    pub fn load_hq(&self) -> HqLoaded {
        match self {
            Backend::Memory { disk, .. } => HqLoaded {
                routed: disk.routed.clone(),
                stores: BTreeSet::new(),
                scope: disk.scope.clone(),
                downlog_last: disk
                    .downlog
                    .iter()
                    .map(|(s, l)| (s.clone(), l.len() as u64))
                    .collect(),
            },
            Backend::Sqlite { .. } => self
                .node()
                .query_blocking(persist::load_hq)
                .expect("load hq"),
        }
    }

    /// Persist routing decisions (`persist::apply_routes`); the last index of each store
    /// that got entries.
    pub fn apply_routes(
        &mut self,
        actions: Vec<RouteAction>,
        cursors: Vec<(ActorId, u64)>,
    ) -> BTreeMap<StoreId, u64> {
        let disk = match self {
            Backend::Memory { disk, .. } => disk,
            Backend::Sqlite {
                node: Some(n), rt, ..
            } => {
                return rt
                    .block_on(n.write(move |tx| persist::apply_routes(tx, &actions, &cursors)))
                    .expect("apply routes")
            }
            Backend::Sqlite { .. } => unreachable!("node is open between steps"),
        };
        let mut touched = BTreeSet::new();
        for action in actions {
            match action {
                RouteAction::Append { store, op } => {
                    disk.downlog
                        .entry(store.clone())
                        .or_default()
                        .push((op.actor, op.seq));
                    touched.insert(store);
                }
                RouteAction::Index { customer, op } => {
                    disk.customer_ops
                        .entry(customer)
                        .or_default()
                        .insert((op.actor, op.seq));
                }
                RouteAction::EnterScope { store, customer } => {
                    disk.scope.insert((store.clone(), customer.clone()));
                    let past: Vec<(ActorId, u64)> = disk
                        .customer_ops
                        .get(&customer)
                        .into_iter()
                        .flatten()
                        .filter(|(a, _)| *a != store.actor())
                        .cloned()
                        .collect();
                    disk.downlog.entry(store.clone()).or_default().extend(past);
                    touched.insert(store);
                }
            }
        }
        disk.routed.extend(cursors);
        touched
            .into_iter()
            .map(|s| {
                let last = disk.downlog.get(&s).map_or(0, |l| l.len() as u64);
                (s, last)
            })
            .collect()
    }

    /// `store`'s down-log entries after `after`, at most `limit`, as ops.
    pub fn downlog_ops(&self, store: &StoreId, after: u64, limit: usize) -> Vec<Op> {
        match self {
            Backend::Memory {
                disk, log, index, ..
            } => {
                let entries = disk.downlog.get(store).map_or(&[][..], |l| &l[..]);
                entries
                    .iter()
                    .skip(after as usize)
                    .take(limit)
                    .map(|id| log[*index.get(id).expect("down-log entry in the op log")].clone())
                    .collect()
            }
            Backend::Sqlite { .. } => self
                .node()
                .query_blocking(|c| persist::downlog_ops(c, store, after, limit))
                .expect("read the down-log"),
        }
    }

    /// Ops in commit order after the first `skip` (HQ's return requests are answered from it).
    fn log_after(&self, skip: u64) -> Vec<Op> {
        match self {
            Backend::Memory { log, .. } => log.iter().skip(skip as usize).cloned().collect(),
            Backend::Sqlite { .. } => self
                .node()
                .query_blocking(|c| {
                    let mut stmt =
                        c.prepare("SELECT body FROM ops ORDER BY rowid LIMIT -1 OFFSET ?1")?;
                    let rows = stmt.query_map([skip as i64], |r| r.get::<_, Vec<u8>>(0))?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                })
                .expect("read the log")
                .iter()
                .map(|b| decode_op(b).expect("decode"))
                .collect(),
        }
    }

    /// HQ answers every return request not answered yet, once, in log order (as
    /// `sync::returns::answer_pending`, on the simulation's clock); transfers issued.
    pub fn answer_returns(&mut self, now_ms: u64) -> Vec<(Vec<Op>, Vec<Effect>)> {
        let mut done = Vec::new();
        let mut scanned = self.cursor(KEY_RETURNS_SCANNED);
        for op in self.log_after(scanned) {
            scanned += 1;
            if let Payload::RightsReturnRequested { store, sku, qty } = op.payload {
                if let Some(p) = self.read(|r| plan_return(r.state(), &store, &sku, qty)) {
                    if let Ok(committed) = self.submit(now_ms, vec![p]) {
                        done.push(committed);
                    }
                }
            }
            // Answer and mark move together (no crash falls between two calls here).
            self.persist(KEY_RETURNS_SCANNED, scanned);
        }
        done
    }

    /// Power cut: drop every in-memory structure and rebuild from what was committed.
    pub fn crash(&mut self) {
        match self {
            Backend::Memory { replica, log, .. } => {
                let mut fresh = Replica::new(replica.actor().clone());
                for op in log.iter() {
                    fresh.apply(op).expect("replay committed log");
                }
                **replica = fresh;
            }
            Backend::Sqlite {
                node, path, actor, ..
            } => {
                drop(node.take());
                *node = Some(Node::open(path, actor.clone()).expect("reopen after crash"));
            }
        }
    }
}
