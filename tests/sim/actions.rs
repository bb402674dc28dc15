//! What staff, HQ and the online shop do between syncs, chosen by the seeded scheduler.
//! Every action goes through the replica's own validation; refusals (not enough stock, an
//! order that moved on) are expected and counted.

use super::World;
use std::collections::BTreeMap;
use storenode::domain::count::plan_count;
use storenode::domain::ids::{Category, PromotionId};
use storenode::domain::op::{
    Advance, CancelKind, OrderLine, ProfilePatch, ReceiveReason, SaleLine, Tender,
};
use storenode::domain::order::OrderStatus;
use storenode::domain::returns::{plan_return, plan_rights_request, ReturnAsk, ReturnPolicy};
use storenode::domain::till::{price, Promotion, PromotionKind, TillLine};
use storenode::domain::{CustomerId, Ean13, Op, OrderId, Payload, ReturnId, SaleId, Sku, StoreId};

const SKUS: [(&str, &str); 4] = [
    ("SKU-ACEITE", "4006381333931"),
    ("SKU-JAMON", "8410000000016"),
    ("SKU-TURRON", "8412345678905"),
    ("SKU-CAFE", "5901234123457"),
];
const CUSTOMERS: [&str; 4] = ["C-0001", "C-0002", "C-0003", "C-0004"];

fn sku(i: u64) -> Sku {
    Sku::parse(SKUS[i as usize % SKUS.len()].0).expect("sku")
}
fn customer(i: u64) -> CustomerId {
    CustomerId::parse(CUSTOMERS[i as usize % CUSTOMERS.len()]).expect("customer")
}

/// HQ's catalog, provisioned on every node before the run.
pub fn catalog() -> Vec<Payload> {
    SKUS.iter()
        .enumerate()
        .map(|(i, (s, e))| Payload::CatalogPut {
            sku: Sku::parse(s).expect("sku"),
            ean: Ean13::parse(e).expect("ean"),
            name: format!("Producto {i} señal"),
            price_cents: 150 + 100 * i as i64,
            vat_bp: 1000,
        })
        .collect()
}

/// One local action at node `who`.
pub fn local(w: &mut World, who: usize) {
    let payloads = if who == 0 {
        hq_action(w)
    } else {
        store_action(w, who)
    };
    if let Some(p) = payloads {
        w.submit(who, p);
    }
}

fn next_id(w: &mut World, prefix: &str) -> String {
    w.next_id += 1;
    format!("{prefix}-{}", w.next_id)
}

/// Open orders of `store` (any store when `None`) as the acting node sees them.
fn open_orders(
    w: &World,
    who: usize,
    store: Option<&StoreId>,
) -> Vec<(OrderId, StoreId, OrderStatus)> {
    w.nodes[who].backend.read(|r| {
        r.state()
            .orders
            .values()
            .filter(|o| store.is_none_or(|s| &o.store == s) && o.status.is_open())
            .map(|o| (o.id.clone(), o.store.clone(), o.status))
            .collect()
    })
}

/// The three most recently placed open orders `who` knows (of `store`, if given): customers
/// cancel soon after ordering, not in proportion to how long an order stays open (a shipped
/// order's wait for its transfer would otherwise make it the likeliest one to go).
fn recent_open_orders(
    w: &World,
    who: usize,
    store: Option<&StoreId>,
) -> Vec<(OrderId, StoreId, OrderStatus)> {
    let mut open = open_orders(w, who, store);
    let placed = |id: &OrderId| {
        w.nodes[who]
            .backend
            .read(|r| r.state().orders.get(id).map(|o| o.placed_hlc))
    };
    open.sort_by_key(|(id, _, _)| std::cmp::Reverse(placed(id)));
    open.truncate(3);
    open
}

fn place(w: &mut World, store: StoreId) -> Payload {
    let n_lines = w.rng.range(1, 2);
    let lines = (0..n_lines)
        .map(|_| OrderLine {
            sku: sku(w.rng.below(4)),
            qty: w.rng.range(1, 2) as u32,
        })
        .collect();
    Payload::OrderPlace {
        order_id: OrderId::parse(&next_id(w, "O")).expect("order id"),
        store,
        customer: customer(w.rng.below(4)),
        lines,
        pickup_code: "K7P2QX".into(),
        placed_at_ms: w.now_ms,
    }
}

