//! Shipments and transfers through real `Replica`s: HQ and two stores, links that come and go.
//! (Just over 500 lines: one schedule generator and the conservation property belong together.)
//!
//! The property: whatever the schedule and partitions, once everyone has exchanged everything
//! the replicas agree, no available stock is negative, and units are conserved:
//! `initial + good units received from shipments = sum of available + in transit + lost +
//! damaged in transfers + units held for orders + units awaiting dispatch` per sku (dispatch +
//! receipt never creates or loses units), with ship-to-store orders, their dispatch, cancels,
//! releases and withdrawals in the schedules too. And at every step each store's own view of
//! its shelf (`on_hand`) is exactly what is physically there, so a count taken at any moment
//! (before or after a ship-to-store order's units leave) neither re-adds nor loses units.

use super::count::plan_count;
use super::error::DomainError;
use super::ids::*;
use super::motion::{in_transit, MotionKind};
use super::op::*;
use super::replica::Replica;
use super::ship_to_store::{dispatch_of, plan_arrivals, plan_order, OrderRequest, LEAD_MS_DEFAULT};
use proptest::prelude::*;

const SKU: &str = "SKU-A";
const STORES: [&str; 2] = ["madrid-centro", "sevilla-nervion"];
pub(super) const INITIAL: u32 = 10;

pub(super) fn sku() -> Sku {
    Sku::parse(SKU).unwrap()
}
pub(super) fn store(i: usize) -> StoreId {
    StoreId::parse(STORES[i % 2]).unwrap()
}
pub(super) fn mid(s: &str) -> MotionId {
    MotionId::parse(s).unwrap()
}

/// The three replicas plus every op each has seen, in the order it saw them.
pub(super) struct Chain {
    pub(super) replicas: Vec<Replica>,
    logs: Vec<Vec<Op>>,
    pub(super) now: u64,
}

impl Chain {
    /// HQ (0), madrid (1), sevilla (2); the catalog everywhere; `INITIAL` units at each store.
    pub(super) fn new() -> Chain {
        let mut c = Chain {
            replicas: vec![
                Replica::new(ActorId::hq()),
                Replica::new(store(0).actor()),
                Replica::new(store(1).actor()),
            ],
            logs: vec![Vec::new(), Vec::new(), Vec::new()],
            now: 1,
        };
        c.act(
            0,
            Payload::CatalogPut {
                sku: sku(),
                ean: Ean13::parse("4006381333931").unwrap(),
                name: "Aceite".into(),
                price_cents: 500,
                vat_bp: 1000,
            },
        )
        .unwrap();
        c.sync(0, 1);
        c.sync(0, 2);
        for i in 1..=2 {
            c.act(
                i,
                Payload::StockReceive {
                    store: store(i - 1),
                    sku: sku(),
                    qty: INITIAL,
                    reason: ReceiveReason::Delivery,
                },
            )
            .unwrap();
        }
        c
    }

    pub(super) fn act(&mut self, who: usize, payload: Payload) -> Result<(), DomainError> {
        self.now += 1;
        let (op, _) = self.replicas[who].prepare(self.now, payload)?;
        self.logs[who].push(op);
        Ok(())
    }

    /// Everything `from` has seen reaches `to` (HQ relays between stores).
    pub(super) fn sync(&mut self, from: usize, to: usize) {
        for op in self.logs[from].clone() {
            if let Ok(super::replica::Applied::New(_)) = self.replicas[to].apply(&op) {
                self.logs[to].push(op);
            }
        }
    }

    pub(super) fn sync_all(&mut self) {
        for _ in 0..2 {
            for s in 1..=2 {
                self.sync(s, 0);
                self.sync(0, s);
            }
        }
    }
}

pub(super) fn line(qty: u32) -> Vec<OrderLine> {
    vec![OrderLine { sku: sku(), qty }]
}

pub(super) fn receipt(received: u32, damaged: u32) -> Vec<ReceiptLine> {
    vec![ReceiptLine {
        sku: sku(),
        received,
        damaged,
    }]
}

/// One step: who acts (0-2), what (0-9), and a small number.
fn steps() -> impl Strategy<Value = Vec<(usize, u8, u32)>> {
    prop::collection::vec((0usize..3, 0u8..10, 0u32..8), 1..48)
}

/// Whether the units of `m` physically left their sender: a plain transfer at once, a
/// ship-to-store one when the sender (replica `sender`) dispatched it.
fn left_sender(c: &Chain, m: &super::motion::Movement) -> bool {
    let Some(sent) = m.sent.as_ref() else {
        return false;
    };
    if !sent.awaits_dispatch {
        return true;
    }
    let sender = STORES
        .iter()
        .position(|s| sent.from.as_ref().is_some_and(|f| f.as_str() == *s));
    sender.is_some_and(|i| {
        c.replicas[i + 1]
            .state()
            .transfers
            .get(&m.id)
            .and_then(|x| x.dispatch.as_ref())
            .is_some_and(|d| !d.withdrawn)
    })
}

