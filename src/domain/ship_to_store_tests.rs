//! Ship-to-store through real `Replica`s (HQ, madrid, sevilla): which store HQ ships from,
//! what each store may still sell, and when the order may be picked and made ready.

use super::count::plan_count;
use super::error::DomainError;
use super::ids::*;
use super::motion::in_transit;
use super::motion_tests::{hq_order, line, mid, receipt, receive_transfer, sku, store, Chain};
use super::op::*;
use super::order::OrderStatus;
use super::ship_to_store::dispatch_of;

/// The chain with `n` of madrid's units allocated to HQ, everyone in sync.
fn with_hq_rights_at_madrid(n: u32) -> Chain {
    let mut c = Chain::new();
    c.act(
        1,
        Payload::StockTransfer {
            store: store(0),
            sku: sku(),
            to: ActorId::hq(),
            qty: n,
        },
    )
    .unwrap();
    c.sync_all();
    c
}

fn order_id(id: &str) -> OrderId {
    OrderId::parse(&format!("O-{id}")).unwrap()
}

fn pick(c: &mut Chain, id: &str, picked: u32) -> Result<(), DomainError> {
    c.act(
        2,
        Payload::OrderPick {
            order_id: order_id(id),
            store: store(1),
            sku: sku(),
            picked,
        },
    )
}

#[test]
fn hq_ships_from_another_store_only_when_the_pickup_stores_rights_fall_short() {
    let mut c = with_hq_rights_at_madrid(4);
    hq_order(&mut c, "1", 0, 2).unwrap();
    let madrid_order = &c.replicas[0].state().orders[&order_id("1")];
    assert!(
        madrid_order.ship.is_none(),
        "HQ's rights at madrid cover it"
    );

    hq_order(&mut c, "2", 1, 2).unwrap();
    let hq = c.replicas[0].state();
    let shipped = &hq.orders[&order_id("2")];
    let ship = shipped
        .ship
        .as_ref()
        .expect("sevilla has no HQ rights: shipped");
    assert_eq!(ship.store, store(0));
    assert_eq!(
        ship.ready_by_ms,
        shipped.placed_at_ms + super::ship_to_store::LEAD_MS_DEFAULT
    );
    assert_eq!(hq.rights(&store(0), &sku(), &ActorId::hq()), 0);
    assert_eq!(
        hq.available(&store(1), &sku()),
        10,
        "nothing consumed at sevilla"
    );
    assert_eq!(
        in_transit(hq, &store(1), &sku()),
        0,
        "still on madrid's shelf until it dispatches"
    );
    assert_eq!(hq.outgoing(&store(0), &sku()), 2);
    c.sync_all();
    dispatch(&mut c, "2").unwrap();
    c.sync_all();
    let hq = c.replicas[0].state();
    assert_eq!(in_transit(hq, &store(1), &sku()), 2);
    assert_eq!(hq.outgoing(&store(0), &sku()), 0);
    assert_eq!(hq.transfers[&mid("T-2")].status(), "in_transit");
}

/// Madrid scans out the units of ship-to-store order `O-<id>` (its transfer `T-<id>`).
fn dispatch(c: &mut Chain, id: &str) -> Result<(), DomainError> {
    let p = dispatch_of(c.replicas[1].state(), &mid(&format!("T-{id}")), &store(0))
        .expect("a ship-to-store transfer madrid sends");
    c.act(1, p)
}

#[test]
fn a_count_at_the_sender_before_dispatch_re_adds_nothing_and_after_it_loses_nothing() {
    let mut c = with_hq_rights_at_madrid(3);
    hq_order(&mut c, "1", 1, 3).unwrap();
    c.sync_all();
    let madrid = c.replicas[1].state();
    assert_eq!(
        madrid.available(&store(0), &sku()),
        7,
        "sellable: not the order's"
    );
    assert_eq!(madrid.outgoing(&store(0), &sku()), 3);
    // All 10 units are still on the shelf: the count matches, nothing is re-added.
    let count = plan_count(madrid, &store(0), &sku(), 10);
    assert_eq!(count.len(), 1, "only the record: {count:?}");
    assert!(matches!(
        count[0],
        Payload::CountRecorded {
            expected: 10,
            shrinkage: 0,
            ..
        }
    ));
    dispatch(&mut c, "1").unwrap();
    let madrid = c.replicas[1].state();
    assert_eq!(madrid.outgoing(&store(0), &sku()), 0);
    let count = plan_count(madrid, &store(0), &sku(), 7);
    assert_eq!(count.len(), 1, "the 3 left: nothing missing: {count:?}");
    assert_eq!(madrid.available(&store(0), &sku()), 7);
}

