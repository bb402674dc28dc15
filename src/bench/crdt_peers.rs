//! `crdt-peers`: the same op workload merged in memory by our `Replica` and by the two
//! general-purpose CRDT engines, Automerge and Yrs (Yjs), each modelling the same data: a
//! catalog, stock counters, sales, pickup orders and carts.
//!
//! Every engine is measured the same way: a source replica issues one change per op; a peer
//! that already holds the seed (catalog and stock) receives each change as bytes, decodes it and
//! merges it. The headline is the peer's merge rate. Memory per op is live heap growth of the
//! peer measured with the counting allocator; wire bytes per op is the encoded change size.

use super::alloc::live_bytes;
use super::report::Report;
use super::workload::{seed_ops, workload_ops};
use super::Options;
use crate::domain::{ActorId, Op, Payload, Replica};
use crate::store::{decode_op, encode_op};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, Automerge, Change, ObjId, ObjType, ScalarValue, ROOT};
use std::collections::HashMap;
use std::time::Instant;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Map, MapPrelim, MapRef, Out, Transact, Update};

/// What one engine did with the workload.
struct Measured {
    /// Automerge only: the whole workload merged in one `apply_changes` call.
    batch_merge_s: Option<f64>,
    local_s: f64,
    merge_s: f64,
    heap_bytes: Option<i64>,
    wire_bytes: usize,
}

pub fn run(opts: &Options) -> anyhow::Result<()> {
    let (skus, count) = if opts.quick {
        (1_000, 5_000)
    } else {
        (10_000, 20_000)
    };
    let seed = seed_ops(skus, 0);
    let started = Instant::now();
    let ops = workload_ops(&seed, skus, 16, count);
    let ours_local = started.elapsed().as_secs_f64();
    let ours = ours_merge(&seed, &ops, ours_local)?;
    let am = automerge_run(&seed, &ops)?;
    let y = yrs_run(&seed, &ops)?;

    let mut report = Report::new("crdt-peers", "merged ops/s");
    let n = ops.len() as f64;
    for (name, m) in [("ours", &ours), ("automerge", &am), ("yrs", &y)] {
        report.figure(&format!("{name}_merge_ops_per_s"), n / m.merge_s, "ops/s");
        report.figure(&format!("{name}_local_ops_per_s"), n / m.local_s, "ops/s");
        match m.heap_bytes {
            Some(b) => report.figure(&format!("{name}_heap_bytes_per_op"), b as f64 / n, "B"),
            None => report.figure(&format!("{name}_heap_bytes_per_op"), "n/a", ""),
        }
        report.figure(
            &format!("{name}_wire_bytes_per_op"),
            m.wire_bytes as f64 / n,
            "B",
        );
    }
    let am_batch_s = am.batch_merge_s.unwrap_or(am.merge_s);
    report.figure("automerge_batch_merge_ops_per_s", n / am_batch_s, "ops/s");
    report.figure(
        "ours_vs_automerge_one_by_one",
        am.merge_s / ours.merge_s,
        "x",
    );
    report.figure("ours_vs_yrs", (n / ours.merge_s) / (n / y.merge_s), "x");
    report.note(format!(
        "{skus} SKUs seeded, {count} ops (sales, order steps, cart edits); merge = decode bytes + apply at a peer, one op at a time"
    ));
    report.note("ours local includes generating the workload; heap = live bytes the peer grew by (counting allocator)");
    report.note("baseline = Automerge's best case: every change merged in one apply_changes call");
    report.finish(n / ours.merge_s, n / am_batch_s, opts.json);
    Ok(())
}

fn ours_merge(seed: &[Op], ops: &[Op], local_s: f64) -> anyhow::Result<Measured> {
    let wire: Vec<Vec<u8>> = ops.iter().map(encode_op).collect();
    let mut peer = Replica::new(ActorId::hq());
    for op in seed {
        peer.apply(op)?;
    }
    let before = live_bytes();
    let started = Instant::now();
    for bytes in &wire {
        peer.apply(&decode_op(bytes)?)?;
    }
    let merge_s = started.elapsed().as_secs_f64();
    let heap_bytes = live_bytes().zip(before).map(|(a, b)| a - b);
    Ok(Measured {
        batch_merge_s: None,
        local_s,
        merge_s,
        heap_bytes,
        wire_bytes: wire.iter().map(Vec::len).sum(),
    })
}