/// HQ takes a pickup order for `store` as its API does: from its rights there, else shipped
/// from the other store.
pub(super) fn hq_order(
    c: &mut Chain,
    id: &str,
    store_ix: usize,
    qty: u32,
) -> Result<(), DomainError> {
    let req = OrderRequest {
        order_id: OrderId::parse(&format!("O-{id}")).unwrap(),
        store: store(store_ix),
        customer: CustomerId::parse("C-1").unwrap(),
        lines: line(qty),
        pickup_code: "ABC234".into(),
        transfer: mid(&format!("T-{id}")),
    };
    let hq = &c.replicas[0];
    let payload = plan_order(
        hq.state(),
        hq.actor(),
        &[store(0), store(1)],
        req,
        c.now,
        LEAD_MS_DEFAULT,
    )?;
    c.act(0, payload)
}

/// Store `s` (1-2) receives `id` with `lines`, setting aside what an order awaits, as the
/// terminal does.
pub(super) fn receive_transfer(
    c: &mut Chain,
    s: usize,
    id: &MotionId,
    from: StoreId,
    lines: Vec<ReceiptLine>,
    over: bool,
) -> Result<(), DomainError> {
    let here = store(s - 1);
    let arrived = plan_arrivals(c.replicas[s].state(), id, &here, &lines);
    c.act(
        s,
        Payload::TransferReceive {
            transfer: id.clone(),
            store: here,
            from,
            lines,
            over_delivery: over,
        },
    )?;
    match arrived {
        Some(p) => c.act(s, p),
        None => Ok(()),
    }
}

