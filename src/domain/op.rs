//! The operation envelope `{actor, seq, hlc, payload}` and every payload the chain exchanges.
//! (Over 500 lines: the `Payload` enum is the on-disk and wire format, append-only, and is
//! kept in one file so its variant order is visible in one place.)
//!
//! An op is immutable once issued. `(actor, seq)` identifies it everywhere: in the op log, on
//! the wire, and as the dot of cart entries. Payloads carry only validated domain types.

use super::fiscal::InvoiceRecord;
use super::hlc::Hlc;
use super::ids::{
    ActorId, CashSessionId, Category, CustomerId, Ean13, MotionId, OrderId, ReturnId, SaleId, Sku,
    StoreId, TillId,
};
use super::till::{CashMoveKind, Promotion, SalePricing, SkuPromotion, TillDoc};
use serde::{Deserialize, Serialize};

/// Globally unique id of an op: its author and that author's sequence number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId {
    pub actor: ActorId,
    pub seq: u64,
}

/// An operation as stored in the log and sent to peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub actor: ActorId,
    pub seq: u64,
    pub hlc: Hlc,
    pub payload: Payload,
}

impl Op {
    pub fn id(&self) -> OpId {
        OpId {
            actor: self.actor.clone(),
            seq: self.seq,
        }
    }
}

/// Why units were created at a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReceiveReason {
    Delivery,
    CountUp,
    CustomerReturn,
}

/// Why units were consumed outside a sale or an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConsumeReason {
    CountDown,
    Damaged,
    /// Units a low count found missing, taken from rights that came back later.
    ShrinkageCovered,
}

/// How a till sale was paid. Only the tender type and amount are ever recorded: no card data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Tender {
    Cash,
    Card,
}

/// Pickup order lifecycle states that are reached by advancing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Advance {
    Picking,
    Ready,
    HandedOver,
}

/// The two ways an order ends without being collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CancelKind {
    Cancelled,
    Expired,
}

/// Contact channels a customer consents to separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
}

impl Channel {
    /// Every channel, in API order.
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Whatsapp];

    /// The API name: `email`, `sms`, `whatsapp`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
        }
    }

    /// A channel from its API name (`None` for anything else).
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A line of a till sale, priced at the moment of sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleLine {
    pub sku: Sku,
    pub qty: u32,
    pub unit_cents: i64,
    pub vat_bp: u32,
}

/// A line of a pickup order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: Sku,
    pub qty: u32,
}

/// A line as received from a shipment or transfer: `received` units arrived, of which
/// `damaged` are not sellable (`damaged <= received`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptLine {
    pub sku: Sku,
    pub received: u32,
    pub damaged: u32,
}

/// A returned line: `refund_cents` is what was paid for these units (VAT included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLine {
    pub sku: Sku,
    pub qty: u32,
    /// Back on the receiving store's shelf (`true`) or damaged and written off.
    pub restock: bool,
    pub refund_cents: i64,
}

/// What a sale (or a handed-over order) sold, as its return-rights holder hands it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoldSnapshot {
    /// The store that sold it (or handed the order over).
    pub store: StoreId,
    pub lines: Vec<SaleLine>,
    pub at_ms: u64,
    pub tender: Tender,
    pub customer: Option<CustomerId>,
    /// The invoice the sale was issued under, for the rectifying one a return issues.
    pub invoice: Option<SoldInvoice>,
}

/// A sale's invoice as a grant of return rights carries it (DESIGN.md §13: a return's R5
/// names the invoice it corrects, also at another store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoldInvoice {
    pub numserie: String,
    pub fecha: String,
    pub tipo: super::fiscal::InvoiceType,
    pub importe_cents: i64,
    pub customer_tax_id: Option<String>,
}

impl SoldInvoice {
    pub fn of(i: &super::fiscal::IssuedInvoice) -> SoldInvoice {
        SoldInvoice {
            numserie: i.numserie.clone(),
            fecha: i.fecha.clone(),
            tipo: i.tipo,
            importe_cents: i.importe_cents,
            customer_tax_id: i.customer_tax_id.clone(),
        }
    }

