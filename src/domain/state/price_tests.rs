//! `State::price_at` keeps only superseded prices beside the catalog's register; it must answer
//! exactly what a log of every price put would, whatever order the puts merge in.

use super::State;
use crate::domain::hlc::Hlc;
use crate::domain::ids::{ActorId, Ean13, Sku};
use crate::domain::op::{Op, Payload};
use proptest::prelude::*;

fn put(seq: u64, wall_ms: u64, actor: &ActorId, price_cents: i64) -> Op {
    Op {
        actor: actor.clone(),
        seq,
        hlc: Hlc::new(wall_ms, 0),
        payload: Payload::CatalogPut {
            sku: Sku::parse("SKU-1").unwrap(),
            ean: Ean13::parse("4006381333931").unwrap(),
            name: "Café".into(),
            price_cents,
            vat_bp: 2100,
        },
    }
}

/// The definition: the price of the greatest `(hlc, actor)` put with an HLC below `at`.
fn price_by_full_log(ops: &[Op], at: Hlc) -> Option<(Hlc, i64)> {
    ops.iter()
        .filter(|op| op.hlc < at)
        .max_by(|a, b| (a.hlc, &a.actor).cmp(&(b.hlc, &b.actor)))
        .map(|op| match &op.payload {
            Payload::CatalogPut { price_cents, .. } => (op.hlc, *price_cents),
            _ => unreachable!("only puts are generated"),
        })
}

#[test]
fn a_sku_priced_once_keeps_no_superseded_price() {
    let mut state = State::default();
    state.merge(&put(1, 10, &ActorId::hq(), 150), &mut Vec::new());
    assert!(state.price_log.is_empty());
    let sku = Sku::parse("SKU-1").unwrap();
    assert_eq!(
        state.price_at(&sku, Hlc::new(11, 0)),
        Some((Hlc::new(10, 0), 150))
    );
    assert_eq!(state.price_at(&sku, Hlc::new(10, 0)), None);
}

proptest! {
    #[test]
    fn price_at_answers_as_a_full_log_of_puts_in_any_merge_order(
        puts in proptest::collection::vec((1u64..20, any::<bool>(), 1i64..500), 1..12),
        order in any::<prop::sample::Index>(),
        at_ms in 0u64..22,
    ) {
        let actors = [ActorId::hq(), ActorId::parse("store:madrid").unwrap()];
        // Distinct (hlc, actor) per put: one actor never issues the same HLC twice.
        let mut seen = std::collections::BTreeSet::new();
        let ops: Vec<Op> = puts
            .iter()
            .enumerate()
            .filter(|(_, (ms, second, _))| seen.insert((*ms, *second)))
            .map(|(i, (ms, second, price))| {
                put(i as u64 + 1, *ms, &actors[usize::from(*second)], *price)
            })
            .collect();
        let mut shuffled = ops.clone();
        shuffled.rotate_left(order.index(ops.len()));
        shuffled[..ops.len() / 2].reverse();
        let mut state = State::default();
        for op in &shuffled {
            state.merge(op, &mut Vec::new());
        }
        let sku = Sku::parse("SKU-1").unwrap();
        for at in [Hlc::new(at_ms, 0), Hlc::new(at_ms, 1)] {
            prop_assert_eq!(state.price_at(&sku, at), price_by_full_log(&ops, at));
        }
        let superseded = state.price_log.get(&sku).map_or(0, Vec::len);
        prop_assert_eq!(superseded, ops.len() - 1);
    }
}
