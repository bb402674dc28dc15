//! The mixed store workload every scenario replays: till sales, pickup orders walked through
//! their lifecycle, and cart edits, over a seeded catalog with stock at one store.
//!
//! Generation is deterministic (seeded per task) and always valid against the acting replica's
//! state, so a run never measures refusals. Seeding builds ops in memory with throwaway
//! replicas and hands them to a node through `ingest`, as a restore from a peer would.

use crate::domain::ids::gtin_check_digit;
use crate::domain::op::{Advance, OrderLine, ReceiveReason, SaleLine, Tender};
use crate::domain::{
    ActorId, CustomerId, Ean13, Op, OrderId, Payload, Replica, SaleId, Sku, State, StoreId,
};
use crate::store::{Node, SubmitError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

/// The store every scenario's workload runs at.
pub const STORE: &str = "bench-store";
/// Units received per SKU at seeding: enough that no run sells out.
pub const UNITS_PER_SKU: u32 = 10_000;
/// Ops per ingest request while seeding.
pub const SEED_CHUNK_OPS: usize = 5_000;
/// Wall clock the in-memory seeding replicas stamp ops with.
const SEED_NOW_MS: u64 = 1_700_000_000_000;

pub fn store() -> StoreId {
    StoreId::parse(STORE).unwrap_or_else(|_| unreachable!("constant store id is valid"))
}

pub fn sku(i: usize) -> Sku {
    Sku::parse(&format!("SKU-{i:06}")).unwrap_or_else(|_| unreachable!("generated sku is valid"))
}

/// The catalog price of SKU number `i`. Sales use it too: a sale at another price raises a
/// price conflict, which keeps the sale in memory and in the conflict inbox, and that is not
/// the workload a till produces.
pub fn price_cents(i: usize) -> i64 {
    100 + (i % 5_000) as i64
}

/// A valid EAN-13 for SKU number `i`: prefix 84, ten digits, check digit.
pub fn ean(i: usize) -> Ean13 {
    let body = format!("84{:010}", i % 10_000_000_000);
    let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
    let check = gtin_check_digit(&digits);
    Ean13::parse(&format!("{body}{check}"))
        .unwrap_or_else(|_| unreachable!("generated ean has its check digit"))
}

fn id<T>(parsed: Result<T, crate::domain::IdError>) -> T {
    parsed.unwrap_or_else(|_| unreachable!("generated id is valid"))
}

/// The seed: HQ's catalog of `skus` products, the store's stock of each, and `orders` open
/// pickup orders placed at the store. HQ ops first, then the store's in seq order.
pub fn seed_ops(skus: usize, orders: usize) -> Vec<Op> {
    let mut at_store = Replica::new(store().actor());
    let mut ops = Vec::with_capacity(skus * 2 + orders);
    ops.extend(catalog_ops(skus));
    for op in &ops {
        let _ = at_store.apply(op);
    }
    for i in 0..skus {
        let payload = Payload::StockReceive {
            store: store(),
            sku: sku(i),
            qty: UNITS_PER_SKU,
            reason: ReceiveReason::Delivery,
        };
        ops.push(prepared(&mut at_store, payload));
    }
    for n in 0..orders {
        let payload = Payload::OrderPlace {
            order_id: id(OrderId::parse(&format!("O-seed-{n}"))),
            store: store(),
            customer: id(CustomerId::parse(&format!("C-seed-{}", n % 5_000))),
            lines: vec![
                OrderLine {
                    sku: sku(n * 7 % skus.max(1)),
                    qty: 1,
                },
                OrderLine {
                    sku: sku((n * 7 + 3) % skus.max(1)),
                    qty: 2,
                },
            ],
            pickup_code: "ABC234".into(),
            placed_at_ms: SEED_NOW_MS,
        };
        ops.push(prepared(&mut at_store, payload));
    }
    ops
}

/// HQ's catalog of `skus` products.
pub fn catalog_ops(skus: usize) -> Vec<Op> {
    let mut hq = Replica::new(ActorId::hq());
    (0..skus)
        .map(|i| {
            let payload = Payload::CatalogPut {
                sku: sku(i),
                ean: ean(i),
                name: format!("Producto de prueba {i} (caja de 12)"),
                price_cents: price_cents(i),
                vat_bp: 2100,
            };
            prepared(&mut hq, payload)
        })
        .collect()
}

/// `payload` issued by `replica` at the seeding clock.
pub fn prepared(replica: &mut Replica, payload: Payload) -> Op {
    let now = SEED_NOW_MS + replica.next_seq();
    match replica.prepare(now, payload) {
        Ok((op, _)) => op,
        Err(e) => unreachable!("seed payloads are valid: {e}"),
    }
}

/// Hand the seed to a node in chunks; returns how many ops it applied.
pub async fn seed_node(node: &Node, seed: &[Op]) -> anyhow::Result<usize> {
    let mut applied = 0;
    for chunk in seed.chunks(SEED_CHUNK_OPS) {
        let done = node.ingest(chunk.to_vec()).await?;
        anyhow::ensure!(
            done.rejected.is_empty(),
            "seed op refused: {:?}",
            done.rejected.first()
        );
        applied += done.applied;
    }
    Ok(applied)
}

/// A pickup order one task is walking through its lifecycle.
struct OrderFlow {
    id: OrderId,
    lines: Vec<Sku>,
    step: usize,
}

/// One submitter's stream of payloads. Every ten ops: four sales, two cart sets, one cart
/// remove, three order steps (place, picking, a pick per line, ready, handed over).
pub struct Mix {
    store: StoreId,
    task: usize,
    skus: usize,
    rng: StdRng,
    n: u64,
    flow: Option<OrderFlow>,
    last_cart: Option<(CustomerId, Sku)>,
}

impl Mix {
    pub fn new(task: usize, skus: usize) -> Mix {
        Mix::at(store(), task, skus)
    }

    /// The mix of task `task` at `store` (task numbers name the ids it makes: keep them
    /// unique across stores whose ops meet).
    pub fn at(store: StoreId, task: usize, skus: usize) -> Mix {
        Mix {
            store,
            task,
            skus: skus.max(1),
            rng: StdRng::seed_from_u64(0x5eed_0000 + task as u64),
            n: 0,
            flow: None,
            last_cart: None,
        }
    }

    fn any_sku(&mut self) -> Sku {
        sku(self.rng.gen_range(0..self.skus))
    }

    fn customer(&mut self) -> CustomerId {
        id(CustomerId::parse(&format!(
            "C-{}-{}",
            self.task,
            self.rng.gen_range(0..50)
        )))
    }

    /// The next payload, valid against `state` (the acting store's replica).
    pub fn next(&mut self, state: &State) -> Payload {
        self.n += 1;
        match self.n % 10 {
            0 | 2 | 5 | 7 => self.sale(),
            1 | 4 => self.cart_set(),
            8 => self.cart_remove(state),
            _ => self.order_step(),
        }
    }

    fn sale(&mut self) -> Payload {
        let lines = (0..self.rng.gen_range(1..=3))
            .map(|_| {
                let i = self.rng.gen_range(0..self.skus);
                SaleLine {
                    sku: sku(i),
                    qty: 1,
                    unit_cents: price_cents(i),
                    vat_bp: 2100,
                }
            })
            .collect();
        let customer = self.n.is_multiple_of(3).then(|| self.customer());
        Payload::Sale {
            store: self.store.clone(),
            sale_id: id(SaleId::parse(&format!("S-{}-{}", self.task, self.n))),
            lines,
            tender: if self.n.is_multiple_of(2) {
                Tender::Card
            } else {
                Tender::Cash
            },
            customer,
        }
    }

    fn cart_set(&mut self) -> Payload {
        let customer = self.customer();
        let sku = self.any_sku();
        self.last_cart = Some((customer.clone(), sku.clone()));
        Payload::CartSet {
            customer,
            sku,
            qty: self.rng.gen_range(1..=4),
        }
    }

    fn cart_remove(&mut self, state: &State) -> Payload {
        let (customer, sku) = match self.last_cart.take() {
            Some(line) => line,
            None => (self.customer(), self.any_sku()),
        };
        let observed = state
            .carts
            .get(&customer)
            .map(|c| c.observed(&sku))
            .unwrap_or_default();
        Payload::CartRemove {
            customer,
            sku,
            observed,
        }
    }

    fn order_step(&mut self) -> Payload {
        let Some(flow) = self.flow.as_mut() else {
            let lines: Vec<Sku> = (0..self.rng.gen_range(1..=2))
                .map(|_| self.any_sku())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let order_id = id(OrderId::parse(&format!("O-{}-{}", self.task, self.n)));
            let customer = self.customer();
            self.flow = Some(OrderFlow {
                id: order_id.clone(),
                lines: lines.clone(),
                step: 0,
            });
            return Payload::OrderPlace {
                order_id,
                store: self.store.clone(),
                customer,
                lines: lines
                    .into_iter()
                    .map(|sku| OrderLine { sku, qty: 1 })
                    .collect(),
                pickup_code: "K7M2QX".into(),
                placed_at_ms: SEED_NOW_MS,
            };
        };
        flow.step += 1;
        let order_id = flow.id.clone();
        let picks = flow.lines.len();
        let store = self.store.clone();
        let advance = |to| Payload::OrderAdvance {
            order_id: order_id.clone(),
            store: store.clone(),
            to,
        };
        match flow.step {
            1 => advance(Advance::Picking),
            s if s <= 1 + picks => Payload::OrderPick {
                order_id: order_id.clone(),
                store: store.clone(),
                sku: flow.lines[s - 2].clone(),
                picked: 1,
            },
            s if s == 2 + picks => advance(Advance::Ready),
            _ => {
                self.flow = None;
                advance(Advance::HandedOver)
            }
        }
    }
}

/// `count` workload ops issued by a fresh store replica that first applied `seed`, one task's
/// mix per `tasks` interleaved round-robin (as concurrent tills would).
pub fn workload_ops(seed: &[Op], skus: usize, tasks: usize, count: usize) -> Vec<Op> {
    let mut at_store = Replica::new(store().actor());
    for op in seed {
        let _ = at_store.apply(op);
    }
    let mut mixes: Vec<Mix> = (0..tasks.max(1)).map(|t| Mix::new(t, skus)).collect();
    let mut ops = Vec::with_capacity(count);
    for i in 0..count {
        let t = i % mixes.len();
        let payload = mixes[t].next(at_store.state());
        ops.push(prepared(&mut at_store, payload));
    }
    ops
}

/// Run the mixed workload from `tasks` concurrent submitters for `run`; (ops, refused, time).
pub async fn submit_mix(
    node: &Node,
    tasks: usize,
    skus: usize,
    run: Duration,
) -> anyhow::Result<(u64, u64, Duration)> {
    let started = Instant::now();
    let deadline = started + run;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let node = node.clone();
        set.spawn(async move {
            let mut mix = Mix::new(t, skus);
            let (mut ops, mut refused) = (0u64, 0u64);
            while Instant::now() < deadline {
                let payload = node.read(|r| mix.next(r.state()));
                match node.submit(vec![payload]).await {
                    Ok(s) => ops += s.ops.len() as u64,
                    Err(SubmitError::Domain(_)) => refused += 1,
                    Err(e) => return Err(anyhow::Error::from(e)),
                }
            }
            Ok((ops, refused))
        });
    }
    let (mut ops, mut refused) = (0, 0);
    while let Some(joined) = set.join_next().await {
        let (o, r) = joined??;
        ops += o;
        refused += r;
    }
    Ok((ops, refused, started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_workload_is_valid_against_the_store_replica() {
        let seed = seed_ops(50, 10);
        let ops = workload_ops(&seed, 50, 4, 400);
        assert_eq!(ops.len(), 400);
        let mut peer = Replica::new(ActorId::hq());
        for op in seed.iter().chain(&ops) {
            peer.apply(op).unwrap();
        }
        assert!(peer.state().sales.len() >= 100);
    }

    #[test]
    fn generated_eans_carry_their_check_digit() {
        for i in [0, 1, 99_999, 1_234_567] {
            assert_eq!(ean(i).to_string().len(), 13);
        }
    }
}