    /// As the fiscal chain's builders take it (its position in the seller's chain unknown).
    pub fn issued(&self) -> super::fiscal::IssuedInvoice {
        super::fiscal::IssuedInvoice {
            position: 0,
            numserie: self.numserie.clone(),
            fecha: self.fecha.clone(),
            tipo: self.tipo,
            importe_cents: self.importe_cents,
            customer_tax_id: self.customer_tax_id.clone(),
        }
    }
}

/// Customer profile fields, each a last-writer-wins register.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfilePatch {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub loyalty_card: Option<String>,
}

/// What an operation does. See DESIGN.md section 3 for the merge rule of each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// HQ sets a catalog entry (last writer wins).
    CatalogPut {
        sku: Sku,
        ean: Ean13,
        name: String,
        price_cents: i64,
        vat_bp: u32,
    },
    /// Units created at the acting replica: `R[actor][actor] += qty`.
    StockReceive {
        store: StoreId,
        sku: Sku,
        qty: u32,
        reason: ReceiveReason,
    },
    /// Rights handed from the acting replica to `to`: `R[actor][to] += qty`.
    StockTransfer {
        store: StoreId,
        sku: Sku,
        to: ActorId,
        qty: u32,
    },
    /// Units consumed outside sales and orders: `U[actor] += qty`.
    StockConsume {
        store: StoreId,
        sku: Sku,
        qty: u32,
        reason: ConsumeReason,
    },
    /// A physical count, recorded for the manager; `shrinkage` is what no rights could cover.
    CountRecorded {
        store: StoreId,
        sku: Sku,
        counted: u32,
        expected: u32,
        shrinkage: u32,
    },
    /// The store asks HQ to hand back up to `qty` unreserved rights (after a low count).
    RightsReturnRequested { store: StoreId, sku: Sku, qty: u32 },
    /// A till sale: consumes each line from the store's rights.
    Sale {
        store: StoreId,
        sale_id: SaleId,
        lines: Vec<SaleLine>,
        tender: Tender,
        customer: Option<CustomerId>,
    },
    /// A pickup order: its units are consumed from the acting replica's rights at placement.
    OrderPlace {
        order_id: OrderId,
        store: StoreId,
        customer: CustomerId,
        lines: Vec<OrderLine>,
        pickup_code: String,
        placed_at_ms: u64,
    },
    /// Move an order forward in its lifecycle (lattice: merge keeps the highest).
    OrderAdvance {
        order_id: OrderId,
        store: StoreId,
        to: Advance,
    },
    /// A line's picked quantity (merge keeps the maximum).
    OrderPick {
        order_id: OrderId,
        store: StoreId,
        sku: Sku,
        picked: u32,
    },
    /// Cancel or expire an order. Only the order's store returns its units (see `OrderRelease`).
    OrderCancel {
        order_id: OrderId,
        store: StoreId,
        kind: CancelKind,
    },
    /// The store returns the units of an order that HQ cancelled: `R[store][store] += qty`.
    OrderRelease { order_id: OrderId, store: StoreId },
    /// Set a cart line's quantity; this op's id is the line's dot.
    CartSet {
        customer: CustomerId,
        sku: Sku,
        qty: u32,
    },
    /// Remove the cart line dots this replica has observed (an unobserved add survives).
    CartRemove {
        customer: CustomerId,
        sku: Sku,
        observed: Vec<OpId>,
    },
    /// Update profile fields (each field is last writer wins).
    CustomerUpdate {
        customer: CustomerId,
        patch: ProfilePatch,
    },
    /// Record consent for one channel, with where it was given.
    ConsentSet {
        customer: CustomerId,
        channel: Channel,
        granted: bool,
        source: String,
    },
    /// Erase the customer's personal data everywhere; only anonymous totals stay.
    CustomerErase { customer: CustomerId },
    /// A store brings a customer into its scope (a cart looked up at its counter).
    CustomerFollow {
        customer: CustomerId,
        store: StoreId,
    },
    /// The next record of the store's VERI*FACTU chain (DESIGN.md section 13): issued with
    /// the sale or return it invoices, in the same transaction.
    Invoice {
        store: StoreId,
        record: Box<InvoiceRecord>,
    },
    /// HQ announces a delivery to `store` (advance shipping notice). Creates no units.
    ShipmentNotice {
        shipment: MotionId,
        store: StoreId,
        reference: String,
        lines: Vec<OrderLine>,
    },
    /// The store received a shipment: `R[store][store] += received - damaged` per line.
    ShipmentReceive {
        shipment: MotionId,
        store: StoreId,
        lines: Vec<ReceiptLine>,
        over_delivery: bool,
    },
    /// `store` sends units to `to`: consumed from the sender's rights at dispatch
    /// (`U[store] += qty`), in transit until `to` receives them.
    TransferDispatch {
        transfer: MotionId,
        store: StoreId,
        to: StoreId,
        lines: Vec<OrderLine>,
    },
    /// `store` received a transfer from `from`: `R[store][store] += received - damaged`.
    TransferReceive {
        transfer: MotionId,
        store: StoreId,
        from: StoreId,
        lines: Vec<ReceiptLine>,
        over_delivery: bool,
    },
    /// A person resolved an item of the conflict inbox (`domain::conflict`) of `store`:
    /// the action taken, why, and who (staff or HQ account). Last writer wins per item.
    ConflictResolve {
        store: StoreId,
        conflict: String,
        action: String,
        note: String,
        by: String,
    },
    /// A customer return taken at `store` (the receiving store) of a sale or handed-over order
    /// of `sale_store`: restocked units become `store`'s rights (`R[store][store] += qty`),
    /// damaged ones are written off. `verified`: issued by the holder of the sale's return
    /// rights, checked against its own state (DESIGN.md §12).
    Return {
        store: StoreId,
        return_id: ReturnId,
        /// A sale id or a handed-over order id.
        sale: SaleId,
        /// The store that sold it, when the receiving store knows (also routed there).
        sale_store: Option<StoreId>,
        lines: Vec<ReturnLine>,
        tender: Tender,
        verified: bool,
        customer: Option<CustomerId>,
    },
    /// `by` asks the holder of a sale's return rights to hand them over. Routed to `holder`
    /// when the asking store knows it, otherwise to every store. Dead once the rights moved
    /// past `epoch` (the handover count `by` knew).
    ReturnRightsRequested {
        sale: SaleId,
        by: StoreId,
        holder: Option<StoreId>,
        epoch: u32,
    },
    /// The holder `from` hands a sale's return rights to `to` (the `epoch`-th handover), with
    /// what was sold and what was returned so far, so `to` checks returns exactly.
    ReturnRightsGranted {
        sale: SaleId,
        from: StoreId,
        to: StoreId,
        epoch: u32,
        sold: SoldSnapshot,
        returned: Vec<(Sku, u32)>,
    },
    /// HQ sets a promotion on skus only (last writer wins per promotion id; DESIGN.md §18):
    /// the encoding before categories, still applied; HQ now issues `PromotionSet`.
    PromotionPut { promotion: SkuPromotion },
    /// The prices and discounts a till sale was sold at, issued just before its `Sale` (same
    /// actor, previous seq), so every replica knows them when the sale is applied.
    SalePriced {
        store: StoreId,
        sale_id: SaleId,
        pricing: SalePricing,
    },
    /// The store opens its cash drawer with a float.
    CashOpen {
        store: StoreId,
        session: CashSessionId,
        float_cents: i64,
        staff: String,
        opened_ms: u64,
    },
    /// Cash put in or taken out of the open drawer, with a reason.
    CashMove {
        store: StoreId,
        session: CashSessionId,
        kind: CashMoveKind,
        cents: i64,
        reason: String,
        staff: String,
    },
    /// The store closes its drawer with a blind count (the Z report).
    CashClose {
        store: StoreId,
        session: CashSessionId,
        counted_cents: i64,
        staff: String,
        closed_ms: u64,
    },
    /// Ship-to-store (DESIGN.md §19): HQ takes a pickup order for `store` that `from` fulfils.
    /// Consumes HQ's rights at `from` (`U[hq] += qty` there) and puts the units in transit as
    /// `transfer` from `from` to `store`; the order's units come from that transfer, so
    /// nothing is consumed at `store`. The customer is told `ready_by_ms`.
    OrderShipToStore {
        order_id: OrderId,
        store: StoreId,
        from: StoreId,
        transfer: MotionId,
        customer: CustomerId,
        lines: Vec<OrderLine>,
        pickup_code: String,
        placed_at_ms: u64,
        ready_by_ms: u64,
    },
    /// `store` set aside units of a ship-to-store order that its transfer brought, issued
    /// with the transfer's receipt: `U[store] += qty` (the receipt created them), so they are
    /// reserved for the order, not sellable.
    OrderArrived {
        order_id: OrderId,
        store: StoreId,
        lines: Vec<OrderLine>,
    },
    /// `store`, the sending store of ship-to-store order `order_id`, scanned its units out:
    /// they leave its shelf and travel as `transfer` to `to`, the order's store. (HQ's rights
    /// at `store` were spent when the order was taken; until this op the units are still on
    /// the sender's shelf, set aside, so a count there does not re-add them.)
    ShipDispatch {
        order_id: OrderId,
        transfer: MotionId,
        store: StoreId,
        to: StoreId,
    },
    /// `store` kept the units of ship-to-store order `order_id`, cancelled or expired before
    /// they left: `R[store][store] += qty` per line, and `transfer` is withdrawn (never
    /// received). Only the sender decides between this and `ShipDispatch`, once.
    ShipWithdraw {
        order_id: OrderId,
        transfer: MotionId,
        store: StoreId,
        to: StoreId,
    },
    /// The store opens the drawer of one of its tills with a float (`CashOpen` is the
    /// default till's, `till::cash::DEFAULT_TILL`).
    CashOpenTill {
        store: StoreId,
        till: TillId,
        session: CashSessionId,
        float_cents: i64,
        staff: String,
        opened_ms: u64,
    },
    /// The store's next sale or return `doc` was taken at `till` (issued just before it, as
    /// `SalePriced` is); a document without one was taken at the default till.
    TakenAt {
        store: StoreId,
        till: TillId,
        doc: TillDoc,
    },
    /// HQ sets a product's category (last writer wins per sku; `None` clears it): what
    /// promotions by category reach.
    CatalogCategory {
        sku: Sku,
        category: Option<Category>,
    },
    /// HQ sets a promotion, on skus and categories (last writer wins per promotion id, shared
    /// with `PromotionPut`).
    PromotionSet { promotion: Promotion },
}