fn cart_edit(w: &mut World, who: usize) -> Option<Payload> {
    let c = customer(w.rng.below(4));
    let k = sku(w.rng.below(4));
    Some(match w.rng.below(4) {
        0 => {
            let observed = w.nodes[who]
                .backend
                .read(|r| r.state().carts.get(&c).map(|cart| cart.observed(&k)))?;
            Payload::CartRemove {
                customer: c,
                sku: k,
                observed,
            }
        }
        1 => Payload::CustomerUpdate {
            customer: c,
            patch: ProfilePatch {
                phone: Some(format!("+34 600 {:06}", w.rng.below(1_000_000))),
                ..Default::default()
            },
        },
        _ => Payload::CartSet {
            customer: c,
            sku: k,
            qty: w.rng.range(1, 3) as u32,
        },
    })
}

fn hq_action(w: &mut World) -> Option<Vec<Payload>> {
    let stores = w.stores().len() as u64;
    let store = w.nodes[1 + w.rng.below(stores) as usize]
        .actor
        .store()
        .expect("store");
    Some(vec![match w.rng.below(100) {
        0..=39 => {
            let placed = place(w, store);
            super::motion::hq_order(w, placed)
        }
        40..=54 => {
            let open = recent_open_orders(w, 0, None);
            let (order_id, store, _) = w.rng.pick(&open)?.clone();
            let kind = if w.rng.chance(25) {
                CancelKind::Expired
            } else {
                CancelKind::Cancelled
            };
            Payload::OrderCancel {
                order_id,
                store,
                kind,
            }
        }
        55..=62 => {
            let mut put = catalog().swap_remove(w.rng.below(4) as usize);
            if let Payload::CatalogPut { price_cents, .. } = &mut put {
                *price_cents += w.rng.below(500) as i64;
            }
            put
        }
        63..=64 => Payload::CustomerErase {
            customer: customer(w.rng.below(4)),
        },
        65..=67 => promotion(w),
        68 => categorise(w),
        69..=76 => super::motion::notice(w, store, sku),
        _ => cart_edit(w, 0)?,
    }])
}

fn store_action(w: &mut World, who: usize) -> Option<Vec<Payload>> {
    let store = w.nodes[who].actor.store().expect("store");
    // Orders shipped between stores wait on people at both ends: staff see them first.
    if w.rng.chance(40) {
        if let Some(step) = super::motion::ship_step(w, who) {
            return Some(step);
        }
    }
    Some(match w.rng.below(100) {
        0..=11 => super::motion::receive(w, who)?,
        12..=16 => vec![Payload::StockReceive {
            store,
            sku: sku(w.rng.below(4)),
            qty: w.rng.range(1, 8) as u32,
            reason: ReceiveReason::Delivery,
        }],
        17..=39 => sale(w, who, store),
        40..=47 => vec![place(w, store)],
        48..=67 => vec![advance(w, who, &store)?],
        68..=71 => {
            let open = recent_open_orders(w, who, Some(&store));
            let (order_id, store, _) = w.rng.pick(&open)?.clone();
            vec![Payload::OrderCancel {
                order_id,
                store,
                kind: CancelKind::Cancelled,
            }]
        }
        72..=77 => {
            let k = sku(w.rng.below(4));
            let on_hand = w.nodes[who].backend.read(|r| r.state().on_hand(&store, &k));
            let counted = (on_hand + w.rng.range(0, 5) as i64 - 3).max(0) as u32;
            w.nodes[who]
                .backend
                .read(|r| plan_count(r.state(), &store, &k, counted))
        }
        78..=82 => vec![Payload::CustomerFollow {
            customer: customer(w.rng.below(4)),
            store,
        }],
        83..=92 => vec![give_back(w, who, store)?],
        93..=96 => super::motion::dispatch(w, who, sku)?,
        _ => vec![cart_edit(w, who)?],
    })
}

