//! The lease task of a syncing HQ process among several (`[storage] url`, every process with
//! `sync = true`): it runs a round of `store::pg::lease::Leases` every `LEASE_ROUND` and
//! publishes the stores this process serves, with their epochs, on a watch channel that the
//! sync engine feeds to `HqProtocol::handle_leases`. The set empties by itself when the last
//! successful round is too old (PostgreSQL unreachable), and a clean stop gives every lease
//! back so another process serves the stores at once.

use crate::domain::StoreId;
use crate::store::pg::lease::{Leases, LEASE_ROUND};
use std::collections::BTreeMap;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

/// The stores served now and their lease epochs.
pub type Held = BTreeMap<StoreId, u64>;

/// Start the lease task; it runs until `shutdown` turns true.
pub fn spawn_leases(
    mut leases: Leases,
    mut shutdown: watch::Receiver<bool>,
) -> (watch::Receiver<Held>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(Held::new());
    let task = tokio::spawn(async move {
        let mut round = tokio::time::interval(LEASE_ROUND);
        round.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            let lapse = leases.valid_until();
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = round.tick() => match leases.round().await {
                    Ok(()) => failing = false,
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, "cannot renew the store leases");
                        }
                        failing = true;
                    }
                },
                _ = sleep_until(lapse.unwrap_or_else(Instant::now)), if lapse.is_some() => {}
            }
            let held = leases.held(Instant::now());
            tx.send_if_modified(|now| {
                let changed = *now != held;
                *now = held;
                changed
            });
        }
        tx.send_replace(Held::new());
        if let Err(e) = leases.release_all().await {
            tracing::warn!(error = %e, "cannot give the store leases back; they expire");
        }
    });
    (rx, task)
}
