//! Why the domain refuses an operation. Each variant names the value at fault.

use super::ids::{
    ActorId, CashSessionId, CustomerId, MotionId, OrderId, ReturnId, SaleId, Sku, StoreId,
};

/// A refused operation: nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The sku is not in the catalog.
    #[error("unknown sku {0}")]
    UnknownSku(Sku),
    /// The acting replica holds fewer rights than the op would consume or transfer.
    #[error(
        "insufficient stock for {sku} at {store}: requested {requested}, available {available}"
    )]
    InsufficientStock {
        store: StoreId,
        sku: Sku,
        requested: u64,
        available: i64,
    },
    /// A ship-to-store order no single store can fulfil, though HQ's rights across stores
    /// would cover every line: refused, not split (see `ship_to_store`).
    #[error(
        "no single store can fulfil this order for {}; {}: {} here; split it by store",
        .0.store, .0.sku, .0.available
    )]
    NoSingleSource(Box<SplitRefusal>),
    /// A quantity outside its allowed range.
    #[error("invalid quantity {qty} for {field}: {reason}")]
    InvalidQty {
        field: &'static str,
        qty: u64,
        reason: &'static str,
    },
    /// A field that failed validation.
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// The actor may not author this kind of op (e.g. a store editing the catalog).
    #[error("actor {actor} may not author {kind}")]
    Unauthorized { actor: ActorId, kind: &'static str },
    /// An op of the local actor that does not follow its last seq (a lost or replayed write).
    #[error("seq gap for local actor {actor}: got {got}, expected {expected}")]
    SeqGap {
        actor: ActorId,
        got: u64,
        expected: u64,
    },
    #[error("unknown order {0}")]
    UnknownOrder(OrderId),
    #[error("order {0} already exists")]
    DuplicateOrder(OrderId),
    #[error("sale {0} already exists")]
    DuplicateSale(SaleId),
    #[error("unknown customer {0}")]
    UnknownCustomer(CustomerId),
    #[error("customer {0} was erased")]
    CustomerErased(CustomerId),
    /// The scanned sku is not a line of the order.
    #[error("{sku} is not in order {order}")]
    NotInOrder { order: OrderId, sku: Sku },
    /// The line is already fully picked.
    #[error("{sku} of order {order} is already picked ({picked} of {qty})")]
    AlreadyPicked {
        order: OrderId,
        sku: Sku,
        picked: u32,
        qty: u32,
    },
    /// Ready needs every line picked.
    #[error("order {0} is not fully picked")]
    NotPicked(OrderId),
    #[error("order {0} was already handed over")]
    AlreadyHandedOver(OrderId),
    /// The order is cancelled or expired.
    #[error("order {order} is {status}")]
    OrderClosed {
        order: OrderId,
        status: &'static str,
    },
    /// The order is in a state from which this step is not allowed.
    #[error("order {order} is {status}: cannot {step}")]
    BadTransition {
        order: OrderId,
        status: &'static str,
        step: &'static str,
    },
    /// No shipment notice or transfer dispatch with this id is known here.
    #[error("unknown {kind} {id}")]
    UnknownMovement { kind: &'static str, id: MotionId },
    /// A shipment or transfer with this id already exists.
    #[error("{kind} {id} already exists")]
    DuplicateMovement { kind: &'static str, id: MotionId },
    /// The shipment or transfer was already received (receiving twice is refused).
    #[error("{kind} {id} was already received")]
    AlreadyReceived { kind: &'static str, id: MotionId },
    /// The shipment or transfer was sent to another store.
    #[error("{kind} {id} was sent to {to}, not to {store}")]
    WrongStore {
        kind: &'static str,
        id: MotionId,
        to: StoreId,
        store: StoreId,
    },
    /// More units (or a sku not sent) received without saying it is an over-delivery.
    #[error(
        "{sku}: received {received} but {sent} were sent; say over_delivery to accept extra units"
    )]
    OverDelivery { sku: Sku, sent: u32, received: u32 },
    /// A transfer whose destination is the sending store itself.
    #[error("a transfer from {0} to itself")]
    SameStore(StoreId),
    /// No sale or handed-over order with this id is known here.
    #[error("unknown sale {0}")]
    UnknownSale(SaleId),
    /// The returned sku was not sold in that sale.
    #[error("{sku} is not in sale {sale}")]
    NotInSale { sale: SaleId, sku: Sku },
    /// More units than are left to return.
    #[error("{sku} of sale {sale}: only {returnable} left to return")]
    AlreadyReturned {
        sale: SaleId,
        sku: Sku,
        returnable: u32,
    },
    /// The sale is older than the return window.
    #[error("sale {sale} is past the {days}-day return window")]
    ReturnWindowClosed { sale: SaleId, days: u64 },
    /// Only a manager may take this return.
    #[error("a manager must take this return: {reason}")]
    ManagerRequired { reason: String },
    /// This replica does not hold the sale's return rights.
    #[error("this store does not hold the return rights of {0}")]
    NotReturnHolder(SaleId),
    #[error("return {0} already exists")]
    DuplicateReturn(ReturnId),
    /// The store's cash drawer already has an open session.
    #[error("cash session {0} is open; close it first")]
    CashSessionOpen(CashSessionId),
    /// The store's cash drawer has no open session (or not this one).
    #[error("no open cash session")]
    NoCashSession,
    /// The sender kept this ship-to-store transfer's units (its order was cancelled before
    /// they left): nothing travels, nothing can be received.
    #[error("transfer {0} was withdrawn by its sender: its order was cancelled before dispatch")]
    Withdrawn(MotionId),
    /// The ship-to-store transfer already left its sender (or was withdrawn).
    #[error("transfer {0} was already dispatched or withdrawn")]
    AlreadyDispatched(MotionId),
    /// A ship-to-store order's units have not arrived at its store yet (picking waits).
    #[error("order {order}: only {arrived} of {sku} arrived by transfer so far")]
    NotArrived {
        order: OrderId,
        sku: Sku,
        arrived: u32,
    },
}

/// The facts of a `NoSingleSource` refusal (boxed, so every `DomainError` stays small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRefusal {
    /// The pickup store and its own shortage, as `InsufficientStock` names them.
    pub store: StoreId,
    pub sku: Sku,
    pub requested: u64,
    pub available: i64,
    /// Per sku, the stores where HQ holds rights and how many, so the shop can split it.
    pub sources: Vec<(Sku, Vec<(StoreId, i64)>)>,
}
