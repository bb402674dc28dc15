use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "storenode", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// ESC/POS printer emulator: saves each job as .txt and .png in --out.
    PrinterSim {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: SocketAddr,
        /// Folder for the printed jobs.
        #[arg(long, default_value = "prints")]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::PrinterSim { listen, out } => {
            storenode::devices::printer_sim::run_until_ctrl_c(listen, out.clone())
                .await
                .with_context(|| format!("printer-sim on {listen} writing to {}", out.display()))
        }
    }
}
