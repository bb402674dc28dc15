//! `/metrics` in the OpenMetrics text format, encoded by `prometheus-client`.
//!
//! Our figures live where they are kept (atomics in `SyncMetrics`, the replica, SQLite), so a
//! scrape reads them into a fresh `Scrape` (one `Registry`, one family per name) and encodes
//! that. Parts built by different modules are joined and closed once with `# EOF` by
//! `response`. A counter is named with its `_total` suffix, as it appears in the output.

use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;

/// The content type of an OpenMetrics text exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;

/// One metric family of a scrape: its help and its series by label set.
enum Entry {
    Gauge(String, Family<Labels, Gauge>),
    Counter(String, Family<Labels, Counter>),
    PlainGauge(String, Gauge),
    PlainCounter(String, Counter),
}

/// The figures of one scrape, by metric name (sorted, so the output is stable).
#[derive(Default)]
pub struct Scrape {
    entries: BTreeMap<String, Entry>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// prometheus-client appends the period itself.
fn help_text(help: &str) -> String {
    help.trim_end_matches('.').to_string()
}

impl Scrape {
    pub fn new() -> Scrape {
        Scrape::default()
    }

    /// Set a gauge; `labels` empty for a metric without labels. Values above `i64::MAX` are
    /// shown as `i64::MAX`.
    pub fn gauge(&mut self, name: &str, help: &str, labels_: &[(&str, &str)], value: u64) {
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        let entry = self.entries.entry(name.to_string());
        if labels_.is_empty() {
            if let Entry::PlainGauge(_, g) =
                entry.or_insert_with(|| Entry::PlainGauge(help_text(help), Gauge::default()))
            {
                g.set(value);
            }
            return;
        }
        if let Entry::Gauge(_, family) =
            entry.or_insert_with(|| Entry::Gauge(help_text(help), Family::default()))
        {
            family.get_or_create(&labels(labels_)).set(value);
        }
    }

    /// Set a counter to its current total; `name` ends in `_total`.
    pub fn counter(&mut self, name: &str, help: &str, labels_: &[(&str, &str)], total: u64) {
        debug_assert!(name.ends_with("_total"), "counter {name} without _total");
        let entry = self.entries.entry(name.to_string());
        if labels_.is_empty() {
            if let Entry::PlainCounter(_, c) =
                entry.or_insert_with(|| Entry::PlainCounter(help_text(help), Counter::default()))
            {
                c.inc_by(total);
            }
            return;
        }
        if let Entry::Counter(_, family) =
            entry.or_insert_with(|| Entry::Counter(help_text(help), Family::default()))
        {
            family.get_or_create(&labels(labels_)).inc_by(total);
        }
    }

    /// The families in the text format, without the closing `# EOF`.
    pub fn encode(self) -> String {
        let mut registry = Registry::default();
        for (name, entry) in self.entries {
            // The encoder adds `_total` to a counter's name itself.
            let base = name.strip_suffix("_total").unwrap_or(&name).to_string();
            match entry {
                Entry::Gauge(help, f) => registry.register(name, help, f),
                Entry::PlainGauge(help, g) => registry.register(name, help, g),
                Entry::Counter(help, f) => registry.register(base, help, f),
                Entry::PlainCounter(help, c) => registry.register(base, help, c),
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &registry);
        out
    }
}

/// The HTTP answer to a scrape: the parts joined, closed with `# EOF`.
pub fn response(parts: &[String]) -> Response {
    let mut body = parts.concat();
    let _ = encode_eof(&mut body);
    ([("content-type", CONTENT_TYPE)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_and_counters_keep_their_names_labels_and_values() {
        let mut s = Scrape::new();
        s.gauge(
            "storenode_ops_applied",
            "Ops in the log.",
            &[("role", "hq")],
            3,
        );
        s.gauge("storenode_webhook_queue", "Webhook events", &[], 0);
        s.counter(
            "storenode_http_errors_total",
            "HTTP errors",
            &[("code", "unauthorized")],
            2,
        );
        s.counter(
            "storenode_http_errors_total",
            "HTTP errors",
            &[("code", "not_found")],
            1,
        );
        s.counter("storenode_sync_connects_total", "connections", &[], 5);
        let text = s.encode();
        assert!(
            text.contains("storenode_ops_applied{role=\"hq\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP storenode_ops_applied Ops in the log.\n"),
            "{text}"
        );
        assert!(text.contains("storenode_webhook_queue 0\n"), "{text}");
        assert!(
            text.contains("storenode_http_errors_total{code=\"unauthorized\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("storenode_http_errors_total{code=\"not_found\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("storenode_sync_connects_total 5\n"), "{text}");
        assert_eq!(
            text.matches("# TYPE storenode_http_errors counter").count(),
            1
        );
        assert!(!text.contains("# EOF"));
    }
}
