//! Tests of the till domain: promotions (by sku and by category) are deterministic, rounding
//! is cent-exact over random tickets, and a cash session's Z report is the same at the store
//! and at HQ.
//!
//! Over 500 lines on purpose: one flat list of the till's domain cases (pricing, rounding,
//! promotions, cash) sharing a few builders; split, they would only scatter the builders.

use super::pricing::{net_lines, price, TillLine};
use super::promotion::{percent_of, Promotion, PromotionError, PromotionKind, Promotions};
use super::CashMoveKind;
use crate::domain::catalog::Marker;
use crate::domain::fiscal::record::vat_lines;
use crate::domain::ids::*;
use crate::domain::op::*;
use crate::domain::replica::Replica;
use crate::domain::{DomainError, Hlc};
use proptest::prelude::*;

const SKUS: [&str; 4] = ["SKU-A", "SKU-B", "SKU-C", "SKU-D"];
const EANS: [&str; 4] = [
    "4006381333931",
    "8410000000016",
    "8412345678905",
    "5901234123457",
];

pub(super) fn sku(i: usize) -> Sku {
    Sku::parse(SKUS[i % SKUS.len()]).unwrap()
}

const CATEGORIES: [&str; 2] = ["bebidas", "drogueria"];

/// The test catalog's category of sku `i`: SKU-A and SKU-C are drinks, the others household.
fn category(i: usize) -> Category {
    Category::parse(CATEGORIES[i % CATEGORIES.len()]).unwrap()
}

fn promo(id: &str, kind: PromotionKind, skus: &[usize], priority: u32) -> Promotion {
    Promotion {
        id: PromotionId::parse(id).unwrap(),
        name: format!("promo {id}"),
        kind,
        skus: skus.iter().map(|i| sku(*i)).collect(),
        starts_ms: 1_000,
        ends_ms: 2_000,
        priority,
        categories: Vec::new(),
    }
}

/// A promotion on every sku of the categories `cats` (indices into `CATEGORIES`).
fn category_promo(id: &str, kind: PromotionKind, cats: &[usize], priority: u32) -> Promotion {
    Promotion {
        skus: Vec::new(),
        categories: cats.iter().map(|i| category(*i)).collect(),
        ..promo(id, kind, &[], priority)
    }
}

fn marker(t: u64) -> Marker {
    (Hlc::new(t, 0), ActorId::hq())
}

fn line(i: usize, qty: u32, unit_cents: i64, manual_bp: u32) -> TillLine {
    TillLine {
        sku: sku(i),
        qty,
        unit_cents,
        vat_bp: [2100, 1000, 400, 0][i % 4],
        manual_bp,
        category: Some(category(i)),
    }
}

#[test]
fn three_for_two_and_second_unit_half_price_round_half_up() {
    let p = promo("P1", PromotionKind::NForM { n: 3, m: 2 }, &[0], 1);
    assert_eq!(
        p.discount_cents(7, 100),
        200,
        "two groups of three: two free"
    );
    let half = promo("P2", PromotionKind::SecondUnit { bp: 5_000 }, &[0], 1);
    assert_eq!(half.discount_cents(3, 999), 500, "499.5 rounds up, once");
    assert_eq!(percent_of(1, 5_000), 1);
    assert_eq!(percent_of(3, 1_000), 0);
}

#[test]
fn the_highest_priority_promotion_wins_then_the_largest_then_the_smallest_id() {
    let mut book = Promotions::default();
    book.put(
        promo("LOW", PromotionKind::Percent { bp: 5_000 }, &[0], 1),
        marker(1),
    );
    book.put(
        promo("HIGH", PromotionKind::Percent { bp: 1_000 }, &[0], 9),
        marker(1),
    );
    book.put(
        promo("B", PromotionKind::Percent { bp: 2_000 }, &[1], 5),
        marker(1),
    );
    book.put(
        promo("A", PromotionKind::Percent { bp: 2_000 }, &[1], 5),
        marker(1),
    );
    let p = price(
        &book,
        1_500,
        &[line(0, 1, 1_000, 0), line(1, 1, 1_000, 0)],
        0,
    );
    assert_eq!(p.lines[0].promotion.as_ref().unwrap().as_str(), "HIGH");
    assert_eq!(p.lines[0].promotion_cents, 100);
    assert_eq!(p.lines[1].promotion.as_ref().unwrap().as_str(), "A");
    let outside = price(&book, 2_000, &[line(0, 1, 1_000, 0)], 0);
    assert_eq!(outside.lines[0].promotion, None, "ends is exclusive");
}