impl Payload {
    /// The store whose shared state this op touches, if it is store-specific.
    pub fn store(&self) -> Option<&StoreId> {
        match self {
            Payload::StockReceive { store, .. }
            | Payload::StockTransfer { store, .. }
            | Payload::StockConsume { store, .. }
            | Payload::CountRecorded { store, .. }
            | Payload::RightsReturnRequested { store, .. }
            | Payload::Sale { store, .. }
            | Payload::OrderPlace { store, .. }
            | Payload::OrderAdvance { store, .. }
            | Payload::OrderPick { store, .. }
            | Payload::OrderCancel { store, .. }
            | Payload::OrderRelease { store, .. }
            | Payload::CustomerFollow { store, .. }
            | Payload::Invoice { store, .. }
            | Payload::ShipmentNotice { store, .. }
            | Payload::ShipmentReceive { store, .. }
            | Payload::TransferDispatch { store, .. }
            | Payload::TransferReceive { store, .. }
            | Payload::ConflictResolve { store, .. }
            | Payload::Return { store, .. }
            | Payload::SalePriced { store, .. }
            | Payload::CashOpen { store, .. }
            | Payload::CashMove { store, .. }
            | Payload::CashClose { store, .. }
            | Payload::ReturnRightsGranted { to: store, .. }
            | Payload::OrderShipToStore { store, .. }
            | Payload::OrderArrived { store, .. }
            | Payload::ShipDispatch { store, .. }
            | Payload::ShipWithdraw { store, .. }
            | Payload::CashOpenTill { store, .. }
            | Payload::TakenAt { store, .. } => Some(store),
            Payload::ReturnRightsRequested { holder, .. } => holder.as_ref(),
            _ => None,
        }
    }