fn run(schedule: &[(usize, u8, u32)]) -> Chain {
    let mut c = Chain::new();
    // What is physically on each store's shelf (good units).
    let mut shelf = [i64::from(INITIAL); 2];
    for (i, &(who, what, n)) in schedule.iter().enumerate() {
        let id = format!("M-{i}");
        match (what, who) {
            (0, s @ 1..=2) => {
                let sent = c.act(
                    s,
                    Payload::TransferDispatch {
                        transfer: mid(&id),
                        store: store(s - 1),
                        to: store(s),
                        lines: line(n.max(1)),
                    },
                );
                if sent.is_ok() {
                    shelf[s - 1] -= i64::from(n.max(1));
                }
            }
            (1, s @ 1..=2) => {
                let here = store(s - 1);
                let open: Vec<(MotionKind, MotionId, Option<StoreId>, u32)> = c.replicas[s]
                    .state()
                    .shipments
                    .values()
                    .chain(c.replicas[s].state().transfers.values())
                    .filter(|m| m.received.is_none() && left_sender(&c, m))
                    .filter_map(|m| m.sent.as_ref().map(|x| (m, x)))
                    .filter(|(_, x)| x.to == here)
                    .map(|(m, x)| (m.kind, m.id.clone(), x.from.clone(), x.lines[0].qty))
                    .collect();
                if let Some((kind, id, from, sent)) = open.first().cloned() {
                    let over = n == 7;
                    let received = if over {
                        sent + 1
                    } else {
                        sent.saturating_sub(n % 3)
                    };
                    let damaged = (n % 2).min(received);
                    shelf[s - 1] += i64::from(received - damaged);
                    let lines = receipt(received, damaged);
                    match (kind, from) {
                        (MotionKind::Transfer, Some(from)) => {
                            receive_transfer(&mut c, s, &id, from, lines, over)
                        }
                        _ => c.act(
                            s,
                            Payload::ShipmentReceive {
                                shipment: id,
                                store: here,
                                lines,
                                over_delivery: over,
                            },
                        ),
                    }
                    .expect("a receipt of a visible movement is valid");
                }
            }
            (2, _) => c
                .act(
                    0,
                    Payload::ShipmentNotice {
                        shipment: mid(&id),
                        store: store(who),
                        reference: "ASN".into(),
                        lines: line(n.max(1)),
                    },
                )
                .expect("a notice is valid"),
            (3, s @ 1..=2) => c.sync(s, 0),
            (5, _) => {
                let _ = hq_order(&mut c, &id, who % 2, n.max(1));
            }
            (6, s @ 1..=2) => {
                let _ = c.act(
                    s,
                    Payload::StockTransfer {
                        store: store(s - 1),
                        sku: sku(),
                        to: ActorId::hq(),
                        qty: n.max(1),
                    },
                );
            }
            (7, _) => {
                let open = c.replicas[0]
                    .state()
                    .orders
                    .values()
                    .find(|o| o.status.is_open())
                    .map(|o| (o.id.clone(), o.store.clone()));
                if let Some((order_id, store)) = open {
                    c.act(
                        0,
                        Payload::OrderCancel {
                            order_id,
                            store,
                            kind: CancelKind::Cancelled,
                        },
                    )
                    .expect("HQ cancels an open order");
                }
            }
            (8, s @ 1..=2) => {
                for p in super::reaction::plan_releases(c.replicas[s].state(), &store(s - 1)) {
                    c.act(s, p).expect("a release the store planned is valid");
                }
            }
            (9, s @ 1..=2) => {
                let here = store(s - 1);
                let st = c.replicas[s].state();
                let open = st.awaiting_dispatch().find_map(|m| {
                    let order = st
                        .orders
                        .get(&OrderId::parse(&m.sent.as_ref()?.reference).ok()?)?;
                    order.status.is_open().then(|| m.id.clone())
                });
                let dispatch = open.and_then(|t| dispatch_of(st, &t, &here));
                if let Some(p) = dispatch {
                    let qty = match &p {
                        Payload::ShipDispatch { transfer, .. } => st.transfers[transfer]
                            .sent
                            .as_ref()
                            .map_or(0, |x| x.lines[0].qty),
                        _ => 0,
                    };
                    c.act(s, p)
                        .expect("a dispatch of a waiting open order is valid");
                    shelf[s - 1] -= i64::from(qty);
                }
            }
            (_, s) => c.sync(0, s.max(1)),
        }
        for r in &c.replicas {
            for s in 0..2 {
                assert!(r.state().available(&store(s), &sku()) >= 0);
                assert!(r.state().rights(&store(s), &sku(), r.actor()) >= 0);
            }
        }
        for s in 1..=2 {
            let st = c.replicas[s].state();
            assert_eq!(
                st.on_hand(&store(s - 1), &sku()),
                shelf[s - 1],
                "{} sees its shelf as it is",
                store(s - 1)
            );
            let count = plan_count(st, &store(s - 1), &sku(), shelf[s - 1] as u32);
            assert_eq!(
                count.len(),
                1,
                "a count neither re-adds nor loses units: {count:?}"
            );
        }
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn dispatch_and_receipt_never_create_or_lose_units_under_partitions(schedule in steps()) {
        let mut c = run(&schedule);
        c.sync_all();
        let digest = c.replicas[0].digest();
        for r in &c.replicas {
            prop_assert_eq!(r.digest(), digest);
            prop_assert_eq!(&r.state().transfers, &c.replicas[0].state().transfers);
            prop_assert_eq!(&r.state().shipments, &c.replicas[0].state().shipments);
        }
        let st = c.replicas[0].state();
        let shipped_good: i64 = st
            .shipments
            .values()
            .flat_map(|m| m.balance())
            .map(|b| i64::from(b.received) - i64::from(b.damaged))
            .sum();
        let mut in_motion = 0i64;
        for b in st.transfers.values().flat_map(|m| m.balance()) {
            prop_assert_eq!(
                i64::from(b.received) + i64::from(b.in_transit) + b.lost,
                i64::from(b.dispatched)
            );
            prop_assert!(b.dispatched + b.awaiting_dispatch <= b.sent);
            in_motion += i64::from(b.in_transit) + b.lost + i64::from(b.damaged);
        }
        let available: i64 = (0..2).map(|s| st.available(&store(s), &sku())).sum();
        let held: i64 = (0..2)
            .map(|s| (st.reserved(&store(s), &sku()) + st.outgoing(&store(s), &sku())) as i64)
            .sum();
        for o in st.orders.values() {
            prop_assert!(o.units_here(&sku()) <= o.lines[&sku()].qty);
        }
        prop_assert_eq!(
            i64::from(INITIAL) * 2 + shipped_good,
            available + in_motion + held,
            "schedule {:?}", schedule
        );
    }
}

#[test]
fn a_transfer_leaves_the_senders_rights_at_dispatch_and_shows_in_transit() {
    let mut c = Chain::new();
    c.act(
        1,
        Payload::TransferDispatch {
            transfer: mid("T-1"),
            store: store(0),
            to: store(1),
            lines: line(4),
        },
    )
    .unwrap();
    let madrid = c.replicas[1].state();
    assert_eq!(madrid.available(&store(0), &sku()), 6);
    assert_eq!(in_transit(madrid, &store(1), &sku()), 4);
    c.sync(1, 0);
    assert_eq!(in_transit(c.replicas[0].state(), &store(1), &sku()), 4);
    c.sync(0, 2);
    c.act(
        2,
        Payload::TransferReceive {
            transfer: mid("T-1"),
            store: store(1),
            from: store(0),
            lines: receipt(3, 0),
            over_delivery: false,
        },
    )
    .unwrap();
    let sevilla = c.replicas[2].state();
    assert_eq!(sevilla.available(&store(1), &sku()), 13);
    assert_eq!(in_transit(sevilla, &store(1), &sku()), 0);
    let short = sevilla.transfers[&mid("T-1")].discrepancies();
    assert_eq!(short.len(), 1);
    assert_eq!(short[0].lost, 1);
}

#[test]
fn bad_transfers_and_receipts_are_refused_with_nothing_changed() {
    let mut c = Chain::new();
    let before = c.replicas[1].digest();
    let to_itself = c.act(
        1,
        Payload::TransferDispatch {
            transfer: mid("T-1"),
            store: store(0),
            to: store(0),
            lines: line(1),
        },
    );
    assert_eq!(to_itself, Err(DomainError::SameStore(store(0))));
    let zero = c.act(
        1,
        Payload::TransferDispatch {
            transfer: mid("T-1"),
            store: store(0),
            to: store(1),
            lines: line(0),
        },
    );
    assert!(
        matches!(zero, Err(DomainError::InvalidQty { .. })),
        "{zero:?}"
    );
    let too_many = c.act(
        1,
        Payload::TransferDispatch {
            transfer: mid("T-1"),
            store: store(0),
            to: store(1),
            lines: line(INITIAL + 1),
        },
    );
    assert!(matches!(
        too_many,
        Err(DomainError::InsufficientStock { .. })
    ));
    assert_eq!(c.replicas[1].digest(), before, "nothing changed");

    c.act(
        1,
        Payload::TransferDispatch {
            transfer: mid("T-1"),
            store: store(0),
            to: store(1),
            lines: line(2),
        },
    )
    .unwrap();
    c.sync(1, 0);
    c.sync(0, 2);
    let over = c.act(
        2,
        Payload::TransferReceive {
            transfer: mid("T-1"),
            store: store(1),
            from: store(0),
            lines: receipt(3, 0),
            over_delivery: false,
        },
    );
    assert!(matches!(
        over,
        Err(DomainError::OverDelivery { sent: 2, .. })
    ));
    let wrong = c.act(
        1,
        Payload::TransferReceive {
            transfer: mid("T-1"),
            store: store(0),
            from: store(0),
            lines: receipt(2, 0),
            over_delivery: false,
        },
    );
    assert!(matches!(wrong, Err(DomainError::WrongStore { .. })));
    let ok = Payload::TransferReceive {
        transfer: mid("T-1"),
        store: store(1),
        from: store(0),
        lines: receipt(3, 1),
        over_delivery: true,
    };
    c.act(2, ok.clone()).unwrap();
    assert!(matches!(
        c.act(2, ok),
        Err(DomainError::AlreadyReceived { .. })
    ));
    assert_eq!(c.replicas[2].state().available(&store(1), &sku()), 12);
}

#[test]
fn a_shipment_is_received_once_by_its_store_only() {
    let mut c = Chain::new();
    c.act(
        0,
        Payload::ShipmentNotice {
            shipment: mid("S-1"),
            store: store(0),
            reference: "ASN-77".into(),
            lines: line(5),
        },
    )
    .unwrap();
    c.sync_all();
    let at_sevilla = c.act(
        2,
        Payload::ShipmentReceive {
            shipment: mid("S-1"),
            store: store(1),
            lines: receipt(5, 0),
            over_delivery: false,
        },
    );
    assert!(matches!(at_sevilla, Err(DomainError::WrongStore { .. })));
    let unknown = c.act(
        1,
        Payload::ShipmentReceive {
            shipment: mid("S-9"),
            store: store(0),
            lines: receipt(5, 0),
            over_delivery: false,
        },
    );
    assert!(matches!(unknown, Err(DomainError::UnknownMovement { .. })));
    let good = Payload::ShipmentReceive {
        shipment: mid("S-1"),
        store: store(0),
        lines: receipt(5, 2),
        over_delivery: false,
    };
    c.act(1, good.clone()).unwrap();
    assert_eq!(c.replicas[1].state().available(&store(0), &sku()), 13);
    assert!(matches!(
        c.act(1, good),
        Err(DomainError::AlreadyReceived { .. })
    ));
    c.sync_all();
    let at_hq = &c.replicas[0].state().shipments[&mid("S-1")];
    assert_eq!(at_hq.status(), "received");
    assert_eq!(at_hq.balance()[0].damaged, 2);
}
