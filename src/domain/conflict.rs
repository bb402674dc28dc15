//! The conflict inbox (DESIGN.md section 15): settlements the merge rules made that a person
//! must see, derived from the merged state, and their resolutions.
//!
//! An item is a pure function of the state (`conflicts`), keyed by the id of the record that
//! raised it, so every replica holding the same ops lists the same items with the same ids,
//! each exactly once, whatever order the ops arrived in. Resolving is a replicated
//! `ConflictResolve` op; concurrent resolutions of one item converge to the last writer by
//! `(hlc, actor)`. Kinds raised: a cancel that met a ready or handed-over order, shrinkage from
//! a count (naming the open orders at risk), a till sale at a price older than HQ's price at
//! that moment, a sale or order for a customer erased before it was made, a sale returned more
//! often than sold, and a delivery or transfer received short or over (`losses`).

mod losses;

pub use losses::{MissingLine, ReturnTaken};

use super::hlc::Hlc;
use super::ids::{ActorId, CustomerId, MotionId, OrderId, SaleId, Sku, StoreId};
use super::op::OpId;
use super::order::{Order, OrderStatus};
use super::state::State;
use serde::Serialize;

/// Longest conflict id, action or note accepted in a `ConflictResolve`.
pub const RESOLVE_TEXT_MAX: usize = 500;

/// What kind of settlement needs a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// A cancel met an order whose bag was ready, or that was handed over.
    CancelMetHandover,
    /// A count found fewer units than expected and no rights covered them.
    Shrinkage,
    /// A till sale at a price older than HQ's price at that moment.
    StalePrice,
    /// A sale or order made for a customer already erased.
    ErasedCustomer,
    /// More units of a sale came back than it sold (returns taken without verification).
    DoubleReturn,
    /// A delivery from HQ received with fewer (or more) units than its notice.
    DeliveryDiscrepancy,
    /// A transfer between stores received with fewer (or more) units than dispatched.
    TransferDiscrepancy,
}

impl ConflictKind {
    /// Every kind, in API order.
    pub const ALL: [ConflictKind; 7] = [
        ConflictKind::CancelMetHandover,
        ConflictKind::Shrinkage,
        ConflictKind::StalePrice,
        ConflictKind::ErasedCustomer,
        ConflictKind::DoubleReturn,
        ConflictKind::DeliveryDiscrepancy,
        ConflictKind::TransferDiscrepancy,
    ];

    /// The API name (`cancel_met_handover`, `shrinkage`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            ConflictKind::CancelMetHandover => "cancel_met_handover",
            ConflictKind::Shrinkage => "shrinkage",
            ConflictKind::StalePrice => "stale_price",
            ConflictKind::ErasedCustomer => "erased_customer",
            ConflictKind::DoubleReturn => "double_return",
            ConflictKind::DeliveryDiscrepancy => "delivery_discrepancy",
            ConflictKind::TransferDiscrepancy => "transfer_discrepancy",
        }
    }

    /// A kind from its API name (`None` for anything else).
    pub fn parse(s: &str) -> Option<ConflictKind> {
        ConflictKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Both sides' facts of one item: who did what, where and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Facts {
    CancelMetHandover {
        order: OrderId,
        customer: CustomerId,
        placed_by: ActorId,
        status: &'static str,
        was_ready: bool,
    },
    Shrinkage {
        sku: Sku,
        counted: u32,
        expected: u32,
        shrinkage: u32,
        counted_by: ActorId,
        /// Open orders at the store with a line of this sku: the ones a manager may cancel.
        orders_at_risk: Vec<OrderId>,
    },
    StalePrice {
        sale: SaleId,
        sku: Sku,
        qty: u32,
        sold_cents: i64,
        hq_cents: i64,
        /// When HQ set the price the sale should have used (ms since the epoch).
        hq_price_at_ms: u64,
        sold_by: ActorId,
    },
    ErasedCustomer {
        customer: CustomerId,
        /// `sale` or `order`.
        record: &'static str,
        id: String,
        erased_at_ms: u64,
        by: ActorId,
    },
    DoubleReturn {
        sale: SaleId,
        sku: Sku,
        sold: u32,
        returned: u64,
        /// Every return of the sale naming the sku, in id order.
        returns: Vec<ReturnTaken>,
    },
    Movement {
        movement: MotionId,
        /// The sending store; `None` for a delivery from HQ's warehouse.
        from: Option<StoreId>,
        reference: String,
        received_by: ActorId,
        sent_at_ms: u64,
        /// Only the lines whose receipt differs from what was sent.
        lines: Vec<MissingLine>,
    },
}

