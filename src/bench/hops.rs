//! Per-hop figures from a `sync::probe::Probe`: for each hop on an op's path, how long after
//! the origin (the author's commit) ops passed it (p50, p99), and, among the slowest 1 % of
//! ops end to end, how much each hop added on average: the hop that holds the tail.

use super::report::{percentile, Report};
use std::collections::HashMap;
use std::time::Instant;

/// One stamp per seq at one named point of the path.
pub type Stamps = HashMap<u64, Instant>;

fn ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1e3
}

/// Add `<prefix>_<hop>_p50_ms`/`_p99_ms` (since the origin) and `<prefix>_tail_<hop>_ms`
/// (mean added by the hop over the slowest 1 % end to end) for `path`, whose first entry is
/// the origin and last the end. Only seqs stamped at every point count.
pub fn figures(report: &mut Report, prefix: &str, path: &[(&str, &Stamps)]) {
    let (Some((_, origin)), Some((_, end))) = (path.first(), path.last()) else {
        return;
    };
    let seqs: Vec<u64> = origin
        .keys()
        .copied()
        .filter(|seq| path.iter().all(|(_, at)| at.contains_key(seq)))
        .collect();
    report.figure(&format!("{prefix}_traced"), seqs.len() as u64, "");
    if seqs.is_empty() {
        return;
    }
    for (name, at) in &path[1..] {
        let mut since: Vec<f64> = seqs.iter().map(|s| ms(origin[s], at[s])).collect();
        since.sort_by(f64::total_cmp);
        report.figure(
            &format!("{prefix}_{name}_p50_ms"),
            percentile(&since, 50.0),
            "ms",
        );
        report.figure(
            &format!("{prefix}_{name}_p99_ms"),
            percentile(&since, 99.0),
            "ms",
        );
    }
    let mut slowest = seqs.clone();
    slowest.sort_by(|a, b| ms(origin[b], end[b]).total_cmp(&ms(origin[a], end[a])));
    slowest.truncate(seqs.len().div_ceil(100));
    let mut tail_seqs = slowest.clone();
    tail_seqs.sort_unstable();
    // Whether the tail is a few stalls (runs of neighbouring seqs) or spread out.
    report.figure(&format!("{prefix}_tail_seqs"), tail_seqs, "");
    for pair in path.windows(2) {
        let ((_, from), (name, to)) = (pair[0], pair[1]);
        let added: f64 =
            slowest.iter().map(|s| ms(from[s], to[s])).sum::<f64>() / slowest.len() as f64;
        report.figure(&format!("{prefix}_tail_{name}_ms"), added, "ms");
    }
}
