//! The commands of the `storenode` binary as library functions: `main.rs` only parses
//! arguments and calls these. Each returns when its work is done or Ctrl-C arrives.

use crate::config::Config;
use std::path::Path;

/// `storenode check-config FILE`: prints `ok: store madrid-centro`, or one line per error with
/// its key path. Returns whether the file is valid (the binary exits 1 when it is not).
pub fn check_config(path: &Path, out: &mut impl std::io::Write) -> std::io::Result<bool> {
    match Config::load(path) {
        Ok(config) => {
            writeln!(out, "ok: {}", config.describe())?;
            Ok(true)
        }
        Err(errs) => {
            for e in &errs.0 {
                writeln!(out, "error: {}: {e}", path.display())?;
            }
            Ok(false)
        }
    }
}