#[test]
fn a_category_promotion_reaches_every_sku_of_the_category_and_competes_by_priority() {
    let mut book = Promotions::default();
    book.put(
        category_promo("DRINKS", PromotionKind::Percent { bp: 1_000 }, &[0], 5),
        marker(1),
    );
    book.put(
        promo("SKU-A-HALF", PromotionKind::Percent { bp: 5_000 }, &[0], 1),
        marker(1),
    );
    book.put(
        promo("SKU-C-HALF", PromotionKind::Percent { bp: 5_000 }, &[2], 5),
        marker(1),
    );
    let ticket = [
        line(0, 1, 1_000, 0),
        line(1, 1, 1_000, 0),
        line(2, 1, 1_000, 0),
    ];
    let p = price(&book, 1_500, &ticket, 0);
    let applied: Vec<Option<&str>> = p
        .lines
        .iter()
        .map(|l| l.promotion.as_ref().map(PromotionId::as_str))
        .collect();
    assert_eq!(
        applied,
        [Some("DRINKS"), None, Some("SKU-C-HALF")],
        "SKU-A: the category's priority 5 beats the sku's 1; SKU-B is not a drink; SKU-C: \
         equal priorities, the larger discount"
    );
    assert_eq!(p.lines[0].promotion_cents, 100);
    assert_eq!(p.lines[2].promotion_cents, 500);
    let mut uncategorised = line(0, 1, 1_000, 0);
    uncategorised.category = None;
    let p = price(&book, 1_500, &[uncategorised], 0);
    assert_eq!(
        p.lines[0].promotion.as_ref().map(PromotionId::as_str),
        Some("SKU-A-HALF"),
        "a sku with no category gets only what names it"
    );
}

#[test]
fn a_later_write_of_a_promotion_replaces_it_and_an_older_one_changes_nothing() {
    let mut book = Promotions::default();
    let mut p = promo("P", PromotionKind::Percent { bp: 1_000 }, &[0], 1);
    book.put(p.clone(), marker(5));
    p.kind = PromotionKind::Percent { bp: 9_000 };
    book.put(p.clone(), marker(3));
    assert_eq!(
        book.iter().next().unwrap().kind,
        PromotionKind::Percent { bp: 1_000 }
    );
    p.kind = PromotionKind::Percent { bp: 2_000 };
    book.put(p, marker(7));
    assert_eq!(
        book.iter().next().unwrap().kind,
        PromotionKind::Percent { bp: 2_000 }
    );
}

#[test]
fn a_promotion_with_an_empty_or_inverted_range_names_the_ends_field() {
    let mut p = promo("P", PromotionKind::Percent { bp: 1_000 }, &[0], 1);
    p.ends_ms = p.starts_ms;
    let e = p.check().unwrap_err();
    assert!(matches!(e, PromotionError::Range { .. }));
    assert_eq!(e.field(), "ends");
    let mut q = promo("Q", PromotionKind::NForM { n: 2, m: 2 }, &[0], 1);
    assert_eq!(q.check().unwrap_err().field(), "n");
    q.kind = PromotionKind::Percent { bp: 10_001 };
    assert_eq!(q.check().unwrap_err().field(), "percent");
    q.kind = PromotionKind::Percent { bp: 1_000 };
    q.skus.clear();
    assert_eq!(q.check().unwrap_err().field(), "skus");
    q.categories.push(category(0));
    assert_eq!(q.check(), Ok(()), "a category is a target too");
}

fn kinds() -> impl Strategy<Value = PromotionKind> {
    prop_oneof![
        (1u32..=10_000).prop_map(|bp| PromotionKind::Percent { bp }),
        (2u32..6)
            .prop_flat_map(|n| (Just(n), 1..n))
            .prop_map(|(n, m)| PromotionKind::NForM { n, m }),
        (1u32..=10_000).prop_map(|bp| PromotionKind::SecondUnit { bp }),
    ]
}

