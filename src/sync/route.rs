//! HQ's routing decisions: which stores need an op HQ applied (pure).
//! (Over 500 lines: the routing rule for every payload kind sits in one place with its unit
//! tests, so a new payload cannot be routed in one function and forgotten in another.)
//!
//! A store needs every catalog op; every op about its own stock, orders and sales authored by
//! someone else; every customer erasure; and the cart, profile and consent ops of customers in
//! its scope. A customer enters a store's scope with an order there, a sale there naming them,
//! or the store's `CustomerFollow`; on entry the store gets that customer's past ops too, so
//! HQ keeps an index of customer ops. Sales, orders and returns naming a customer are indexed
//! and routed the same way (purchase history); a return also goes to the store that sold it, and
//! a request for a sale's return rights to its holder (to every store when the asker does not
//! know it). A sale's `SalePriced` travels and is indexed with it, so its discounts do too. A store never gets its own ops back. A cancel of a ship-to-store order also goes to
//! the store that was to send its units, while they wait there for dispatch (it keeps them).

use crate::domain::{CustomerId, Op, OpId, OrderId, Payload, SaleId, StoreId};
use std::collections::{BTreeMap, BTreeSet};

/// One consequence of routing an op, to be persisted in order in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Append the op to the store's down-log.
    Append { store: StoreId, op: OpId },
    /// Remember the op as one about this customer.
    Index { customer: CustomerId, op: OpId },
    /// The customer entered the store's scope: append every indexed op about the customer
    /// not authored by the store.
    EnterScope {
        store: StoreId,
        customer: CustomerId,
    },
}

/// Routing state: the known stores and which customers each has in scope.
#[derive(Debug, Clone, Default)]
pub struct Router {
    stores: Vec<StoreId>,
    scope: BTreeSet<(StoreId, CustomerId)>,
    /// Ship-to-store orders whose units still wait at their sending store, by order: learned
    /// from the `OrderShipToStore` ops routed (and `seed_ships` after a start), forgotten at
    /// the sender's dispatch or withdrawal.
    ships: BTreeMap<OrderId, StoreId>,
    /// The `SalePriced` op routed just before its sale, by sale: when the sale travels as
    /// purchase history, its pricing goes with it, so another store shows what was paid.
    /// Only memory, but derived from the log after a start (`remember`).
    priced: BTreeMap<SaleId, OpId>,
}

/// `SalePriced` ops remembered at most while their sale has not come (it follows at once,
/// same actor, next seq; the bound only guards against a store that never sends it).
const PRICED_MAX: usize = 1_024;

/// Customer data ops that travel to every store holding the customer in scope.
fn is_customer_data(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::CartSet { .. }
            | Payload::CartRemove { .. }
            | Payload::CustomerUpdate { .. }
            | Payload::ConsentSet { .. }
            | Payload::CustomerErase { .. }
    )
}

/// Purchase history: sales, pickup orders and returns naming a customer travel to every store
/// holding that customer in scope, so the counter shows purchases made elsewhere (DESIGN.md
/// §12). A store applies another store's ops like HQ does; only its own stock and orders are
/// read from them.
fn is_history(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::OrderPlace { .. }
            | Payload::OrderShipToStore { .. }
            | Payload::Sale {
                customer: Some(_),
                ..
            }
            | Payload::Return {
                customer: Some(_),
                ..
            }
    )
}

/// The (store, customer) pair an op brings into scope, if any.
fn scope_entry(payload: &Payload) -> Option<(StoreId, CustomerId)> {
    match payload {
        Payload::OrderPlace {
            store, customer, ..
        }
        | Payload::OrderShipToStore {
            store, customer, ..
        }
        | Payload::CustomerFollow { store, customer } => Some((store.clone(), customer.clone())),
        Payload::Sale {
            store,
            customer: Some(customer),
            ..
        } => Some((store.clone(), customer.clone())),
        _ => None,
    }
}

