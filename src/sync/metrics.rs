//! Counters both sync engines share, rendered for `/metrics` by the HTTP layers.
//!
//! Plain atomics, updated with relaxed ordering: a scrape may see counters from slightly
//! different instants, never torn values.

use crate::exposition::Scrape;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reasons a received payload or batch is refused, in metric label order.
pub const REJECT_REASONS: [&str; 19] = [
    "malformed",
    "oversized",
    "unknown_version",
    "too_many_ops",
    "wrong_actor",
    "unknown_store",
    "wrong_store",
    // Signed batches (`crate::signing::Rejected::reason`).
    "unsigned",
    "bad_signature",
    "signed_by_other_store",
    "topic_mismatch",
    "foreign_actor",
    // Customer lookups over a store's budget (`super::lookup`).
    "rate_limited",
    // Down-batches a store refused (`crate::signing::DownRejected::reason`).
    "down_unsigned",
    "down_bad_signature",
    // Acks and lookup replies a store refused (same type, their own labels).
    "reply_unsigned",
    "reply_bad_signature",
    // Down-batches of an earlier lease epoch than the store follows (`wire::epoch`).
    "stale_epoch",
    // Down-batches of a single HQ (epoch 0) at a store that followed a leased one.
    "single_hq",
];

/// Sync counters and gauges of one node.
#[derive(Debug, Default)]
pub struct SyncMetrics {
    /// Ops newly applied from peers.
    pub ops_applied: AtomicU64,
    /// Ops received that were already applied.
    pub ops_duplicate: AtomicU64,
    /// Ops refused by the domain (each logged).
    pub ops_rejected: AtomicU64,
    /// Ops published to the peer (resends included).
    pub ops_sent: AtomicU64,
    pub batches_sent: AtomicU64,
    pub batches_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub acks_sent: AtomicU64,
    pub acks_received: AtomicU64,
    /// Successful MQTT connections (first included).
    pub connects: AtomicU64,
    /// Publishes deferred because the MQTT request queue was full.
    pub publish_deferred: AtomicU64,
    /// Own ops not yet acknowledged by the peer (summed over stores at HQ).
    pub outbox: AtomicU64,
    /// Wall clock of the last ack or batch from the peer, ms (0 = never).
    pub last_sync_ms: AtomicU64,
    rejected: [AtomicU64; REJECT_REASONS.len()],
}

impl SyncMetrics {
    pub fn new() -> SyncMetrics {
        SyncMetrics::default()
    }

    /// Count a refused payload or batch; `reason` is one of `REJECT_REASONS`.
    pub fn reject(&self, reason: &str) {
        let i = REJECT_REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.rejected[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Refused payloads or batches for one reason.
    pub fn rejected(&self, reason: &str) -> u64 {
        REJECT_REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.rejected[i].load(Ordering::Relaxed))
    }

    /// Refused payloads or batches, all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// OpenMetrics text (`crate::exposition`), every name starting with `prefix` (e.g.
    /// `storenode_sync`).
    pub fn render_prometheus(&self, prefix: &str) -> String {
        let counters: [(&str, &AtomicU64, &str); 12] = [
            (
                "ops_applied_total",
                &self.ops_applied,
                "ops newly applied from peers",
            ),
            (
                "ops_duplicate_total",
                &self.ops_duplicate,
                "ops received twice",
            ),
            (
                "ops_rejected_total",
                &self.ops_rejected,
                "ops refused by the domain",
            ),
            ("ops_sent_total", &self.ops_sent, "ops published"),
            (
                "batches_sent_total",
                &self.batches_sent,
                "batches published",
            ),
            (
                "batches_received_total",
                &self.batches_received,
                "batches received",
            ),
            (
                "bytes_sent_total",
                &self.bytes_sent,
                "payload bytes published",
            ),
            (
                "bytes_received_total",
                &self.bytes_received,
                "payload bytes received",
            ),
            ("acks_sent_total", &self.acks_sent, "acks published"),
            ("acks_received_total", &self.acks_received, "acks received"),
            ("connects_total", &self.connects, "broker connections made"),
            (
                "publish_deferred_total",
                &self.publish_deferred,
                "publishes deferred by a full queue",
            ),
        ];
        let mut s = Scrape::new();
        for (name, value, help) in counters {
            s.counter(
                &format!("{prefix}_{name}"),
                help,
                &[],
                value.load(Ordering::Relaxed),
            );
        }
        let rejected = format!("{prefix}_batches_rejected_total");
        for (i, reason) in REJECT_REASONS.iter().enumerate() {
            let v = self.rejected[i].load(Ordering::Relaxed);
            s.counter(
                &rejected,
                "payloads or batches refused",
                &[("reason", reason)],
                v,
            );
        }
        let gauges: [(&str, &AtomicU64, &str); 2] = [
            (
                "outbox_ops",
                &self.outbox,
                "own ops not yet acknowledged by the peer",
            ),
            (
                "last_sync_ms",
                &self.last_sync_ms,
                "wall clock of the last message from the peer",
            ),
        ];
        for (name, value, help) in gauges {
            s.gauge(
                &format!("{prefix}_{name}"),
                help,
                &[],
                value.load(Ordering::Relaxed),
            );
        }
        s.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_rendered_by_reason() {
        let m = SyncMetrics::new();
        m.reject("wrong_actor");
        m.reject("wrong_actor");
        m.reject("malformed");
        SyncMetrics::add(&m.ops_applied, 3);
        let text = m.render_prometheus("storenode_sync");
        assert!(text.contains("storenode_sync_batches_rejected_total{reason=\"wrong_actor\"} 2"));
        assert!(text.contains("storenode_sync_ops_applied_total 3"));
        assert_eq!(m.rejected_total(), 3);
    }
}