/// A person's decision on an item, replicated as a `ConflictResolve` op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Resolution {
    pub action: String,
    pub note: String,
    /// The staff member (terminal) or HQ account who decided.
    pub by: String,
    /// The replica that issued the resolution.
    pub actor: ActorId,
    /// The store whose item it resolves (scopes the store's digest).
    pub store: StoreId,
    pub at: Hlc,
}

/// One item of the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub id: String,
    pub kind: ConflictKind,
    pub store: StoreId,
    /// When the record that raised it was made.
    pub at: Hlc,
    pub facts: Facts,
    pub actions: Vec<String>,
    pub resolution: Option<Resolution>,
}

impl Conflict {
    /// What happened, in plain English.
    pub fn summary_en(&self) -> String {
        match &self.facts {
            Facts::CancelMetHandover { order, status, .. } if *status == "handed_over" => format!(
                "Order {order} was cancelled, but it had already been handed over: the goods left the store."
            ),
            Facts::CancelMetHandover { order, .. } => format!(
                "Order {order} was cancelled while its bag was ready: put the goods back and tell the customer."
            ),
            Facts::Shrinkage { sku, shrinkage, orders_at_risk, .. } => format!(
                "A count of {sku} found {shrinkage} unit(s) missing; {} open order(s) at risk.",
                orders_at_risk.len()
            ),
            Facts::StalePrice { sale, sku, sold_cents, hq_cents, .. } => format!(
                "Sale {sale} sold {sku} at {} while HQ's price was {}.",
                euros(*sold_cents), euros(*hq_cents)
            ),
            Facts::ErasedCustomer { customer, record, id, .. } => format!(
                "The {record} {id} names customer {customer}, erased before it was made."
            ),
            Facts::DoubleReturn { sale, sku, sold, returned, returns } => format!(
                "Sale {sale} sold {sold} of {sku} but {returned} came back (taken at {}): refunded twice.",
                losses::return_stores(returns)
            ),
            Facts::Movement { movement, lines, .. } => losses::movement_en(self.kind, movement, lines),
        }
    }

    /// What happened, in plain Spanish.
    pub fn summary_es(&self) -> String {
        match &self.facts {
            Facts::CancelMetHandover { order, status, .. } if *status == "handed_over" => format!(
                "El pedido {order} se canceló, pero ya se había entregado: la mercancía salió de la tienda."
            ),
            Facts::CancelMetHandover { order, .. } => format!(
                "El pedido {order} se canceló con la bolsa preparada: devuelve la mercancía y avisa al cliente."
            ),
            Facts::Shrinkage { sku, shrinkage, orders_at_risk, .. } => format!(
                "Un recuento de {sku} encontró {shrinkage} unidad(es) de menos; {} pedido(s) abierto(s) en riesgo.",
                orders_at_risk.len()
            ),
            Facts::StalePrice { sale, sku, sold_cents, hq_cents, .. } => format!(
                "La venta {sale} cobró {sku} a {} cuando el precio de central era {}.",
                euros(*sold_cents), euros(*hq_cents)
            ),
            Facts::ErasedCustomer { customer, record, id, .. } => {
                let record = if *record == "sale" { "la venta" } else { "el pedido" };
                format!("{record} {id} nombra al cliente {customer}, borrado antes de hacerse.")
            }
            Facts::DoubleReturn { sale, sku, sold, returned, returns } => format!(
                "La venta {sale} vendió {sold} de {sku} pero se devolvieron {returned} (en {}): reembolso doble.",
                losses::return_stores(returns)
            ),
            Facts::Movement { movement, lines, .. } => losses::movement_es(self.kind, movement, lines),
        }
    }
}