/// A till sale; two in five with HQ's promotions and, now and then, manual line and ticket
/// discounts, recorded by a `SalePriced` just before the sale as the terminal does.
fn sale(w: &mut World, who: usize, store: StoreId) -> Vec<Payload> {
    let n_lines = w.rng.range(1, 2);
    let lines = (0..n_lines)
        .map(|_| {
            let k = sku(w.rng.below(4));
            let price = w.nodes[who]
                .backend
                .read(|r| r.state().catalog.get(&k).map_or(100, |p| p.price_cents));
            SaleLine {
                sku: k,
                qty: w.rng.range(1, 3) as u32,
                unit_cents: price,
                vat_bp: 1000,
            }
        })
        .collect();
    let customer = w.rng.chance(30).then(|| customer(w.rng.below(4)));
    let sale_id = SaleId::parse(&next_id(w, "S")).expect("sale id");
    let mut out = Vec::with_capacity(2);
    let distinct = |lines: &Vec<SaleLine>| lines.len() < 2 || lines[0].sku != lines[1].sku;
    if distinct(&lines) && w.rng.chance(40) {
        let mut till = Vec::with_capacity(lines.len());
        for l in &lines {
            let category = w.nodes[who]
                .backend
                .read(|r| r.state().catalog.category(&l.sku).cloned());
            till.push(TillLine {
                sku: l.sku.clone(),
                qty: l.qty,
                unit_cents: l.unit_cents,
                vat_bp: l.vat_bp,
                manual_bp: if w.rng.chance(30) {
                    w.rng.below(3_001) as u32
                } else {
                    0
                },
                category,
            });
        }
        let ticket_bp = if w.rng.chance(20) {
            w.rng.below(1_001) as u32
        } else {
            0
        };
        let now = w.now_ms;
        let pricing = w.nodes[who]
            .backend
            .read(|r| price(&r.state().promotions, now, &till, ticket_bp));
        if !pricing.is_empty() {
            out.push(Payload::SalePriced {
                store: store.clone(),
                sale_id: sale_id.clone(),
                pricing,
            });
        }
    }
    out.push(Payload::Sale {
        store,
        sale_id,
        lines,
        tender: if w.rng.chance(50) {
            Tender::Card
        } else {
            Tender::Cash
        },
        customer,
    });
    out
}

/// The simulation's two categories.
fn category(i: u64) -> Category {
    Category::parse(["bebidas", "drogueria"][(i % 2) as usize]).expect("category")
}

/// HQ puts a sku in a category, or (one time in five) takes it out of any.
fn categorise(w: &mut World) -> Payload {
    let sku = sku(w.rng.below(4));
    let category = (!w.rng.chance(20)).then(|| category(w.rng.below(2)));
    Payload::CatalogCategory { sku, category }
}

/// HQ authors a promotion on one sku or (one time in three) on a category, valid around now.
fn promotion(w: &mut World) -> Payload {
    let kind = match w.rng.below(3) {
        0 => PromotionKind::Percent {
            bp: 500 + w.rng.below(4_000) as u32,
        },
        1 => PromotionKind::NForM { n: 3, m: 2 },
        _ => PromotionKind::SecondUnit { bp: 5_000 },
    };
    let starts_ms = w.now_ms.saturating_sub(w.rng.below(3_600_000));
    let (skus, categories) = if w.rng.chance(33) {
        (vec![], vec![category(w.rng.below(2))])
    } else {
        (vec![sku(w.rng.below(4))], vec![])
    };
    Payload::PromotionSet {
        promotion: Promotion {
            id: PromotionId::parse(&format!("P-{}", w.rng.below(5))).expect("promotion id"),
            name: "sim".into(),
            kind,
            skus,
            starts_ms,
            ends_ms: starts_ms + 1 + w.rng.below(7_200_000),
            priority: w.rng.below(3) as u32,
            categories,
        },
    }
}

/// A receipt a customer brings back: the sale (or order), its store, its (sku, qty) lines.
type Receipt = (SaleId, StoreId, Vec<(Sku, u32)>);

/// Unverified returns are taken up to this refund (a manager's limit).
const UNVERIFIED_MAX_CENTS: i64 = 2_000;

/// A customer brings back units of a sale (or collected order) made anywhere: the receipt
/// names it, so it is picked from HQ's record of every sale. At the holder of its return
/// rights the return is exact; elsewhere the store either asks for the rights or (a manager,
/// within the limit) takes it unverified, as a store with its link down must.
fn give_back(w: &mut World, who: usize, store: StoreId) -> Option<Payload> {
    let sales: Vec<Receipt> = w.nodes[0].backend.read(|r| {
        let s = r.state();
        let mut out: Vec<_> = s
            .sales
            .values()
            .map(|x| {
                let lines = x.lines.iter().map(|l| (l.sku.clone(), l.qty)).collect();
                (x.id.clone(), x.store.clone(), lines)
            })
            .collect();
        out.extend(
            s.orders
                .values()
                .filter(|o| o.status == OrderStatus::HandedOver)
                .filter_map(|o| {
                    let lines = o.lines.iter().map(|(k, l)| (k.clone(), l.qty)).collect();
                    Some((SaleId::parse(o.id.as_str()).ok()?, o.store.clone(), lines))
                }),
        );
        out
    });
    let (sale, seller, lines) = w.rng.pick(&sales)?.clone();
    let (sku, sold) = w.rng.pick(&lines)?.clone();
    let holder = w.nodes[who]
        .backend
        .read(|r| r.state().return_holder(&sale));
    if holder.as_ref() != Some(&store) && w.rng.chance(50) {
        return Some(
            w.nodes[who]
                .backend
                .read(|r| plan_rights_request(r.state(), &store, &sale, Some(seller.clone()))),
        );
    }
    let ask = ReturnAsk {
        return_id: ReturnId::parse(&next_id(w, "R")).ok()?,
        sale,
        sale_store: Some(seller),
        lines: vec![(
            sku,
            w.rng.range(1, u64::from(sold)) as u32,
            w.rng.chance(80),
        )],
        tender: Tender::Cash,
        manager: w.rng.chance(70),
        now_ms: w.now_ms,
    };
    let policy = ReturnPolicy {
        window_ms: 365 * 86_400_000,
        unverified_max_cents: UNVERIFIED_MAX_CENTS,
    };
    match w.nodes[who]
        .backend
        .read(|r| plan_return(r.state(), &store, &policy, ask))
    {
        Ok(p) => Some(p),
        Err(_) => {
            w.stats.refused += 1;
            None
        }
    }
}