/// Automerge objects created at the source, by their key (order id, customer id).
struct AmModel {
    doc: AutoCommit,
    catalog: ObjId,
    stock: ObjId,
    sales: ObjId,
    orders: ObjId,
    carts: ObjId,
    objs: HashMap<String, ObjId>,
}

impl AmModel {
    fn new() -> Result<AmModel, automerge::AutomergeError> {
        let mut doc =
            AutoCommit::new().with_actor(automerge::ActorId::from(b"store-bench".as_slice()));
        let catalog = doc.put_object(ROOT, "catalog", ObjType::Map)?;
        let stock = doc.put_object(ROOT, "stock", ObjType::Map)?;
        let sales = doc.put_object(ROOT, "sales", ObjType::Map)?;
        let orders = doc.put_object(ROOT, "orders", ObjType::Map)?;
        let carts = doc.put_object(ROOT, "carts", ObjType::Map)?;
        Ok(AmModel {
            doc,
            catalog,
            stock,
            sales,
            orders,
            carts,
            objs: HashMap::new(),
        })
    }

    fn apply(&mut self, op: &Op) -> Result<(), automerge::AutomergeError> {
        let d = &mut self.doc;
        match &op.payload {
            Payload::CatalogPut {
                sku,
                ean,
                name,
                price_cents,
                vat_bp,
            } => {
                let p = d.put_object(&self.catalog, sku.as_str(), ObjType::Map)?;
                d.put(&p, "ean", ean.to_string())?;
                d.put(&p, "name", name.as_str())?;
                d.put(&p, "price_cents", *price_cents)?;
                d.put(&p, "vat_bp", u64::from(*vat_bp))?;
            }
            Payload::StockReceive { sku, qty, .. } => {
                d.put(
                    &self.stock,
                    sku.as_str(),
                    ScalarValue::counter(i64::from(*qty)),
                )?;
            }
            Payload::Sale {
                sale_id,
                lines,
                tender,
                customer,
                ..
            } => {
                for l in lines {
                    d.increment(&self.stock, l.sku.as_str(), -i64::from(l.qty))?;
                }
                let s = d.put_object(&self.sales, sale_id.as_str(), ObjType::Map)?;
                let text: Vec<String> = lines
                    .iter()
                    .map(|l| format!("{}:{}:{}", l.sku, l.qty, l.unit_cents))
                    .collect();
                d.put(&s, "lines", text.join(";"))?;
                d.put(&s, "tender", format!("{tender:?}"))?;
                if let Some(c) = customer {
                    d.put(&s, "customer", c.as_str())?;
                }
            }
            Payload::OrderPlace {
                order_id,
                customer,
                lines,
                pickup_code,
                ..
            } => {
                let o = d.put_object(&self.orders, order_id.as_str(), ObjType::Map)?;
                d.put(&o, "status", "placed")?;
                d.put(&o, "customer", customer.as_str())?;
                d.put(&o, "pickup_code", pickup_code.as_str())?;
                for l in lines {
                    d.increment(&self.stock, l.sku.as_str(), -i64::from(l.qty))?;
                    d.put(&o, format!("qty:{}", l.sku), u64::from(l.qty))?;
                    d.put(&o, format!("picked:{}", l.sku), 0u64)?;
                }
                self.objs.insert(order_id.to_string(), o);
            }
            Payload::OrderAdvance { order_id, to, .. } => {
                if let Some(o) = self.objs.get(order_id.as_str()) {
                    d.put(o, "status", format!("{to:?}"))?;
                }
            }
            Payload::OrderPick {
                order_id,
                sku,
                picked,
                ..
            } => {
                if let Some(o) = self.objs.get(order_id.as_str()) {
                    d.put(o, format!("picked:{sku}"), u64::from(*picked))?;
                }
            }
            Payload::CartSet { customer, sku, qty } => {
                let key = format!("cart:{customer}");
                let cart = match self.objs.get(&key) {
                    Some(c) => c.clone(),
                    None => {
                        let c = d.put_object(&self.carts, customer.as_str(), ObjType::Map)?;
                        self.objs.insert(key, c.clone());
                        c
                    }
                };
                d.put(&cart, sku.as_str(), u64::from(*qty))?;
            }
            Payload::CartRemove { customer, sku, .. } => {
                if let Some(c) = self.objs.get(&format!("cart:{customer}")) {
                    d.delete(c, sku.as_str())?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn automerge_run(seed: &[Op], ops: &[Op]) -> anyhow::Result<Measured> {
    let mut source = AmModel::new()?;
    for op in seed {
        source.apply(op)?;
    }
    source.doc.commit();
    let mut peer = Automerge::new();
    peer.apply_changes(source.doc.get_changes(&[]))?;
    let started = Instant::now();
    let mut wire: Vec<Vec<u8>> = Vec::with_capacity(ops.len());
    for op in ops {
        source.apply(op)?;
        source.doc.commit();
        if let Some(change) = source.doc.get_last_local_change() {
            wire.push(change.raw_bytes().to_vec());
        }
    }
    let local_s = started.elapsed().as_secs_f64();
    let before = live_bytes();
    let started = Instant::now();
    for bytes in &wire {
        peer.apply_changes([Change::from_bytes(bytes.clone())?])?;
    }
    let merge_s = started.elapsed().as_secs_f64();
    let heap_bytes = live_bytes().zip(before).map(|(a, b)| a - b);
    drop(peer);
    let mut batch_peer = Automerge::new();
    batch_peer.apply_changes(source.doc.get_changes(&[]).into_iter().take(1))?;
    let started = Instant::now();
    let changes = wire
        .iter()
        .map(|b| Change::from_bytes(b.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    batch_peer.apply_changes(changes)?;
    let batch_merge_s = Some(started.elapsed().as_secs_f64());
    Ok(Measured {
        batch_merge_s,
        local_s,
        merge_s,
        heap_bytes,
        wire_bytes: wire.iter().map(Vec::len).sum(),
    })
}

/// Yrs roots and nested maps created at the source. Yrs has no counter type: each stock entry
/// is a map of per-actor totals that only their actor writes (a G-counter by hand).
struct YModel {
    doc: Doc,
    catalog: MapRef,
    stock: MapRef,
    sales: MapRef,
    orders: MapRef,
    carts: MapRef,
    maps: HashMap<String, MapRef>,
}

impl YModel {
    fn new(client: u64) -> YModel {
        let doc = Doc::with_client_id(client);
        YModel {
            catalog: doc.get_or_insert_map("catalog"),
            stock: doc.get_or_insert_map("stock"),
            sales: doc.get_or_insert_map("sales"),
            orders: doc.get_or_insert_map("orders"),
            carts: doc.get_or_insert_map("carts"),
            doc,
            maps: HashMap::new(),
        }
    }

    fn apply(&mut self, txn: &mut yrs::TransactionMut, op: &Op) {
        let actor = op.actor.as_str();
        match &op.payload {
            Payload::CatalogPut {
                sku,
                ean,
                name,
                price_cents,
                vat_bp,
            } => {
                let p = self.catalog.insert(txn, sku.as_str(), MapPrelim::default());
                p.insert(txn, "ean", ean.to_string());
                p.insert(txn, "name", name.as_str());
                p.insert(txn, "price_cents", *price_cents);
                p.insert(txn, "vat_bp", i64::from(*vat_bp));
            }
            Payload::StockReceive { sku, qty, .. } => {
                let s = self.stock.insert(txn, sku.as_str(), MapPrelim::default());
                s.insert(txn, format!("created:{actor}"), i64::from(*qty));
                self.maps.insert(format!("stock:{sku}"), s);
            }
            Payload::Sale {
                sale_id,
                lines,
                tender,
                customer,
                ..
            } => {
                for l in lines {
                    self.consume(txn, actor, l.sku.as_str(), l.qty);
                }
                let s = self
                    .sales
                    .insert(txn, sale_id.as_str(), MapPrelim::default());
                let text: Vec<String> = lines
                    .iter()
                    .map(|l| format!("{}:{}:{}", l.sku, l.qty, l.unit_cents))
                    .collect();
                s.insert(txn, "lines", text.join(";"));
                s.insert(txn, "tender", format!("{tender:?}"));
                if let Some(c) = customer {
                    s.insert(txn, "customer", c.as_str());
                }
            }
            Payload::OrderPlace {
                order_id,
                customer,
                lines,
                pickup_code,
                ..
            } => {
                let o = self
                    .orders
                    .insert(txn, order_id.as_str(), MapPrelim::default());
                o.insert(txn, "status", "placed");
                o.insert(txn, "customer", customer.as_str());
                o.insert(txn, "pickup_code", pickup_code.as_str());
                for l in lines {
                    self.consume(txn, actor, l.sku.as_str(), l.qty);
                    o.insert(txn, format!("qty:{}", l.sku), i64::from(l.qty));
                    o.insert(txn, format!("picked:{}", l.sku), 0i64);
                }
                self.maps.insert(order_id.to_string(), o);
            }
            Payload::OrderAdvance { order_id, to, .. } => {
                if let Some(o) = self.maps.get(order_id.as_str()) {
                    o.insert(txn, "status", format!("{to:?}"));
                }
            }
            Payload::OrderPick {
                order_id,
                sku,
                picked,
                ..
            } => {
                if let Some(o) = self.maps.get(order_id.as_str()) {
                    o.insert(txn, format!("picked:{sku}"), i64::from(*picked));
                }
            }
            Payload::CartSet { customer, sku, qty } => {
                let key = format!("cart:{customer}");
                let cart = match self.maps.get(&key) {
                    Some(c) => c.clone(),
                    None => {
                        let c = self
                            .carts
                            .insert(txn, customer.as_str(), MapPrelim::default());
                        self.maps.insert(key, c.clone());
                        c
                    }
                };
                cart.insert(txn, sku.as_str(), i64::from(*qty));
            }
            Payload::CartRemove { customer, sku, .. } => {
                if let Some(c) = self.maps.get(&format!("cart:{customer}")) {
                    c.remove(txn, sku.as_str());
                }
            }
            _ => {}
        }
    }

    /// Add `qty` to this actor's consumed total of `sku` (read, then write the new total).
    fn consume(&self, txn: &mut yrs::TransactionMut, actor: &str, sku: &str, qty: u32) {
        let Some(s) = self.maps.get(&format!("stock:{sku}")) else {
            return;
        };
        let key = format!("consumed:{actor}");
        let used = match s.get(txn, &key) {
            Some(Out::Any(yrs::Any::Number(yrs::Number::Int(n)))) => n,
            Some(Out::Any(yrs::Any::Number(yrs::Number::Float(f)))) => f as i64,
            _ => 0,
        };
        s.insert(txn, key, used + i64::from(qty));
    }
}

fn yrs_run(seed: &[Op], ops: &[Op]) -> anyhow::Result<Measured> {
    let mut source = YModel::new(1);
    let seed_update = {
        let doc = source.doc.clone();
        let mut txn = doc.transact_mut();
        for op in seed {
            source.apply(&mut txn, op);
        }
        txn.encode_update_v1()
    };
    let peer = Doc::with_client_id(2);
    peer.transact_mut()
        .apply_update(Update::decode_v1(&seed_update)?)?;
    let started = Instant::now();
    let mut wire: Vec<Vec<u8>> = Vec::with_capacity(ops.len());
    for op in ops {
        let doc = source.doc.clone();
        let mut txn = doc.transact_mut();
        source.apply(&mut txn, op);
        wire.push(txn.encode_update_v1());
    }
    let local_s = started.elapsed().as_secs_f64();
    let before = live_bytes();
    let started = Instant::now();
    for bytes in &wire {
        peer.transact_mut()
            .apply_update(Update::decode_v1(bytes)?)?;
    }
    let merge_s = started.elapsed().as_secs_f64();
    let heap_bytes = live_bytes().zip(before).map(|(a, b)| a - b);
    Ok(Measured {
        batch_merge_s: None,
        local_s,
        merge_s,
        heap_bytes,
        wire_bytes: wire.iter().map(Vec::len).sum(),
    })
}
