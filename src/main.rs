//! Command line entry point: parses arguments and calls into the library.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
#[cfg(feature = "bench")]
use storenode::bench::Scenario;
use storenode::store::import::ImportKind;

/// Counts live heap bytes for `bench` (bytes of memory per op); forwards to the system allocator.
/// Only in a build with the `bench` feature: the shipped binary uses the plain allocator.
#[cfg(feature = "bench")]
#[global_allocator]
static ALLOC: storenode::bench::alloc::CountingAlloc = storenode::bench::alloc::CountingAlloc;

/// storenode: the in-store node of a retail chain (store replica, HQ hub, demo).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log format: `text` or `json`.
    #[arg(long, global = true, default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a store or HQ config file: prints `ok: ...` or each error with its key path.
    CheckConfig { file: PathBuf },
    /// Run the HQ hub (API for the online shop, sync with the stores).
    Hq {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a store node.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run HQ, two stores and a broker in one process, seeded with demo data.
    Demo {
        #[arg(long, default_value = "demo-data")]
        data_dir: PathBuf,
        /// HQ listens here, the stores on the next two ports.
        #[arg(long, default_value_t = 8080)]
        base_port: u16,
        #[arg(long, default_value_t = 1883)]
        broker_port: u16,
    },
    /// Create a database or bring its schema up to date.
    Migrate {
        /// SQLite database file.
        #[arg(long)]
        db: PathBuf,
        /// Replica that owns the database: `hq` or `store:<id>`. Required for a new file; an
        /// existing file records its actor, so it may be left out then.
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
        /// `hq` (catalog and carts) or `store:<id>` (receipts, sales, pickup orders).
        #[arg(long, default_value = "hq")]
        actor: String,
        /// Broken on purpose (crash-test self-check): print acks before the commit.
        #[arg(long, hide = true)]
        unsafe_ack_before_commit: bool,
        /// Broken on purpose (crash-test self-check): commit with synchronous=OFF.
        #[arg(long, hide = true)]
        unsafe_synchronous_off: bool,
    },
    /// Run a benchmark scenario: our figure, the baseline measured in the same run, the ratio
    /// (only in a build with `--features bench`).
    #[cfg(feature = "bench")]
    Bench {
        /// Which scenario.
        scenario: Scenario,
        /// Smaller data and shorter runs (each scenario well under 60 s).
        #[arg(long)]
        quick: bool,
        /// Print every figure as one JSON object before the RESULT line.
        #[arg(long)]
        json: bool,
        /// `chain`: simulated stores.
        #[arg(long, default_value_t = 200)]
        stores: usize,
        /// `chain`: HQ processes (only 1 is built so far).
        #[arg(long, default_value_t = 1)]
        hq: usize,
        /// `chain`: light stores (the real sync protocol, replica in memory, no SQLite).
        #[arg(long)]
        light: bool,
    },
    /// ESC/POS printer emulator: saves each job as .txt and .png in --out.
    PrinterSim {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: SocketAddr,
        /// Folder for the printed jobs.
        #[arg(long, default_value = "prints")]
        out: PathBuf,
    },
    /// Print a sync payload (MQTT) as JSON: a file of raw bytes, or hex text on stdin.
    Decode {
        /// File holding the raw payload; without it, hex is read from stdin.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Print a store's public signing key for registering the store at HQ, or with `--hq`
    /// HQ's, for every store config's `hq_public_key` (creating the key beside the database on
    /// first use).
    Key {
        /// The store's (or with `--hq`, HQ's) SQLite database file (the key is `<db>.ed25519`).
        #[arg(long)]
        db: PathBuf,
        /// The store id.
        #[arg(long, required_unless_present = "hq", conflicts_with = "hq")]
        store: Option<String>,
        /// Print HQ's down-batch signing key instead of a store's.
        #[arg(long)]
        hq: bool,
    },
    /// Print a fresh random pickup QR key (hex) to put first in `pickup.qr_keys` when rotating.
    NewQrKey,
    /// Print the argon2 hash of a password read from stdin (one line), for an HQ console
    /// account's `password_hash` (or a terminal `pin_hash`).
    HashPassword,
    /// Print the state digest of a database, overall and per store.
    Digest {
        /// SQLite database file.
        #[arg(long)]
        db: PathBuf,
    },
    /// The VERI*FACTU invoice journal of a database (store or HQ).
    Journal {
        #[command(subcommand)]
        action: JournalAction,
    },
    /// Maintenance of a stopped store's database.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
}

#[derive(Subcommand)]
enum StoreAction {
    /// Follow a single HQ (no `[storage] url`) again after leased HQ processes: reset the
    /// store's HQ down cursor to epoch 0 (stop the store first).
    ResetHqCursor {
        /// The store's SQLite database file.
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum JournalAction {
    /// Recompute every record's hash and link: `ok: <n> records`, or exit 1 naming the first
    /// bad record.
    Verify {
        /// SQLite database file.
        #[arg(long)]
        db: PathBuf,
    },
    /// Print every record in chain order with the AEAT's field names.
    Export {
        /// SQLite database file.
        #[arg(long)]
        db: PathBuf,
        /// `jsonl` (one JSON object per record) or `xml` (the AEAT registration schema).
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "xml"])]
        format: String,
    },
}

