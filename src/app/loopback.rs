//! In-process link between HQ and the demo's stores, used until the MQTT sync engine is wired:
//! anti-entropy by version vectors (each side gets what the other holds and it lacks, straight
//! from the op log), the store's allocation top-up to HQ while online, and the store's release
//! of orders HQ cancelled. A cut link simply stops the exchange; ops wait in each log and flow
//! when it is restored, so nothing is lost or applied twice.

use crate::domain::inventory::AllocationPolicy;
use crate::domain::order::OrderStatus;
use crate::domain::{ActorId, Payload, StoreId};
use crate::hq::{LinkControl, LinkStatus, SyncView};
use crate::store::Node;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// Ops moved per round and direction.
const BATCH_OPS_MAX: usize = 2_000;
/// Longest wait between rounds when nothing happens.
const ROUND_MS: u64 = 250;

struct End {
    node: Node,
    policy: AllocationPolicy,
    online: AtomicBool,
    last_seen_ms: AtomicU64,
    outbox: AtomicU64,
    lag: AtomicU64,
    wake: Notify,
}

/// The demo's links, one per store.
pub struct Loopback {
    hq: Node,
    ends: BTreeMap<StoreId, Arc<End>>,
}

impl Loopback {
    /// Start one exchange task per store; they stop when `shutdown` turns true.
    pub fn spawn(
        hq: Node,
        stores: Vec<(StoreId, Node, AllocationPolicy)>,
        shutdown: watch::Receiver<bool>,
    ) -> (Arc<Loopback>, Vec<JoinHandle<()>>) {
        let ends: BTreeMap<StoreId, Arc<End>> = stores
            .into_iter()
            .map(|(id, node, policy)| {
                let end = End {
                    node,
                    policy,
                    online: AtomicBool::new(true),
                    last_seen_ms: AtomicU64::new(0),
                    outbox: AtomicU64::new(0),
                    lag: AtomicU64::new(0),
                    wake: Notify::new(),
                };
                (id, Arc::new(end))
            })
            .collect();
        let link = Arc::new(Loopback {
            hq: hq.clone(),
            ends,
        });
        let tasks = link
            .ends
            .iter()
            .map(|(store, end)| {
                tokio::spawn(run(
                    hq.clone(),
                    store.clone(),
                    end.clone(),
                    shutdown.clone(),
                ))
            })
            .collect();
        (link, tasks)
    }

    /// The store-side view of one store's link.
    pub fn store_view(&self, store: &StoreId) -> Option<Arc<dyn crate::app::StoreSyncView>> {
        self.ends
            .get(store)
            .map(|end| Arc::new(StoreSide(end.clone())) as Arc<dyn crate::app::StoreSyncView>)
    }

    /// HQ node this link feeds.
    pub fn hq(&self) -> &Node {
        &self.hq
    }
}

impl SyncView for Loopback {
    fn link(&self, store: &StoreId) -> LinkStatus {
        match self.ends.get(store) {
            Some(end) => LinkStatus {
                online: end.online.load(Ordering::Relaxed),
                last_seen_ms: Some(end.last_seen_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0),
                outbox: end.outbox.load(Ordering::Relaxed),
                lag_ops: end.lag.load(Ordering::Relaxed),
            },
            None => LinkStatus::default(),
        }
    }
    fn render_metrics(&self) -> String {
        String::new()
    }
}

impl LinkControl for Loopback {
    fn set_link(&self, store: &StoreId, online: bool) -> bool {
        match self.ends.get(store) {
            Some(end) => {
                end.online.store(online, Ordering::Relaxed);
                end.wake.notify_one();
                tracing::info!(%store, online, "demo link switched");
                true
            }
            None => false,
        }
    }
}

struct StoreSide(Arc<End>);