fn euros(cents: i64) -> String {
    format!("{}.{:02} €", cents / 100, (cents % 100).abs())
}

/// Every item of the inbox, oldest first; only those of `store` when given.
pub fn conflicts(state: &State, store: Option<&StoreId>) -> Vec<Conflict> {
    let mine = |s: &StoreId| store.is_none_or(|want| want == s);
    let mut out = Vec::new();
    for order in state.orders.values().filter(|o| mine(&o.store)) {
        order_conflicts(state, order, &mut out);
    }
    for (op, count) in state.counts.iter().filter(|(_, c)| mine(&c.store)) {
        if count.shrinkage > 0 {
            out.push(shrinkage(state, op, count));
        }
    }
    for sale in state.sales.values().filter(|s| mine(&s.store)) {
        sale_conflicts(state, sale, &mut out);
    }
    losses::raise(state, &mine, &mut out);
    for item in &mut out {
        item.resolution = state.resolutions.get(&item.id).cloned();
    }
    out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    out
}

/// The op an action carries out besides recording the resolution: `cancel_order:<id>` on a
/// shrinkage item cancels that order (its store then returns the units). Submit it after the
/// `ConflictResolve`, since once cancelled the order is no longer offered.
pub fn follow_up(store: &StoreId, action: &str) -> Option<super::op::Payload> {
    let order = OrderId::parse(action.strip_prefix("cancel_order:")?).ok()?;
    Some(super::op::Payload::OrderCancel {
        order_id: order,
        store: store.clone(),
        kind: super::op::CancelKind::Cancelled,
    })
}

/// Whether applying `payload` can raise or resolve an item: pages recount the inbox only then.
pub fn may_touch_inbox(payload: &super::op::Payload) -> bool {
    use super::op::Payload as P;
    matches!(
        payload,
        P::OrderCancel { .. }
            | P::OrderAdvance { .. }
            | P::OrderPlace { .. }
            | P::CountRecorded { .. }
            | P::CatalogPut { .. }
            | P::Sale { .. }
            | P::CustomerErase { .. }
            | P::ConflictResolve { .. }
            | P::Return { .. }
            | P::ReturnRightsGranted { .. }
            | P::ShipmentNotice { .. }
            | P::ShipmentReceive { .. }
            | P::TransferDispatch { .. }
            | P::TransferReceive { .. }
    )
}

/// The item with this id, if the state raises it.
pub fn find(state: &State, id: &str) -> Option<Conflict> {
    conflicts(state, None).into_iter().find(|c| c.id == id)
}

fn cancel_met_handover(order: &Order) -> Conflict {
    let handed = order.status == OrderStatus::HandedOver;
    Conflict {
        id: format!("order:{}", order.id),
        kind: ConflictKind::CancelMetHandover,
        store: order.store.clone(),
        at: order.placed_hlc,
        facts: Facts::CancelMetHandover {
            order: order.id.clone(),
            customer: order.customer.clone(),
            placed_by: order.placed_by.clone(),
            status: order.status.as_str(),
            was_ready: order.was_ready,
        },
        actions: if handed {
            vec!["confirm_goods_left".into()]
        } else {
            vec!["confirm_restocked".into()]
        },
        resolution: None,
    }
}