/// Run an async command on a fresh runtime.
fn block_on(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(fut)
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rumqttd=warn"));
    // Colour codes only for a person at a terminal, never in a log file or a journal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli.log_format);
    let result = match cli.command {
        Command::CheckConfig { file } => {
            return match storenode::app::check_config(&file, &mut std::io::stdout()) {
                Ok(true) => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            };
        }
        Command::Hq { config } => block_on(storenode::app::hq(&config)),
        Command::Run { config } => block_on(storenode::app::run(&config)),
        Command::Demo {
            data_dir,
            base_port,
            broker_port,
        } => block_on(storenode::app::demo(storenode::app::DemoOptions {
            data_dir,
            base_port,
            broker_port,
        })),
        Command::Migrate { db, actor } => storenode::cli::migrate(&db, actor.as_deref()),
        Command::Import {
            kind,
            db,
            actor,
            file,
        } => storenode::cli::import(&db, actor.as_deref(), kind, &file),
        Command::Digest { db } => storenode::cli::digest(&db),
        Command::Journal {
            action: JournalAction::Verify { db },
        } => storenode::fiscal::journal::verify_command(&db),
        Command::Journal {
            action: JournalAction::Export { db, format },
        } => storenode::fiscal::journal::export_command(&db, &format),
        Command::Store {
            action: StoreAction::ResetHqCursor { db },
        } => storenode::cli::reset_hq_cursor(&db),
        Command::NewQrKey => {
            println!("{}", storenode::config::new_qr_key_hex());
            Ok(())
        }
        Command::HashPassword => hash_password(),
        Command::Key { db, store, hq } => match (hq, store) {
            (true, _) => storenode::signing::hq_public_key_command(&db),
            (false, Some(store)) => storenode::signing::public_key_command(&db, &store),
            (false, None) => Err(anyhow::anyhow!("give --store <id>, or --hq for HQ's key")),
        }
        .map(|line| println!("{line}")),
        Command::Decode { file } => storenode::sync::inspect::decode_command(file.as_deref())
            .map(|json| println!("{json}"))
            .map_err(anyhow::Error::from),
        #[cfg(feature = "bench")]
        Command::Bench {
            scenario,
            quick,
            json,
            stores,
            hq,
            light,
        } => storenode::bench::run(
            scenario,
            storenode::bench::Options {
                quick,
                json,
                stores,
                hq,
                light,
            },
        ),
        Command::Soak {
            db,
            ops,
            writers,
            actor,
            unsafe_ack_before_commit,
            unsafe_synchronous_off,
        } => match storenode::domain::ActorId::parse(&actor).map(|a| a.store()) {
            Ok(Some(store)) => storenode::soak::run_store(
                &db,
                store,
                storenode::soak::StoreSoak {
                    ops,
                    writers,
                    unsafe_ack_before_commit,
                    unsafe_synchronous_off,
                },
            ),
            Ok(None) => storenode::cli::soak(&db, ops, writers),
            Err(e) => Err(e.into()),
        },
        Command::PrinterSim { listen, out } => block_on(async move {
            use anyhow::Context;
            storenode::devices::printer_sim::run_until_ctrl_c(listen, out.clone())
                .await
                .with_context(|| format!("printer-sim on {listen} writing to {}", out.display()))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `storenode hash-password`: one line from stdin, its argon2id PHC string on stdout.
fn hash_password() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| anyhow::anyhow!("cannot read the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("no password given on stdin");
    }
    let hash = storenode::hq::console::hash_password(password).map_err(anyhow::Error::msg)?;
    println!("{hash}");
    Ok(())
}