impl crate::app::StoreSyncView for StoreSide {
    fn online(&self) -> bool {
        self.0.online.load(Ordering::Relaxed)
    }
    fn outbox(&self) -> u64 {
        self.0.outbox.load(Ordering::Relaxed)
    }
    fn last_sync_ms(&self) -> Option<u64> {
        Some(self.0.last_seen_ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }
    fn render_metrics(&self) -> String {
        String::new()
    }
}

async fn run(hq: Node, store: StoreId, end: Arc<End>, mut shutdown: watch::Receiver<bool>) {
    let mut hq_events = hq.subscribe();
    let mut store_events = end.node.subscribe();
    loop {
        if let Err(e) = round(&hq, &store, &end).await {
            tracing::warn!(%store, error = %e, "demo link round failed");
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = end.wake.notified() => {}
            _ = hq_events.recv() => {}
            _ = store_events.recv() => {}
            _ = tokio::time::sleep(Duration::from_millis(ROUND_MS)) => {}
        }
    }
}

/// Ops `from` holds that `to` lacks, for every actor but `skip`.
async fn missing(
    from: &Node,
    to: &Node,
    only: Option<&ActorId>,
    skip: Option<&ActorId>,
) -> anyhow::Result<Vec<crate::domain::Op>> {
    let have = from.read(|r| r.version().entries());
    let mut wanted = Vec::new();
    for (actor, seq) in have {
        if only.is_some_and(|o| *o != actor) || skip.is_some_and(|s| *s == actor) {
            continue;
        }
        let theirs = to.read(|r| r.version().contiguous(&actor));
        if theirs < seq {
            wanted.push((actor, theirs));
        }
    }
    let mut ops = Vec::new();
    for (actor, after) in wanted {
        let batch = from
            .query(move |conn| Node::ops_since(conn, &actor, after, BATCH_OPS_MAX))
            .await?;
        ops.extend(batch);
    }
    Ok(ops)
}

/// Ops HQ holds (from any actor but the store) that the store has not applied.
fn lag(hq: &Node, store: &Node, me: &ActorId) -> u64 {
    let theirs = hq.read(|r| r.version().entries());
    store.read(|r| {
        theirs
            .iter()
            .filter(|(actor, _)| *actor != me)
            .map(|(actor, seq)| seq.saturating_sub(r.version().contiguous(actor)))
            .sum()
    })
}

async fn round(hq: &Node, store: &StoreId, end: &End) -> anyhow::Result<()> {
    let me = store.actor();
    let mine = end.node.read(|r| r.version().contiguous(&me));
    let at_hq = hq.read(|r| r.version().contiguous(&me));
    end.outbox
        .store(mine.saturating_sub(at_hq), Ordering::Relaxed);
    end.lag.store(lag(hq, &end.node, &me), Ordering::Relaxed);
    if !end.online.load(Ordering::Relaxed) {
        return Ok(());
    }
    let up = missing(&end.node, hq, Some(&me), None).await?;
    if !up.is_empty() {
        hq.ingest(up).await?;
    }
    let down = missing(hq, &end.node, None, Some(&me)).await?;
    if !down.is_empty() {
        end.node.ingest(down).await?;
    }
    end.lag.store(lag(hq, &end.node, &me), Ordering::Relaxed);
    end.last_seen_ms
        .store(crate::store::now_ms(), Ordering::Relaxed);
    let reactions = plan(&end.node, store, &end.policy);
    if !reactions.is_empty() {
        if let Err(e) = end.node.submit(reactions).await {
            tracing::debug!(%store, error = %e, "demo link reaction refused; retried next round");
        }
    }
    let mine = end.node.read(|r| r.version().contiguous(&me));
    let at_hq = hq.read(|r| r.version().contiguous(&me));
    end.outbox
        .store(mine.saturating_sub(at_hq), Ordering::Relaxed);
    Ok(())
}

/// What the store does on its own while online: return units of orders HQ cancelled, and top
/// up HQ's rights to the policy's share.
fn plan(node: &Node, store: &StoreId, policy: &AllocationPolicy) -> Vec<Payload> {
    node.read(|r| {
        let st = r.state();
        let me = store.actor();
        let hq = ActorId::hq();
        let mut out: Vec<Payload> = st
            .orders
            .values()
            .filter(|o| &o.store == store && !o.released)
            .filter(|o| matches!(o.status, OrderStatus::Cancelled | OrderStatus::Expired))
            .map(|o| Payload::OrderRelease {
                order_id: o.id.clone(),
                store: store.clone(),
            })
            .collect();
        for ((s, sku), counter) in &st.stock {
            if s != store {
                continue;
            }
            if let Some(qty) = policy.top_up(counter, &me, &hq) {
                out.push(Payload::StockTransfer {
                    store: store.clone(),
                    sku: sku.clone(),
                    to: hq.clone(),
                    qty,
                });
            }
        }
        out
    })
}
