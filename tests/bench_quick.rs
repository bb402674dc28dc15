//! Every benchmark scenario runs in quick mode through the real binary and ends with a
//! well-formed RESULT line. No thresholds: this only keeps the benchmarks from rotting.
//! The benchmarks are built only with the `bench` feature (`.ci/run` runs this file with it:
//! `cargo test -p storenode --features bench --test bench_quick`).
#![cfg(feature = "bench")]

use std::process::Command;

/// Run `storenode bench <scenario> --quick [extra]` and return its stdout.
fn bench(scenario: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_storenode"))
        .args(["bench", scenario, "--quick"])
        .args(extra)
        .output()
        .expect("the storenode binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench {scenario} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The last line is `RESULT <scenario> ours=<x> baseline=<y> ratio=<r>` with finite numbers.
fn assert_result_line(scenario: &str, stdout: &str) {
    let last = stdout.lines().last().unwrap_or_default();
    let fields: Vec<&str> = last.split(' ').collect();
    assert_eq!(fields.len(), 5, "malformed RESULT line: {last:?}");
    assert_eq!(fields[0], "RESULT", "{last:?}");
    assert_eq!(fields[1], scenario, "{last:?}");
    for (field, key) in fields[2..].iter().zip(["ours", "baseline", "ratio"]) {
        let value = field
            .strip_prefix(key)
            .and_then(|v| v.strip_prefix('='))
            .unwrap_or_else(|| panic!("expected {key}=<number> in {last:?}"));
        let number: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number in {last:?}"));
        assert!(number.is_finite(), "{last:?}");
    }
}

#[test]
fn apply_quick_prints_a_result_line() {
    assert_result_line("apply", &bench("apply", &[]));
}

#[test]
fn crdt_peers_quick_prints_json_and_a_result_line() {
    let out = bench("crdt-peers", &["--json"]);
    let json_line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    let doc: serde_json::Value = serde_json::from_str(json_line).expect("valid JSON");
    assert_eq!(doc["scenario"], "crdt-peers");
    assert_result_line("crdt-peers", &out);
}

#[test]
fn footprint_quick_prints_a_result_line() {
    assert_result_line("footprint", &bench("footprint", &[]));
}

#[test]
fn replicate_quick_prints_a_result_line() {
    assert_result_line("replicate", &bench("replicate", &[]));
}

#[test]
fn catch_up_quick_prints_a_result_line() {
    assert_result_line("catch-up", &bench("catch-up", &[]));
}

#[test]
fn scan_to_screen_quick_prints_a_result_line() {
    assert_result_line("scan-to-screen", &bench("scan-to-screen", &[]));
}

#[test]
fn history_quick_prints_a_result_line() {
    assert_result_line("history", &bench("history", &[]));
}

#[test]
fn fanin_quick_prints_a_result_line() {
    assert_result_line("fanin", &bench("fanin", &[]));
}

#[test]
fn chain_quick_with_hq_on_postgres_prints_a_result_line() {
    assert_result_line("chain", &bench("chain", &["--stores", "5"]));
}

/// Light stores speak the real protocol to a real HQ: every one ends level with HQ, also
/// after the second HQ process is killed and the first takes its stores.
#[test]
fn chain_quick_with_light_stores_and_two_hq_processes_ends_with_equal_digests() {
    let out = bench(
        "chain",
        &["--stores", "6", "--hq", "2", "--light", "--json"],
    );
    let json_line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    let doc: serde_json::Value = serde_json::from_str(json_line).expect("valid JSON");
    assert_eq!(doc["figures"]["digests_equal"], 6, "{out}");
    assert_eq!(doc["figures"]["stores_light"], 1, "{out}");
    assert!(doc["figures"]["failover_s"].as_f64().is_some(), "{out}");
    assert_result_line("chain", &out);
}
