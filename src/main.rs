//! Command line entry point: parses arguments and calls into the library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use storenode::bench::Scenario;
use storenode::store::import::ImportKind;

/// Counts live heap bytes for `bench` (bytes of memory per op); forwards to the system allocator.
#[global_allocator]
static ALLOC: storenode::bench::alloc::CountingAlloc = storenode::bench::alloc::CountingAlloc;

/// storenode: the in-store node of a retail chain (store replica, HQ hub, demo).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a database or bring its schema up to date.
    Migrate {
        /// SQLite database file.
        #[arg(long)]
        db: PathBuf,
        /// Replica that owns a new database: `hq` or `store:<id>`.
        #[arg(long)]
        actor: Option<String>,
    },
    /// Import a CSV file (catalog, stock, customers, carts) in one transaction.
    Import {
        /// What the file holds.
        kind: ImportKind,
        /// SQLite database file.
        #[arg(long)]
        db: PathBuf,
        /// Replica that owns a new database: `hq` or `store:<id>`.
        #[arg(long)]
        actor: Option<String>,
        /// The CSV file (header line first; see config/seed/README.md).
        file: PathBuf,
    },
    /// Write a stream of ops, printing each one once committed (crash and durability tests).
    Soak {
        /// SQLite database file (created as an HQ replica if new).
        #[arg(long)]
        db: PathBuf,
        /// How many ops to write.
        #[arg(long, default_value_t = 10_000)]
        ops: u64,
        /// Concurrent writers (their ops share group commits).
        #[arg(long, default_value_t = 8)]
        writers: usize,
    },
    /// Run a benchmark scenario: our figure, the baseline measured in the same run, the ratio.
    Bench {
        /// Which scenario.
        scenario: Scenario,
        /// Smaller data and shorter runs (each scenario well under 60 s).
        #[arg(long)]
        quick: bool,
        /// Print every figure as one JSON object before the RESULT line.
        #[arg(long)]
        json: bool,
    },
    /// Print the state digest of a database, overall and per store.
    Digest {
        /// SQLite database file.
        #[arg(long)]
        db: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Migrate { db, actor } => storenode::cli::migrate(&db, actor.as_deref()),
        Command::Import {
            kind,
            db,
            actor,
            file,
        } => storenode::cli::import(&db, actor.as_deref(), kind, &file),
        Command::Digest { db } => storenode::cli::digest(&db),
        Command::Soak { db, ops, writers } => storenode::cli::soak(&db, ops, writers),
        Command::Bench {
            scenario,
            quick,
            json,
        } => storenode::bench::run(scenario, storenode::bench::Options { quick, json }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