/// The next step of a random open order of the store: start, pick a line, ready, hand over.
fn advance(w: &mut World, who: usize, store: &StoreId) -> Option<Payload> {
    // A shipped order whose units have not all arrived cannot be picked yet: staff work on
    // the orders they can finish.
    let waiting: Vec<OrderId> = w.nodes[who].backend.read(|r| {
        r.state()
            .orders
            .values()
            .filter(|o| &o.store == store && !o.awaiting().is_empty())
            .map(|o| o.id.clone())
            .collect()
    });
    let open: Vec<_> = open_orders(w, who, Some(store))
        .into_iter()
        .filter(|(id, _, _)| !waiting.contains(id))
        .collect();
    let (order_id, store, status) = w.rng.pick(&open)?.clone();
    let unpicked = w.nodes[who].backend.read(|r| {
        r.state().orders.get(&order_id).and_then(|o| {
            o.lines
                .iter()
                .find(|(_, l)| l.picked < l.qty)
                .map(|(k, l)| (k.clone(), l.picked + 1))
        })
    });
    let to = match (status, unpicked) {
        (OrderStatus::Placed, _) => Advance::Picking,
        (OrderStatus::Picking, Some((sku, picked))) => {
            return Some(Payload::OrderPick {
                order_id,
                store,
                sku,
                picked,
            })
        }
        (OrderStatus::Picking, None) => Advance::Ready,
        _ => Advance::HandedOver,
    };
    Some(Payload::OrderAdvance {
        order_id,
        store,
        to,
    })
}

/// Add an op's units to (into, out) per (store, sku): receipts in; sales, reservations and
/// consumption out. Released orders are added back by the caller from the merged state.
pub fn count_flow(op: &Op, flow: &mut BTreeMap<(String, String), (i64, i64)>) {
    let mut add = |store: &StoreId, sku: &Sku, into: u32, out: u32| {
        let e = flow
            .entry((store.to_string(), sku.to_string()))
            .or_default();
        e.0 += i64::from(into);
        e.1 += i64::from(out);
    };
    match &op.payload {
        Payload::StockReceive {
            store, sku, qty, ..
        } => add(store, sku, *qty, 0),
        Payload::StockConsume {
            store, sku, qty, ..
        } => add(store, sku, 0, *qty),
        Payload::Sale { store, lines, .. } => {
            for l in lines {
                add(store, &l.sku, 0, l.qty);
            }
        }
        Payload::OrderPlace { store, lines, .. } => {
            for l in lines {
                add(store, &l.sku, 0, l.qty);
            }
        }
        // In motion: out of the sender at dispatch (a ship-to-store order's from HQ's rights
        // there), good units into the receiver at receipt, out again when set aside for the
        // order.
        Payload::TransferDispatch { store, lines, .. }
        | Payload::OrderShipToStore {
            from: store, lines, ..
        }
        | Payload::OrderArrived { store, lines, .. } => {
            for l in lines {
                add(store, &l.sku, 0, l.qty);
            }
        }
        Payload::ShipmentReceive { store, lines, .. }
        | Payload::TransferReceive { store, lines, .. } => {
            // Only good units touch the counter (a damaged-only line creates none).
            for l in lines.iter().filter(|l| l.received > l.damaged) {
                add(store, &l.sku, l.received - l.damaged, 0);
            }
        }
        // Restocked returns come in at the receiving store; damaged ones never enter.
        Payload::Return { store, lines, .. } => {
            for l in lines.iter().filter(|l| l.restock) {
                add(store, &l.sku, l.qty, 0);
            }
        }
        _ => {}
    }
}