impl Router {
    /// `scope` is what earlier routing recorded (persisted alongside the down-logs).
    pub fn new(stores: Vec<StoreId>, scope: BTreeSet<(StoreId, CustomerId)>) -> Router {
        Router {
            stores,
            scope,
            ships: BTreeMap::new(),
            priced: BTreeMap::new(),
        }
    }

    /// Ship-to-store orders (order, sending store) whose units wait at the sender, as HQ's
    /// replica knows them: the routing position may be behind the replica after a start.
    pub fn seed_ships(&mut self, ships: impl IntoIterator<Item = (OrderId, StoreId)>) {
        self.ships.extend(ships);
    }

    pub fn stores(&self) -> &[StoreId] {
        &self.stores
    }

    pub fn in_scope(&self, store: &StoreId, customer: &CustomerId) -> bool {
        self.scope.contains(&(store.clone(), customer.clone()))
    }

    /// Append `op` to `store`'s down-log unless it authored it, is unknown, or it is appended
    /// already.
    fn append_once(&self, out: &mut Vec<RouteAction>, store: &StoreId, op: &Op) {
        let id = op.id();
        let known = self.stores.contains(store) && store.actor() != op.actor;
        let done = out.iter().any(
            |a| matches!(a, RouteAction::Append { store: s, op: o } if s == store && *o == id),
        );
        if known && !done {
            out.push(RouteAction::Append {
                store: store.clone(),
                op: id,
            });
        }
    }

    /// Ship-to-store: remember where an order's units wait, send its cancel there, forget it
    /// once they left (or stayed for good).
    fn route_ship(&mut self, out: &mut Vec<RouteAction>, op: &Op) {
        match &op.payload {
            Payload::OrderShipToStore { order_id, from, .. } => {
                self.ships.insert(order_id.clone(), from.clone());
            }
            Payload::OrderCancel { order_id, .. } => {
                if let Some(from) = self.ships.get(order_id).cloned() {
                    self.append_once(out, &from, op);
                }
            }
            Payload::ShipDispatch { order_id, .. } | Payload::ShipWithdraw { order_id, .. } => {
                self.ships.remove(order_id);
            }
            _ => {}
        }
    }

    /// Remember a `SalePriced` op; for a sale, the one remembered for it (taken).
    fn pair_priced(&mut self, op: &Op) -> Option<OpId> {
        match &op.payload {
            Payload::SalePriced { sale_id, .. } => {
                if self.priced.len() >= PRICED_MAX {
                    self.priced.clear();
                }
                self.priced.insert(sale_id.clone(), op.id());
                None
            }
            Payload::Sale { sale_id, .. } => self.priced.remove(sale_id),
            _ => None,
        }
    }

    /// Learn from an op routed before a start or reload without routing it again: a
    /// `SalePriced` whose sale is still to come. (Its sale is always the author's next op, so
    /// the last op routed per actor is all the memory a restart can lose; the protocol reads
    /// it again, `RouteRead::prime`.)
    pub fn remember(&mut self, op: &Op) {
        if matches!(op.payload, Payload::SalePriced { .. }) {
            self.pair_priced(op);
        }
    }

