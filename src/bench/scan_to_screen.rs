//! `scan-to-screen`: a barcode line sent to a store node's TCP scanner source until the
//! terminal's event stream delivers it parsed (`event: scan`, with its kind and EAN) to a
//! logged-in page. The node is the real `storenode run` process (this executable) with a
//! `tcp://` scanner in its config, offline (no broker), so the path is exactly what a network
//! scanner at the till goes through: socket, line splitter, barcode parser, terminal fan-out,
//! SSE over HTTP. Scans are sent one at a time, each after the previous one arrived.
//!
//! Baseline, same run: a raw loopback TCP round trip of the same line through an echo task
//! (the transport alone, no parsing and no HTTP).

use super::report::{percentile, Report};
use super::scratch::Scratch;
use super::terminal_client::{EventStream, TerminalClient};
use super::workload::ean;
use super::Options;
use anyhow::{anyhow, Context};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const STAFF: &str = "1001";
const PIN: &str = "1234";
/// Longest wait for one scan to show up before the run is abandoned.
const SCAN_TIMEOUT_MS: u64 = 5_000;
/// Longest wait for the node to serve its terminal and bind its scanner port.
const START_TIMEOUT_MS: u64 = 30_000;
/// Scans sent before measuring (connections, caches, allocator).
const WARM_UP: usize = 20;
/// The target for the 99th percentile.
const TARGET_P99_MS: f64 = 50.0;

/// A loopback port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The node under test: `storenode run` in its own process, killed when dropped.
struct NodeProcess {
    child: tokio::process::Child,
    log: std::path::PathBuf,
}

impl NodeProcess {
    fn start(dir: &Path, http: u16, scanner: u16, mqtt: u16) -> anyhow::Result<NodeProcess> {
        let pin_hash = crate::terminal::auth::hash_pin(PIN).map_err(|e| anyhow!("{e}"))?;
        let config = format!(
            "role = \"store\"\nstore = \"bench-scan\"\nchain = \"bench\"\ndata_dir = {data:?}\n\
             hq_public_key = \"{hq_key}\"\n\
             [mqtt]\nhost = \"127.0.0.1\"\nport = {mqtt}\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
             [allocation]\nhq_share_percent = 30\nmin_one_above = 2\n\
             [pickup]\nexpire_after_days = 7\n\
             qr_keys = [\"0000000000000000000000000000000000000000000000000000000000000001\"]\n\
             [[scanners]]\nname = \"till\"\nuri = \"tcp://127.0.0.1:{scanner}\"\n\
             [[staff]]\nstaff = \"{STAFF}\"\nname = \"Bench\"\nrole = \"associate\"\npin_hash = \"{pin_hash}\"\n",
            data = dir.join("data").display().to_string(),
            // No HQ runs in this benchmark; any valid key will do.
            hq_key = crate::signing::HqKey::from_secret([1; 32]).public_hex(),
        );
        let config_path = dir.join("store.toml");
        std::fs::write(&config_path, config)?;
        let log = dir.join("node.log");
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .context("starting storenode run")?;
        Ok(NodeProcess { child, log })
    }

    /// What the node logged, for an error message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Wait until the terminal answers, failing early if the process died.
    async fn wait_serving(&mut self, base: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(anyhow!("node exited with {status}:\n{}", self.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(anyhow!("node not serving in time:\n{}", self.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Connect to the node's scanner source, which binds its port shortly after start-up.
async fn connect_scanner(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
    loop {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) if Instant::now() > deadline => {
                return Err(anyhow!("scanner source {addr} not listening: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Wait for the scan of `code` on the page's stream; other events (link) are skipped.
async fn await_scan(events: &mut EventStream, code: &str) -> anyhow::Result<()> {
    let wait = async {
        loop {
            let event = events
                .next()
                .await?
                .ok_or_else(|| anyhow!("event stream closed"))?;
            if event.event != "scan" {
                continue;
            }
            let scan: serde_json::Value = serde_json::from_str(&event.data)?;
            if scan["code"] != code {
                continue;
            }
            // The page gets the parsed result, not just the raw line.
            if scan["kind"] != "ean13" || scan["ean"] != code {
                return Err(anyhow!("scan of {code} arrived unparsed: {}", event.data));
            }
            return Ok(());
        }
    };
    tokio::time::timeout(Duration::from_millis(SCAN_TIMEOUT_MS), wait)
        .await
        .map_err(|_| anyhow!("scan of {code} did not reach the page within {SCAN_TIMEOUT_MS} ms"))?
}

/// Milliseconds from writing each scan line to its arrival on the page, sorted.
async fn measure_ours(
    scanner: &mut TcpStream,
    events: &mut EventStream,
    samples: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..WARM_UP + samples {
        let code = ean(i).to_string();
        let started = Instant::now();
        scanner.write_all(format!("{code}\r\n").as_bytes()).await?;
        await_scan(events, &code).await?;
        if i >= WARM_UP {
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// Milliseconds for the same lines echoed back over raw loopback TCP, sorted.
async fn measure_raw_tcp(samples: usize) -> anyhow::Result<Vec<f64>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let echo = tokio::spawn(async move {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Some(line) = lines.next_line().await? {
            write.write_all(format!("{line}\n").as_bytes()).await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..WARM_UP + samples {
        let code = ean(i).to_string();
        let started = Instant::now();
        write.write_all(format!("{code}\r\n").as_bytes()).await?;
        let back = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow!("echo closed"))?;
        if back.trim_end() != code {
            return Err(anyhow!("echo returned {back:?} for {code}"));
        }
        if i >= WARM_UP {
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    drop(write);
    let _ = echo.await;
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    let samples = if opts.quick { 300 } else { 5_000 };
    let scratch = Scratch::new("scan-to-screen")?;
    let (http, scanner_port, mqtt) = (free_port()?, free_port()?, free_port()?);
    let mut node = NodeProcess::start(&scratch.file(""), http, scanner_port, mqtt)?;
    let base = format!("http://127.0.0.1:{http}");
    node.wait_serving(&base).await?;
    let page = TerminalClient::login(&base, STAFF, PIN).await?;
    let mut events = page.events().await?;
    let mut scanner = connect_scanner(SocketAddr::from(([127, 0, 0, 1], scanner_port))).await?;

    let ours = measure_ours(&mut scanner, &mut events, samples)
        .await
        .map_err(|e| anyhow!("{e}\nnode log:\n{}", node.log_tail()))?;
    let raw = measure_raw_tcp(samples).await?;

    let mut report = Report::new("scan-to-screen", "ms p99");
    report.figure("scans", samples as u64, "");
    report.figure("ours_p50_ms", percentile(&ours, 50.0), "ms");
    report.figure("ours_p99_ms", percentile(&ours, 99.0), "ms");
    report.figure("ours_max_ms", percentile(&ours, 100.0), "ms");
    report.figure("raw_tcp_p50_ms", percentile(&raw, 50.0), "ms");
    report.figure("raw_tcp_p99_ms", percentile(&raw, 99.0), "ms");
    report.figure("raw_tcp_max_ms", percentile(&raw, 100.0), "ms");
    report.figure("target_p99_ms", TARGET_P99_MS, "ms");
    report.note(
        "ours: line written to the node's tcp:// scanner source until the logged-in page's \
         SSE stream delivers it parsed (kind ean13 + EAN); node = `storenode run` process",
    );
    report.note("baseline: the same line over raw loopback TCP to an echo task and back");
    report.finish(percentile(&ours, 99.0), percentile(&raw, 99.0), opts.json);
    Ok(())
}