#[test]
fn an_order_cancelled_before_dispatch_gives_its_units_back_to_the_sender_once() {
    let mut c = with_hq_rights_at_madrid(3);
    hq_order(&mut c, "1", 1, 3).unwrap();
    c.act(
        0,
        Payload::OrderCancel {
            order_id: order_id("1"),
            store: store(1),
            kind: CancelKind::Cancelled,
        },
    )
    .unwrap();
    c.sync_all();
    assert!(
        matches!(
            dispatch(&mut c, "1"),
            Err(DomainError::BadTransition { .. })
        ),
        "a cancelled order's units do not leave"
    );
    let plan = super::reaction::plan_releases(c.replicas[1].state(), &store(0));
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert!(matches!(plan[0], Payload::ShipWithdraw { .. }));
    c.act(1, plan[0].clone()).unwrap();
    assert!(super::reaction::plan_releases(c.replicas[1].state(), &store(0)).is_empty());
    assert!(
        matches!(
            c.act(1, plan[0].clone()),
            Err(DomainError::AlreadyDispatched(_))
        ),
        "withdrawn once"
    );
    let madrid = c.replicas[1].state();
    assert_eq!(
        madrid.available(&store(0), &sku()),
        10,
        "back on sale at madrid"
    );
    assert_eq!(madrid.on_hand(&store(0), &sku()), 10);
    c.sync_all();
    let refused = receive_transfer(&mut c, 2, &mid("T-1"), store(0), receipt(3, 0), false);
    assert!(
        matches!(refused, Err(DomainError::Withdrawn(_))),
        "{refused:?}"
    );
    let hq = c.replicas[0].state();
    assert_eq!(hq.transfers[&mid("T-1")].status(), "withdrawn");
    assert_eq!(in_transit(hq, &store(1), &sku()), 0);
    assert_eq!(
        hq.available(&store(0), &sku()) + hq.available(&store(1), &sku()),
        20
    );
}

#[test]
fn only_the_sending_store_dispatches_and_only_once() {
    let mut c = with_hq_rights_at_madrid(3);
    hq_order(&mut c, "1", 1, 3).unwrap();
    c.sync_all();
    let p = dispatch_of(c.replicas[1].state(), &mid("T-1"), &store(0)).unwrap();
    assert!(
        c.act(2, p.clone()).is_err(),
        "sevilla cannot dispatch madrid's units"
    );
    assert!(
        dispatch_of(c.replicas[2].state(), &mid("T-1"), &store(1)).is_none(),
        "not sevilla's to send"
    );
    c.act(1, p.clone()).unwrap();
    assert!(matches!(
        c.act(1, p),
        Err(DomainError::AlreadyDispatched(_))
    ));
    // Cancelled after the units left: nothing to take back at madrid.
    c.act(
        0,
        Payload::OrderCancel {
            order_id: order_id("1"),
            store: store(1),
            kind: CancelKind::Cancelled,
        },
    )
    .unwrap();
    c.sync_all();
    assert!(super::reaction::plan_releases(c.replicas[1].state(), &store(0)).is_empty());
}

#[test]
fn an_order_no_store_can_ship_is_refused_with_the_pickup_stores_shortage() {
    let mut c = with_hq_rights_at_madrid(1);
    let before = c.replicas[0].digest();
    let refused = hq_order(&mut c, "1", 1, 2);
    assert_eq!(
        refused,
        Err(DomainError::InsufficientStock {
            store: store(1),
            sku: sku(),
            requested: 2,
            available: 0,
        })
    );
    assert_eq!(c.replicas[0].digest(), before, "nothing changed");
}

#[test]
fn a_shipped_order_is_picked_only_after_its_transfer_arrives_and_then_becomes_ready() {
    let mut c = with_hq_rights_at_madrid(3);
    hq_order(&mut c, "1", 1, 3).unwrap();
    c.sync_all();
    // Sevilla holds its own 10 units, but they are not this order's.
    assert!(matches!(
        pick(&mut c, "1", 1),
        Err(DomainError::NotArrived { arrived: 0, .. })
    ));
    let sevilla_before = c.replicas[2].state().available(&store(1), &sku());
    receive_transfer(&mut c, 2, &mid("T-1"), store(0), receipt(3, 0), false).unwrap();
    let st = c.replicas[2].state();
    assert_eq!(st.orders[&order_id("1")].units_here(&sku()), 3);
    assert_eq!(
        st.available(&store(1), &sku()),
        sevilla_before,
        "arrived units are the order's, not for sale"
    );
    assert_eq!(st.reserved(&store(1), &sku()), 3);
    pick(&mut c, "1", 3).unwrap();
    c.act(
        2,
        Payload::OrderAdvance {
            order_id: order_id("1"),
            store: store(1),
            to: Advance::Ready,
        },
    )
    .unwrap();
    c.sync_all();
    let hq = c.replicas[0].state();
    assert_eq!(hq.orders[&order_id("1")].status, OrderStatus::Ready);
    let m = &hq.transfers[&mid("T-1")];
    assert_eq!(m.status(), "received");
    assert_eq!(m.discrepancies(), vec![]);
}

