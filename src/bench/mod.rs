//! `storenode bench <scenario>`: measured figures next to the baseline that bounds them, taken
//! in the same run on the same machine. One file per scenario; each ends by printing
//! `RESULT <scenario> ours=<x> baseline=<y> ratio=<r>` (ratio = ours / baseline).
//!
//! Nothing here is used by the node itself. Results and how to read them: docs/BENCHMARKS.md.

pub mod alloc;
mod apply;
mod catch_up;
mod chain;
mod chain_failover;
mod chain_scale;
mod chain_store;
mod crdt_peers;
mod fanin;
mod fanin_engine;
mod fanin_stores;
mod footprint;
mod heap_parts;
mod history;
mod hops;
mod light_store;
mod mosquitto;
mod mqtt_raw;
mod postgres;
pub mod proc;
mod raw;
mod replicate;
pub mod report;
mod scan_to_screen;
mod scratch;
pub mod terminal_client;
pub mod workload;

/// The scenarios, in the order docs/BENCHMARKS.md lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Ops merged and persisted per second through `Node`, vs raw batched SQLite inserts.
    Apply,
    /// In-memory merge of the workload: our domain vs Automerge and Yrs.
    CrdtPeers,
    /// Resident memory of a loaded node, idle and under load; database bytes per op.
    Footprint,
    /// Store -> HQ -> store latency through mosquitto vs the raw MQTT round trip.
    Replicate,
    /// A store offline while ops pile up: reconnect to equal digests.
    CatchUp,
    /// A line on a TCP scanner source until the terminal page's event stream shows it parsed.
    ScanToScreen,
    /// A store with a year of closed sales and orders behind it: RSS idle and `Node::open`.
    History,
    /// One HQ ingesting the up-batches of many stores at once, vs raw batched SQLite inserts.
    Fanin,
    /// HQ on PostgreSQL under N stores: ingest ops/s, store -> HQ p99, vs raw inserts.
    Chain,
}

/// How a scenario runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Smaller data and shorter runs: every scenario well under 60 s (CI).
    pub quick: bool,
    /// Print one JSON object with every figure before the RESULT line.
    pub json: bool,
    /// `chain`: stores (0: 200).
    pub stores: usize,
    /// `chain`: HQ processes (only 1 is built).
    pub hq: usize,
    /// `chain`: light stores (`light_store`) instead of store nodes on SQLite.
    pub light: bool,
}

/// Run one scenario, printing its report.
pub fn run(scenario: Scenario, opts: Options) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match scenario {
        Scenario::Apply => runtime.block_on(apply::run(&opts)),
        Scenario::CrdtPeers => crdt_peers::run(&opts),
        Scenario::Footprint => runtime.block_on(footprint::run(&opts)),
        Scenario::Replicate => runtime.block_on(replicate::run(&opts)),
        Scenario::CatchUp => runtime.block_on(catch_up::run(&opts)),
        Scenario::ScanToScreen => runtime.block_on(scan_to_screen::run(&opts)),
        Scenario::History => runtime.block_on(history::run(&opts)),
        Scenario::Fanin => runtime.block_on(fanin::run(&opts)),
        Scenario::Chain => runtime.block_on(chain_scale::run(&opts)),
    }
}