fn shrinkage(state: &State, op: &OpId, count: &super::state::CountRecord) -> Conflict {
    let orders_at_risk: Vec<OrderId> = state
        .orders
        .values()
        .filter(|o| o.store == count.store && o.status.is_open())
        .filter(|o| o.lines.contains_key(&count.sku))
        .map(|o| o.id.clone())
        .collect();
    let mut actions: Vec<String> = orders_at_risk
        .iter()
        .map(|o| format!("cancel_order:{o}"))
        .collect();
    actions.push("accept_loss".into());
    Conflict {
        id: format!("count:{}:{}", op.actor, op.seq),
        kind: ConflictKind::Shrinkage,
        store: count.store.clone(),
        at: count.at,
        facts: Facts::Shrinkage {
            sku: count.sku.clone(),
            counted: count.counted,
            expected: count.expected,
            shrinkage: count.shrinkage,
            counted_by: op.actor.clone(),
            orders_at_risk,
        },
        actions,
        resolution: None,
    }
}

/// Whether every conflict `sale` raises is resolved: only then may it leave memory (`history`),
/// since the inbox lists the conflicts of the sales in memory.
pub(crate) fn sale_conflicts_resolved(state: &State, sale: &super::state::SaleRecord) -> bool {
    let mut out = Vec::new();
    sale_conflicts(state, sale, &mut out);
    out.iter().all(|c| state.resolutions.contains_key(&c.id))
}

/// Whether every conflict `order` raises is resolved: only then may it leave memory
/// (`history`), since the inbox lists the conflicts of the orders in memory.
pub(crate) fn order_conflicts_resolved(state: &State, order: &super::order::Order) -> bool {
    let mut out = Vec::new();
    order_conflicts(state, order, &mut out);
    out.iter().all(|c| state.resolutions.contains_key(&c.id))
}

fn order_conflicts(state: &State, order: &super::order::Order, out: &mut Vec<Conflict>) {
    if order.conflict() {
        out.push(cancel_met_handover(order));
    }
    if let Some(erased) = erased_before(state, &order.customer, order.placed_hlc) {
        out.push(Conflict {
            id: format!("erased-order:{}", order.id),
            kind: ConflictKind::ErasedCustomer,
            store: order.store.clone(),
            at: order.placed_hlc,
            facts: Facts::ErasedCustomer {
                customer: order.customer.clone(),
                record: "order",
                id: order.id.as_str().to_string(),
                erased_at_ms: erased.wall_ms(),
                by: order.placed_by.clone(),
            },
            actions: vec!["acknowledge".into()],
            resolution: None,
        });
    }
}

fn sale_conflicts(state: &State, sale: &super::state::SaleRecord, out: &mut Vec<Conflict>) {
    let by = sale.store.actor();
    for line in &sale.lines {
        let Some((set_at, hq_cents)) = state.price_at(&line.sku, sale.at) else {
            continue;
        };
        if hq_cents != line.unit_cents {
            out.push(Conflict {
                id: format!("price:{}:{}", sale.id, line.sku),
                kind: ConflictKind::StalePrice,
                store: sale.store.clone(),
                at: sale.at,
                facts: Facts::StalePrice {
                    sale: sale.id.clone(),
                    sku: line.sku.clone(),
                    qty: line.qty,
                    sold_cents: line.unit_cents,
                    hq_cents,
                    hq_price_at_ms: set_at.wall_ms(),
                    sold_by: by.clone(),
                },
                actions: vec!["accept_price".into(), "note_recovery".into()],
                resolution: None,
            });
        }
    }
    let Some(customer) = &sale.customer else {
        return;
    };
    if let Some(erased) = erased_before(state, customer, sale.at) {
        out.push(Conflict {
            id: format!("erased-sale:{}", sale.id),
            kind: ConflictKind::ErasedCustomer,
            store: sale.store.clone(),
            at: sale.at,
            facts: Facts::ErasedCustomer {
                customer: customer.clone(),
                record: "sale",
                id: sale.id.as_str().to_string(),
                erased_at_ms: erased.wall_ms(),
                by,
            },
            actions: vec!["acknowledge".into()],
            resolution: None,
        });
    }
}

/// When the customer was erased, if that was before `at`.
fn erased_before(state: &State, customer: &CustomerId, at: Hlc) -> Option<Hlc> {
    state.erased_at.get(customer).copied().filter(|e| *e < at)
}