/// Random promotions on skus, categories or both, each with the time HQ wrote it.
fn promotions() -> impl Strategy<Value = Vec<(Promotion, u64)>> {
    prop::collection::vec(
        (
            kinds(),
            prop::collection::vec(0usize..4, 0..3),
            prop::collection::vec(0usize..2, 0..2),
            0u32..4,
            0u8..6,
            1u64..50,
        ),
        0..8,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(kind, skus, cats, priority, id, t)| {
                let skus = if skus.is_empty() && cats.is_empty() {
                    vec![0]
                } else {
                    skus
                };
                let mut p = promo(&format!("P{id}"), kind, &skus, priority);
                p.categories = cats.iter().map(|i| category(*i)).collect();
                (p, t)
            })
            .collect()
    })
}

/// Random category writes at HQ: (sku, category or cleared, time).
fn category_writes() -> impl Strategy<Value = Vec<(usize, Option<usize>, u64)>> {
    prop::collection::vec((0usize..4, prop::option::of(0usize..2), 1u64..50), 0..6)
}

fn tickets() -> impl Strategy<Value = (Vec<TillLine>, u32)> {
    (
        prop::collection::vec(
            (
                0usize..4,
                1u32..20,
                0i64..100_000,
                prop_oneof![Just(0u32), 0u32..=10_000],
            ),
            1..8,
        ),
        prop_oneof![Just(0u32), 0u32..=10_000],
    )
        .prop_map(|(lines, ticket_bp)| {
            let mut seen = Vec::new();
            let lines = lines
                .into_iter()
                .filter(|(i, ..)| {
                    let fresh = !seen.contains(i);
                    seen.push(*i);
                    fresh
                })
                .map(|(i, q, u, m)| line(i, q, u, m))
                .collect();
            (lines, ticket_bp)
        })
}