    /// The other store a transfer op concerns (the receiver of a dispatch, the sender of a
    /// receipt): it needs the op as much as `store()` does.
    pub fn peer_store(&self) -> Option<&StoreId> {
        match self {
            Payload::TransferDispatch { to, .. }
            | Payload::ShipDispatch { to, .. }
            | Payload::ShipWithdraw { to, .. } => Some(to),
            Payload::TransferReceive { from, .. } | Payload::OrderShipToStore { from, .. } => {
                Some(from)
            }
            _ => None,
        }
    }

    /// The customer this op concerns, if any.
    pub fn customer(&self) -> Option<&CustomerId> {
        match self {
            Payload::CartSet { customer, .. }
            | Payload::CartRemove { customer, .. }
            | Payload::CustomerUpdate { customer, .. }
            | Payload::ConsentSet { customer, .. }
            | Payload::CustomerErase { customer }
            | Payload::CustomerFollow { customer, .. }
            | Payload::OrderPlace { customer, .. }
            | Payload::OrderShipToStore { customer, .. } => Some(customer),
            Payload::Sale { customer, .. } | Payload::Return { customer, .. } => customer.as_ref(),
            _ => None,
        }
    }

    /// The order this op concerns, if any.
    pub fn order(&self) -> Option<&OrderId> {
        match self {
            Payload::OrderPlace { order_id, .. }
            | Payload::OrderAdvance { order_id, .. }
            | Payload::OrderPick { order_id, .. }
            | Payload::OrderCancel { order_id, .. }
            | Payload::OrderRelease { order_id, .. }
            | Payload::OrderShipToStore { order_id, .. }
            | Payload::OrderArrived { order_id, .. }
            | Payload::ShipDispatch { order_id, .. }
            | Payload::ShipWithdraw { order_id, .. } => Some(order_id),
            _ => None,
        }
    }

    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::CatalogPut { .. } => "catalog_put",
            Payload::StockReceive { .. } => "stock_receive",
            Payload::StockTransfer { .. } => "stock_transfer",
            Payload::StockConsume { .. } => "stock_consume",
            Payload::CountRecorded { .. } => "count_recorded",
            Payload::RightsReturnRequested { .. } => "rights_return_requested",
            Payload::Sale { .. } => "sale",
            Payload::OrderPlace { .. } => "order_place",
            Payload::OrderAdvance { .. } => "order_advance",
            Payload::OrderPick { .. } => "order_pick",
            Payload::OrderCancel { .. } => "order_cancel",
            Payload::OrderRelease { .. } => "order_release",
            Payload::CartSet { .. } => "cart_set",
            Payload::CartRemove { .. } => "cart_remove",
            Payload::CustomerUpdate { .. } => "customer_update",
            Payload::ConsentSet { .. } => "consent_set",
            Payload::CustomerErase { .. } => "customer_erase",
            Payload::CustomerFollow { .. } => "customer_follow",
            Payload::Invoice { .. } => "invoice",
            Payload::ShipmentNotice { .. } => "shipment_notice",
            Payload::ShipmentReceive { .. } => "shipment_receive",
            Payload::TransferDispatch { .. } => "transfer_dispatch",
            Payload::TransferReceive { .. } => "transfer_receive",
            Payload::ConflictResolve { .. } => "conflict_resolve",
            Payload::Return { .. } => "return",
            Payload::ReturnRightsRequested { .. } => "return_rights_requested",
            Payload::ReturnRightsGranted { .. } => "return_rights_granted",
            Payload::PromotionPut { .. } => "promotion_put",
            Payload::SalePriced { .. } => "sale_priced",
            Payload::CashOpen { .. } => "cash_open",
            Payload::CashMove { .. } => "cash_move",
            Payload::CashClose { .. } => "cash_close",
            Payload::OrderShipToStore { .. } => "order_ship_to_store",
            Payload::OrderArrived { .. } => "order_arrived",
            Payload::ShipDispatch { .. } => "ship_dispatch",
            Payload::ShipWithdraw { .. } => "ship_withdraw",
            Payload::CashOpenTill { .. } => "cash_open_till",
            Payload::TakenAt { .. } => "taken_at",
            Payload::CatalogCategory { .. } => "catalog_category",
            Payload::PromotionSet { .. } => "promotion_set",
        }
    }
}
