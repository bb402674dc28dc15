use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// storenode: store node, HQ hub and demo of a retail chain.
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
    /// Validate a store or HQ config file.
    CheckConfig { file: PathBuf },
    /// Run the HQ hub.
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
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn block_on(f: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(f) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli.log_format);
    match cli.command {
        Command::CheckConfig { file } => {
            match storenode::app::check_config(&file, &mut std::io::stdout()) {
                Ok(true) => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            }
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
    }
}