fn sale_lines(lines: &[TillLine]) -> Vec<SaleLine> {
    lines
        .iter()
        .map(|l| SaleLine {
            sku: l.sku.clone(),
            qty: l.qty,
            unit_cents: l.unit_cents,
            vat_bp: l.vat_bp,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// Sum of lines = ticket total; nothing lost or invented; VAT base + VAT = total per rate.
    #[test]
    fn rounding_never_loses_or_invents_a_cent_over_10000_random_tickets(
        promos in promotions(),
        (lines, ticket_bp) in tickets(),
        now in 900u64..2_100,
    ) {
        let mut book = Promotions::default();
        for (p, t) in promos {
            book.put(p, marker(t));
        }
        let pricing = price(&book, now, &lines, ticket_bp);
        let sold = sale_lines(&lines);
        let nets = net_lines(&sold, Some(&pricing));
        let gross: i64 = sold.iter().map(|l| l.unit_cents * i64::from(l.qty)).sum();
        let total: i64 = nets.iter().sum();
        prop_assert_eq!(gross - pricing.discount_cents(), total);
        for (net, (l, d)) in nets.iter().zip(sold.iter().zip(&pricing.lines)) {
            prop_assert!(*net >= 0);
            prop_assert_eq!(*net, l.unit_cents * i64::from(l.qty) - d.cents());
        }
        let after_lines: i64 = sold
            .iter()
            .zip(&pricing.lines)
            .map(|(l, d)| l.unit_cents * i64::from(l.qty) - d.promotion_cents - d.manual_cents)
            .sum();
        let ticket: i64 = pricing.lines.iter().map(|d| d.ticket_cents).sum();
        prop_assert_eq!(ticket, percent_of(after_lines, ticket_bp));
        let vat = vat_lines(sold.iter().zip(&nets).map(|(l, n)| (*n, l.vat_bp)));
        prop_assert_eq!(vat.iter().map(|v| v.base_cents + v.cuota_cents).sum::<i64>(), total);
        for v in &vat {
            let per_rate: i64 = sold
                .iter()
                .zip(&nets)
                .filter(|(l, _)| l.vat_bp == v.vat_bp)
                .map(|(_, n)| *n)
                .sum();
            prop_assert_eq!(v.base_cents + v.cuota_cents, per_rate);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Two replicas that received HQ's promotion and category writes in different orders
    /// price the same ticket to the same cents, each with the categories its catalog holds.
    #[test]
    fn the_same_sale_at_two_replicas_gives_the_same_totals(
        promos in promotions(),
        writes in category_writes(),
        (lines, ticket_bp) in tickets(),
        now in 900u64..2_100,
    ) {
        let mut hq = Replica::new(ActorId::hq());
        let mut ops: Vec<Op> = Vec::new();
        for (i, e) in EANS.iter().enumerate() {
            let put = Payload::CatalogPut {
                sku: sku(i),
                ean: Ean13::parse(e).unwrap(),
                name: format!("p{i}"),
                price_cents: 1_000,
                vat_bp: 2_100,
            };
            ops.push(hq.prepare(1, put).unwrap().0);
        }
        let categorise = writes.into_iter().map(|(i, c, t)| {
            (t, Payload::CatalogCategory { sku: sku(i), category: c.map(category) })
        });
        let promote = promos
            .into_iter()
            .map(|(promotion, t)| (t, Payload::PromotionSet { promotion }));
        ops.extend(
            categorise
                .chain(promote)
                .filter_map(|(t, payload)| hq.prepare(t, payload).ok())
                .map(|(op, _)| op),
        );
        let mut a = Replica::new(StoreId::parse("madrid-centro").unwrap().actor());
        let mut b = Replica::new(StoreId::parse("sevilla-nervion").unwrap().actor());
        for op in &ops {
            a.apply(op).unwrap();
        }
        for op in ops.iter().rev() {
            b.apply(op).unwrap();
        }
        let at = |r: &Replica| -> Vec<TillLine> {
            lines
                .iter()
                .map(|l| TillLine {
                    category: r.state().catalog.category(&l.sku).cloned(),
                    ..l.clone()
                })
                .collect()
        };
        let pa = price(&a.state().promotions, now, &at(&a), ticket_bp);
        let pb = price(&b.state().promotions, now, &at(&b), ticket_bp);
        prop_assert_eq!(pa, pb);
    }
}

/// A store with the catalog and stock, and HQ holding the same ops.
pub(super) fn store_and_hq() -> (Replica, Replica, StoreId, Vec<Op>) {
    let mut log = Vec::new();
    let mut hq = Replica::new(ActorId::hq());
    let store = StoreId::parse("madrid-centro").unwrap();
    let mut st = Replica::new(store.actor());
    for (i, e) in EANS.iter().enumerate() {
        let (op, _) = hq
            .prepare(
                1,
                Payload::CatalogPut {
                    sku: sku(i),
                    ean: Ean13::parse(e).unwrap(),
                    name: format!("p{i}"),
                    price_cents: 1_000,
                    vat_bp: 2_100,
                },
            )
            .unwrap();
        st.apply(&op).unwrap();
    }
    for i in 0..SKUS.len() {
        let receive = Payload::StockReceive {
            store: store.clone(),
            sku: sku(i),
            qty: 50,
            reason: ReceiveReason::Delivery,
        };
        log.push(st.prepare(2, receive).unwrap().0);
    }
    (st, hq, store, log)
}

pub(super) fn session(id: &str) -> CashSessionId {
    CashSessionId::parse(id).unwrap()
}

#[test]
fn a_session_counts_its_sales_returns_and_movements_and_hq_reports_the_same() {
    let (mut st, mut hq, store, mut log) = store_and_hq();
    let open = |id: &str, float_cents| Payload::CashOpen {
        store: store.clone(),
        session: session(id),
        float_cents,
        staff: "1001".into(),
        opened_ms: 10,
    };
    issue(&mut st, &mut log, 10, open("Z1", 10_000));
    assert_eq!(
        st.prepare(11, open("Z2", 0)).unwrap_err(),
        DomainError::CashSessionOpen(session("Z1"))
    );
    let mut book = Promotions::default();
    book.put(
        promo("P", PromotionKind::Percent { bp: 1_000 }, &[0], 1),
        marker(1),
    );
    let lines = [line(0, 3, 1_000, 0), line(1, 1, 1_000, 0)];
    let pricing = price(&book, 1_500, &lines, 500);
    let sale = SaleId::parse("S1").unwrap();
    let mut sold = sale_lines(&lines);
    for l in &mut sold {
        l.vat_bp = 2_100;
    }
    issue(
        &mut st,
        &mut log,
        12,
        Payload::SalePriced {
            store: store.clone(),
            sale_id: sale.clone(),
            pricing: pricing.clone(),
        },
    );
    issue(
        &mut st,
        &mut log,
        12,
        Payload::Sale {
            store: store.clone(),
            sale_id: sale.clone(),
            lines: sold,
            tender: Tender::Cash,
            customer: None,
        },
    );
    let paid = st.state().sales[&sale].total_cents();
    // 3 x 10.00 - 10 % = 27.00, + 10.00 = 37.00, - 5 % = 35.15.
    assert_eq!(paid, 3_515);
    let refund = st.state().discounted_refund(&sale, &sku(0), 3).unwrap();
    let whole: i64 = st.state().sales[&sale].net_lines()[0];
    assert_eq!(
        refund, whole,
        "returning every unit refunds exactly what was paid"
    );
    let refund_1 = st.state().discounted_refund(&sale, &sku(0), 1).unwrap();
    assert_eq!(
        refund_1,
        whole / 3,
        "the first unit back refunds a third, rounded down"
    );
    issue(
        &mut st,
        &mut log,
        13,
        Payload::Return {
            store: store.clone(),
            return_id: ReturnId::parse("R1").unwrap(),
            sale: sale.clone(),
            sale_store: Some(store.clone()),
            lines: vec![ReturnLine {
                sku: sku(0),
                qty: 1,
                restock: true,
                refund_cents: refund_1,
            }],
            tender: Tender::Cash,
            verified: true,
            customer: None,
        },
    );
    let out = Payload::CashMove {
        store: store.clone(),
        session: session("Z1"),
        kind: CashMoveKind::Out,
        cents: 2_000,
        reason: "bank".into(),
        staff: "1001".into(),
    };
    issue(&mut st, &mut log, 14, out);
    let no_reason = Payload::CashMove {
        store: store.clone(),
        session: session("Z1"),
        kind: CashMoveKind::In,
        cents: 100,
        reason: "  ".into(),
        staff: "1001".into(),
    };
    assert!(matches!(
        st.prepare(15, no_reason).unwrap_err(),
        DomainError::InvalidField {
            field: "reason",
            ..
        }
    ));
    let close = |counted_cents| Payload::CashClose {
        store: store.clone(),
        session: session("Z1"),
        counted_cents,
        staff: "1001".into(),
        closed_ms: 20,
    };
    issue(&mut st, &mut log, 20, close(10_700));
    assert_eq!(
        st.prepare(21, close(0)).unwrap_err(),
        DomainError::NoCashSession
    );
    let z = st.state().cash.sessions[&session("Z1")].report();
    assert_eq!(z.expected_cents, 10_000 + 3_515 - refund_1 - 2_000);
    assert_eq!(z.sales, 1);
    assert_eq!(z.returns, 1);
    assert_eq!(z.returns_cents, refund_1);
    assert_eq!(z.by_tender[&Tender::Cash], 3_515 - refund_1);
    assert_eq!(z.discounts_cents, 4_000 - 3_515);
    assert_eq!(
        z.vat
            .iter()
            .map(|v| v.base_cents + v.cuota_cents)
            .sum::<i64>(),
        3_515 - refund_1
    );
    assert_eq!(z.difference_cents(), Some(10_700 - z.expected_cents));
    // HQ applies the store's log in its order and reports the same session.
    for op in &log {
        hq.apply(op).unwrap();
    }
    assert_eq!(hq.state().cash.sessions[&session("Z1")].report(), z);
}

/// Issue a local op at the store and keep it, as the store's op log would.
pub(super) fn issue(st: &mut Replica, log: &mut Vec<Op>, now_ms: u64, payload: Payload) {
    let (op, _) = st.prepare(now_ms, payload).unwrap();
    log.push(op);
}

#[test]
fn a_discounted_sale_applied_at_another_store_shows_what_was_paid() {
    let (mut st, _, store, mut log) = store_and_hq();
    let lines = [line(0, 2, 1_000, 0)];
    let pricing = price(&Promotions::default(), 1_500, &lines, 1_000);
    let sale = SaleId::parse("S-H").unwrap();
    let priced = Payload::SalePriced {
        store: store.clone(),
        sale_id: sale.clone(),
        pricing,
    };
    issue(&mut st, &mut log, 12, priced);
    let sold = Payload::Sale {
        store: store.clone(),
        sale_id: sale.clone(),
        lines: sale_lines(&lines),
        tender: Tender::Card,
        customer: Some(CustomerId::parse("C-1").unwrap()),
    };
    issue(&mut st, &mut log, 12, sold);
    // Another store gets the sale as purchase history with its pricing (`sync::route`).
    let mut other = Replica::new(StoreId::parse("sevilla-nervion").unwrap().actor());
    for op in &log {
        other.apply(op).unwrap();
    }
    assert_eq!(st.state().sales[&sale].total_cents(), 1_800);
    assert_eq!(
        other.state().sales[&sale].total_cents(),
        1_800,
        "not the list 20.00"
    );
}
