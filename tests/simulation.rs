//! Deterministic simulation of HQ and stores under loss, duplication, reordering, partitions
//! and crashes (see `sim/mod.rs`), with deliveries, transfers and ship-to-store orders. `SIM_SEEDS=<n>` runs more seeds (long mode, from
//! `SIM_SEED_START`, default 0), `SIM_SEED=<n>` replays one seed; a failing seed is printed.

mod sim;

use std::time::Instant;

/// Steps of local actions, syncs, deliveries and faults per seed.
const STEPS: usize = 500;

fn seeds(default: u64) -> Vec<u64> {
    if let Ok(one) = std::env::var("SIM_SEED") {
        return vec![one.parse().expect("SIM_SEED is a number")];
    }
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let n = env("SIM_SEEDS").unwrap_or(default);
    // `SIM_SEED_START` splits a long run across processes (cores).
    let start = env("SIM_SEED_START").unwrap_or(0);
    (start..start + n).collect()
}

#[test]
fn a_thousand_seeds_of_faults_converge_without_overselling() {
    let started = Instant::now();
    let mut total = sim::Stats::default();
    let seeds = seeds(1_000);
    for &seed in &seeds {
        total.add(&sim::run_seed(seed, STEPS, None).stats);
    }
    eprintln!(
        "{} seeds in {:?}: {total:?}",
        seeds.len(),
        started.elapsed()
    );
    // The faults and the stock limit were actually exercised.
    if seeds.len() >= 100 {
        assert!(total.lost > 0 && total.duplicated > 0 && total.crashes > 0);
        assert!(total.partitions > 0 && total.refused_stock > 0 && total.reactions > 0);
        assert!(total.forged_rejected > 0 && total.forged_down_rejected > 0);
        assert!(
            total.forged_reply_rejected > 0,
            "forged acks and replies were refused"
        );
        assert!(total.returns_verified > 0 && total.returns_unverified > 0);
        assert!(total.double_returns > 0 && total.rights_granted > 0);
        assert!(
            total.discounted_sales > 0,
            "till sales with promotions and discounts ran"
        );
        assert!(
            total.category_promoted_lines > 0,
            "promotions by category reached sale lines"
        );
        assert!(total.shipments_received > 0 && total.transfers_received > 0);
        assert!(total.transfers_short > 0 && total.ship_to_store_orders > 0);
        assert!(total.ship_to_store_arrived > 0 && total.ship_to_store_dispatched > 0);
        assert!(total.ship_to_store_ready > 0 && total.ship_to_store_handed_over > 0);
        assert!(total.ship_to_store_withdrawn > 0 && total.ship_to_store_cancelled > 0);
    }
}

#[test]
fn real_sqlite_nodes_converge_across_crashes() {
    let started = Instant::now();
    let seeds = seeds(20);
    for &seed in &seeds {
        let dir = tempfile::tempdir().expect("tempdir");
        sim::run_seed(seed, STEPS, Some(dir.path()));
    }
    eprintln!("{} SQLite seeds in {:?}", seeds.len(), started.elapsed());
}

#[test]
fn a_seed_replays_exactly() {
    let a = sim::run_seed(42, STEPS, None);
    let b = sim::run_seed(42, STEPS, None);
    assert_eq!(a, b);
    let dir = tempfile::tempdir().expect("tempdir");
    let c = sim::run_seed(42, STEPS, Some(dir.path()));
    assert_eq!(a.digests, c.digests, "SQLite and memory replicas disagree");
}

#[test]
fn the_stock_check_catches_a_store_that_sells_units_it_does_not_hold() {
    for seed in 0..5 {
        let mut world = sim::World::new(seed, STEPS, None);
        world.run_steps();
        world.forge_oversell(1);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.finish()));
        let message = caught
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .expect("the forged sale went unnoticed");
        assert!(
            message.contains("units out of") || message.contains("negative rights"),
            "{message}"
        );
    }
}
