use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// storenode: store node, HQ hub and demo of a retail chain.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a store or HQ config file.
    CheckConfig { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => {
            match storenode::app::check_config(&file, &mut std::io::stdout()) {
                Ok(true) => ExitCode::SUCCESS,
                _ => ExitCode::FAILURE,
            }
        }
    }
}