#[test]
fn a_short_transfer_lets_the_order_pick_only_what_arrived() {
    let mut c = with_hq_rights_at_madrid(3);
    hq_order(&mut c, "1", 1, 3).unwrap();
    c.sync_all();
    receive_transfer(&mut c, 2, &mid("T-1"), store(0), receipt(2, 1), false).unwrap();
    let order = &c.replicas[2].state().orders[&order_id("1")];
    assert_eq!(order.units_here(&sku()), 1, "two came, one damaged");
    assert!(matches!(
        pick(&mut c, "1", 2),
        Err(DomainError::NotArrived { arrived: 1, .. })
    ));
    pick(&mut c, "1", 1).unwrap();
    let not_ready = c.act(
        2,
        Payload::OrderAdvance {
            order_id: order_id("1"),
            store: store(1),
            to: Advance::Ready,
        },
    );
    assert!(matches!(not_ready, Err(DomainError::NotPicked(_))));
}

#[test]
fn a_shipped_order_cancelled_in_transit_leaves_its_units_to_the_receiving_store() {
    let mut c = with_hq_rights_at_madrid(3);
    hq_order(&mut c, "1", 1, 3).unwrap();
    c.sync_all();
    dispatch(&mut c, "1").unwrap();
    c.act(
        0,
        Payload::OrderCancel {
            order_id: order_id("1"),
            store: store(1),
            kind: CancelKind::Cancelled,
        },
    )
    .unwrap();
    c.sync_all();
    for p in super::reaction::plan_releases(c.replicas[2].state(), &store(1)) {
        c.act(2, p).unwrap();
    }
    assert_eq!(c.replicas[2].state().available(&store(1), &sku()), 10);
    receive_transfer(&mut c, 2, &mid("T-1"), store(0), receipt(3, 0), false).unwrap();
    c.sync_all();
    let hq = c.replicas[0].state();
    assert_eq!(
        hq.available(&store(1), &sku()),
        13,
        "the units became sevilla's"
    );
    assert_eq!(hq.reserved(&store(1), &sku()), 0);
    assert_eq!(hq.available(&store(0), &sku()), 7);
}

#[test]
fn a_cancel_that_meets_arrived_units_returns_exactly_those() {
    let mut c = with_hq_rights_at_madrid(3);
    hq_order(&mut c, "1", 1, 3).unwrap();
    c.sync_all();
    // HQ cancels while sevilla, not knowing, receives and sets the units aside.
    c.act(
        0,
        Payload::OrderCancel {
            order_id: order_id("1"),
            store: store(1),
            kind: CancelKind::Cancelled,
        },
    )
    .unwrap();
    receive_transfer(&mut c, 2, &mid("T-1"), store(0), receipt(3, 0), false).unwrap();
    assert_eq!(c.replicas[2].state().available(&store(1), &sku()), 10);
    c.sync_all();
    for p in super::reaction::plan_releases(c.replicas[2].state(), &store(1)) {
        c.act(2, p).unwrap();
    }
    c.sync_all();
    let hq = c.replicas[0].state();
    assert_eq!(hq.available(&store(1), &sku()), 13);
    assert_eq!(hq.reserved(&store(1), &sku()), 0);
}

#[test]
fn only_hq_ships_to_store_and_only_the_pickup_store_sets_units_aside() {
    let mut c = with_hq_rights_at_madrid(3);
    let by_store = c.act(
        1,
        Payload::OrderShipToStore {
            order_id: order_id("9"),
            store: store(1),
            from: store(0),
            transfer: mid("T-9"),
            customer: CustomerId::parse("C-1").unwrap(),
            lines: line(1),
            pickup_code: "ABC234".into(),
            placed_at_ms: 1,
            ready_by_ms: 2,
        },
    );
    assert!(by_store.is_err(), "a store cannot issue HQ's order");
    hq_order(&mut c, "1", 1, 3).unwrap();
    c.sync_all();
    let early = c.act(
        2,
        Payload::OrderArrived {
            order_id: order_id("1"),
            store: store(1),
            lines: line(3),
        },
    );
    assert!(
        matches!(early, Err(DomainError::UnknownMovement { .. })),
        "nothing arrives before the transfer is received: {early:?}"
    );
}

#[test]
fn an_order_only_several_stores_together_could_fulfil_is_refused_naming_them() {
    let mut c = with_hq_rights_at_madrid(3);
    c.act(
        2,
        Payload::StockTransfer {
            store: store(1),
            sku: sku(),
            to: ActorId::hq(),
            qty: 2,
        },
    )
    .unwrap();
    c.sync_all();
    let before = c.replicas[0].digest();
    // 4 for sevilla: HQ holds 2 there and 3 at madrid; together enough, alone neither.
    let refused = hq_order(&mut c, "1", 1, 4);
    let Err(DomainError::NoSingleSource(r)) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!((&r.store, r.available), (&store(1), 2));
    assert_eq!(r.sources, vec![(sku(), vec![(store(1), 2), (store(0), 3)])]);
    assert_eq!(c.replicas[0].digest(), before, "nothing placed");
    // More than all of HQ's rights together: the plain shortage.
    assert!(matches!(
        hq_order(&mut c, "2", 1, 6),
        Err(DomainError::InsufficientStock { available: 2, .. })
    ));
}