    /// Route one op applied at HQ. Must see every op exactly once, in any order that keeps
    /// each actor's seqs ascending.
    pub fn route(&mut self, op: &Op) -> Vec<RouteAction> {
        let mut out = Vec::new();
        let id = op.id();
        let not_author = |s: &StoreId| s.actor() != op.actor;
        let payload = &op.payload;
        let priced = self.pair_priced(op);
        if matches!(
            payload,
            Payload::CatalogPut { .. }
                | Payload::CatalogCategory { .. }
                | Payload::PromotionPut { .. }
                | Payload::PromotionSet { .. }
                | Payload::CustomerErase { .. }
                | Payload::ReturnRightsRequested { holder: None, .. }
        ) {
            for store in self.stores.iter().filter(|s| not_author(s)) {
                out.push(RouteAction::Append {
                    store: store.clone(),
                    op: id.clone(),
                });
            }
        } else if let Some(store) = payload.store() {
            for store in std::iter::once(store).chain(payload.peer_store()) {
                if not_author(store) && self.stores.contains(store) {
                    out.push(RouteAction::Append {
                        store: store.clone(),
                        op: id.clone(),
                    });
                }
            }
        } else if let (true, Some(customer)) = (is_customer_data(payload), payload.customer()) {
            for store in self.stores.iter().filter(|s| not_author(s)) {
                if self.scope.contains(&(store.clone(), customer.clone())) {
                    out.push(RouteAction::Append {
                        store: store.clone(),
                        op: id.clone(),
                    });
                }
            }
        }
        if let Payload::Return {
            sale_store: Some(seller),
            ..
        } = payload
        {
            self.append_once(&mut out, seller, op);
        }
        self.route_ship(&mut out, op);
        if let (true, Some(customer)) = (is_history(payload), payload.customer()) {
            let scoped: Vec<StoreId> = self
                .stores
                .iter()
                .filter(|s| self.scope.contains(&((*s).clone(), customer.clone())))
                .cloned()
                .collect();
            for store in &scoped {
                if let Some(p) = &priced {
                    if store.actor() != p.actor {
                        out.push(RouteAction::Append {
                            store: store.clone(),
                            op: p.clone(),
                        });
                    }
                }
                self.append_once(&mut out, store, op);
            }
        }
        if let Some((store, customer)) = scope_entry(payload) {
            if self.stores.contains(&store) && self.scope.insert((store.clone(), customer.clone()))
            {
                out.push(RouteAction::EnterScope { store, customer });
            }
        }
        // Indexed after entering scope, so the back-fill never repeats this very op.
        if let (true, Some(customer)) = (
            is_customer_data(payload) || is_history(payload),
            payload.customer(),
        ) {
            if let Some(p) = priced {
                out.push(RouteAction::Index {
                    customer: customer.clone(),
                    op: p,
                });
            }
            out.push(RouteAction::Index {
                customer: customer.clone(),
                op: id,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::op::OrderLine;
    use crate::domain::{ActorId, Hlc, OrderId, Sku};

    fn op(actor: ActorId, seq: u64, payload: Payload) -> Op {
        Op {
            actor,
            seq,
            hlc: Hlc::new(seq, 0),
            payload,
        }
    }
    fn s(x: &str) -> StoreId {
        StoreId::parse(x).unwrap()
    }
    fn c(x: &str) -> CustomerId {
        CustomerId::parse(x).unwrap()
    }
    fn appended_to(actions: &[RouteAction]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                RouteAction::Append { store, .. } => Some(store.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_hq_order_goes_only_to_its_store_and_brings_the_customer_into_scope() {
        let mut r = Router::new(vec![s("a"), s("b")], BTreeSet::new());
        let place = op(
            ActorId::hq(),
            1,
            Payload::OrderPlace {
                order_id: OrderId::parse("o1").unwrap(),
                store: s("a"),
                customer: c("c1"),
                lines: vec![OrderLine {
                    sku: Sku::parse("K").unwrap(),
                    qty: 1,
                }],
                pickup_code: "ABCDEF".into(),
                placed_at_ms: 1,
            },
        );
        let actions = r.route(&place);
        assert_eq!(appended_to(&actions), vec!["a"]);
        assert!(actions.contains(&RouteAction::EnterScope {
            store: s("a"),
            customer: c("c1")
        }));
        assert!(r
            .route(&place)
            .iter()
            .all(|a| !matches!(a, RouteAction::EnterScope { .. })));
    }

    #[test]
    fn cart_ops_follow_scope_and_never_return_to_their_author() {
        let mut r = Router::new(
            vec![s("a"), s("b")],
            BTreeSet::from([(s("a"), c("c1")), (s("b"), c("c1"))]),
        );
        let cart = |actor: ActorId, seq| {
            op(
                actor,
                seq,
                Payload::CartSet {
                    customer: c("c1"),
                    sku: Sku::parse("K").unwrap(),
                    qty: 2,
                },
            )
        };
        assert_eq!(
            appended_to(&r.route(&cart(ActorId::hq(), 1))),
            vec!["a", "b"]
        );
        let from_a = r.route(&cart(s("a").actor(), 1));
        assert_eq!(appended_to(&from_a), vec!["b"]);
        assert!(matches!(from_a.last(), Some(RouteAction::Index { .. })));
        let other = op(
            ActorId::hq(),
            2,
            Payload::CartSet {
                customer: c("c2"),
                sku: Sku::parse("K").unwrap(),
                qty: 2,
            },
        );
        assert!(appended_to(&r.route(&other)).is_empty());
    }

    #[test]
    fn purchases_follow_the_customer_returns_reach_the_seller_and_rights_requests_the_holder() {
        let mut r = Router::new(
            vec![s("a"), s("b"), s("c")],
            BTreeSet::from([(s("b"), c("c1"))]),
        );
        let sale = op(
            s("a").actor(),
            1,
            Payload::Sale {
                store: s("a"),
                sale_id: crate::domain::SaleId::parse("S1").unwrap(),
                lines: vec![],
                tender: crate::domain::op::Tender::Cash,
                customer: Some(c("c1")),
            },
        );
        let actions = r.route(&sale);
        assert_eq!(appended_to(&actions), vec!["b"], "b follows c1");
        assert!(matches!(actions.last(), Some(RouteAction::Index { .. })));
        let ret = op(
            s("c").actor(),
            1,
            Payload::Return {
                store: s("c"),
                return_id: crate::domain::ReturnId::parse("R1").unwrap(),
                sale: crate::domain::SaleId::parse("S1").unwrap(),
                sale_store: Some(s("a")),
                lines: vec![],
                tender: crate::domain::op::Tender::Cash,
                verified: false,
                customer: None,
            },
        );
        assert_eq!(appended_to(&r.route(&ret)), vec!["a"]);
        let ask = |holder: Option<StoreId>| {
            op(
                s("b").actor(),
                1,
                Payload::ReturnRightsRequested {
                    sale: crate::domain::SaleId::parse("S1").unwrap(),
                    by: s("b"),
                    holder,
                    epoch: 0,
                },
            )
        };
        assert_eq!(appended_to(&r.route(&ask(Some(s("a"))))), vec!["a"]);
        assert_eq!(appended_to(&r.route(&ask(None))), vec!["a", "c"]);
    }

    #[test]
    fn a_discounted_sale_travels_as_history_with_its_pricing_before_it() {
        let mut r = Router::new(vec![s("a"), s("b")], BTreeSet::from([(s("b"), c("c1"))]));
        let sale_id = crate::domain::SaleId::parse("S1").unwrap();
        let priced = op(
            s("a").actor(),
            1,
            Payload::SalePriced {
                store: s("a"),
                sale_id: sale_id.clone(),
                pricing: crate::domain::till::SalePricing {
                    lines: vec![],
                    ticket_bp: 1_000,
                    approved_by: None,
                },
            },
        );
        assert!(
            appended_to(&r.route(&priced)).is_empty(),
            "alone it stays home"
        );
        let sale = op(
            s("a").actor(),
            2,
            Payload::Sale {
                store: s("a"),
                sale_id,
                lines: vec![],
                tender: crate::domain::op::Tender::Card,
                customer: Some(c("c1")),
            },
        );
        let actions = r.route(&sale);
        let (p, q) = (priced.id(), sale.id());
        assert_eq!(
            actions,
            vec![
                RouteAction::Append {
                    store: s("b"),
                    op: p.clone()
                },
                RouteAction::Append {
                    store: s("b"),
                    op: q.clone()
                },
                RouteAction::EnterScope {
                    store: s("a"),
                    customer: c("c1")
                },
                RouteAction::Index {
                    customer: c("c1"),
                    op: p
                },
                RouteAction::Index {
                    customer: c("c1"),
                    op: q
                },
            ],
            "b gets (and a back-fill replays) the pricing before the sale"
        );
    }

    #[test]
    fn a_stores_own_stock_ops_stay_home() {
        let mut r = Router::new(vec![s("a"), s("b")], BTreeSet::new());
        let receive = op(
            s("a").actor(),
            1,
            Payload::StockReceive {
                store: s("a"),
                sku: Sku::parse("K").unwrap(),
                qty: 5,
                reason: crate::domain::op::ReceiveReason::Delivery,
            },
        );
        assert!(r.route(&receive).is_empty());
    }

    #[test]
    fn a_transfer_reaches_the_receiving_store_and_its_receipt_the_sender() {
        let mut r = Router::new(vec![s("a"), s("b")], BTreeSet::new());
        let lines = vec![OrderLine {
            sku: Sku::parse("K").unwrap(),
            qty: 2,
        }];
        let id = crate::domain::MotionId::parse("T-1").unwrap();
        let dispatch = op(
            s("a").actor(),
            1,
            Payload::TransferDispatch {
                transfer: id.clone(),
                store: s("a"),
                to: s("b"),
                lines,
            },
        );
        assert_eq!(appended_to(&r.route(&dispatch)), vec!["b"]);
        let receipt = op(
            s("b").actor(),
            1,
            Payload::TransferReceive {
                transfer: id,
                store: s("b"),
                from: s("a"),
                lines: vec![],
                over_delivery: false,
            },
        );
        assert_eq!(appended_to(&r.route(&receipt)), vec!["a"]);
    }

    #[test]
    fn a_cancel_of_a_ship_to_store_order_reaches_the_sender_until_it_dispatched() {
        let mut r = Router::new(vec![s("a"), s("b")], BTreeSet::new());
        let order = |n: &str| OrderId::parse(n).unwrap();
        let ship = |n: &str, seq| {
            op(
                ActorId::hq(),
                seq,
                Payload::OrderShipToStore {
                    order_id: order(n),
                    store: s("b"),
                    from: s("a"),
                    transfer: crate::domain::MotionId::parse(&format!("T-{n}")).unwrap(),
                    customer: c("c1"),
                    lines: vec![],
                    pickup_code: "ABC234".into(),
                    placed_at_ms: 1,
                    ready_by_ms: 2,
                },
            )
        };
        let cancel = |n: &str, actor: ActorId, seq| {
            op(
                actor,
                seq,
                Payload::OrderCancel {
                    order_id: order(n),
                    store: s("b"),
                    kind: crate::domain::op::CancelKind::Cancelled,
                },
            )
        };
        assert_eq!(appended_to(&r.route(&ship("O-1", 1))), vec!["b", "a"]);
        assert_eq!(
            appended_to(&r.route(&cancel("O-1", ActorId::hq(), 2))),
            vec!["b", "a"]
        );
        // b's own expiry goes to a alone.
        assert_eq!(
            appended_to(&r.route(&cancel("O-1", s("b").actor(), 1))),
            vec!["a"]
        );
        r.route(&ship("O-2", 3));
        let dispatched = op(
            s("a").actor(),
            1,
            Payload::ShipDispatch {
                order_id: order("O-2"),
                transfer: crate::domain::MotionId::parse("T-O-2").unwrap(),
                store: s("a"),
                to: s("b"),
            },
        );
        assert_eq!(appended_to(&r.route(&dispatched)), vec!["b"]);
        assert_eq!(
            appended_to(&r.route(&cancel("O-2", ActorId::hq(), 4))),
            vec!["b"],
            "the units left a: nothing for a to keep"
        );
        // After a restart the router learns waiting orders from the replica.
        let mut fresh = Router::new(vec![s("a"), s("b")], BTreeSet::new());
        fresh.seed_ships([(order("O-3"), s("a"))]);
        assert_eq!(
            appended_to(&fresh.route(&cancel("O-3", ActorId::hq(), 5))),
            vec!["b", "a"]
        );
    }
}
