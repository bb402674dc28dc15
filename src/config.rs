//! TOML configuration of a store node and of the HQ hub, validated once at start.
//!
//! A file says what it configures with a top-level `role = "store"` or `role = "hq"`. Parsing
//! is strict (`deny_unknown_fields`): a misspelt key is an error, not a silent default. Every
//! error names the key path at fault (`mqtt.port`, `staff[1].pin_hash`), and validation
//! collects all of them so one run of `storenode check-config` shows everything to fix.
//!
//! One module per section; this one reads the `role` and dispatches to the store's or HQ's.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::Path;

use crate::domain::StoreId;

mod console;
mod customers;
mod storage;
pub use storage::StorageConfig;
mod devices;
mod error;
mod fiscal;
mod hq;
mod network;
mod pickup;
mod security;
mod ship_to_store;
mod staff;
mod store;
mod till;

pub use console::{ConsoleAccount, ConsoleConfig, ConsoleRole};
pub use customers::{ContactPolicyConfig, WEBHOOK_SECRET_LEN_MIN};
pub use devices::{PrinterConfig, ScannerConfig};
use error::push;
pub use error::{ConfigError, ConfigErrors};
pub use fiscal::{load_identity, AeatConfig, FiscalConfig};
pub use hq::{HqConfig, WebhookConfig, TOKEN_LEN_MIN};
pub use network::{HttpConfig, MqttConfig};
pub use pickup::{
    new_qr_key_hex, HqPickupConfig, QrKey, StorePickupConfig, QR_KEYS_MAX, QR_KEY_BYTES_MIN,
};
pub use security::{HqRateLimitConfig, TerminalSecurityConfig};
pub use ship_to_store::ShipToStoreConfig;
pub use staff::{StaffConfig, StaffRole};
pub use store::{AllocationConfig, ReturnsConfig, StoreConfig};
pub use till::TillConfig;

/// Which program a config file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Store,
    Hq,
}

/// A validated config file of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Config {
    Store(Box<StoreConfig>),
    Hq(Box<HqConfig>),
}

impl Config {
    /// Read, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigErrors::one("", format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text)
    }

    /// Parse and validate config text.
    pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| ConfigErrors::one("", format!("not valid TOML: {}", e.message())))?;
        let role = match table.get("role").and_then(|v| v.as_str()) {
            Some("store") => Role::Store,
            Some("hq") => Role::Hq,
            Some(other) => {
                return Err(ConfigErrors::one(
                    "role",
                    format!("expected \"store\" or \"hq\", got {other:?}"),
                ))
            }
            None => {
                return Err(ConfigErrors::one(
                    "role",
                    "missing; add role = \"store\" or role = \"hq\" at the top",
                ))
            }
        };
        let mut errs = Vec::new();
        let config = match role {
            Role::Store => {
                let c: StoreConfig = typed(text)?;
                c.check(&mut errs);
                Config::Store(Box::new(c))
            }
            Role::Hq => {
                let c: HqConfig = typed(text)?;
                c.check(&mut errs);
                Config::Hq(Box::new(c))
            }
        };
        if errs.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errs))
        }
    }

    /// One line for `check-config`: `store madrid-centro` or `hq chain demo`.
    pub fn describe(&self) -> String {
        match self {
            Config::Store(c) => format!("store {}", c.store),
            Config::Hq(c) => format!("hq chain {} ({} stores)", c.chain, c.stores.len()),
        }
    }
}

fn typed<T: DeserializeOwned>(text: &str) -> Result<T, ConfigErrors> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let inner = e.into_inner();
        ConfigErrors::one(&path, inner.message().to_string())
    })
}

fn check_chain(chain: &str, errs: &mut Vec<ConfigError>) {
    if StoreId::parse(chain).is_err() {
        push(
            errs,
            "chain",
            format!("expected a lowercase slug (a-z, 0-9, '-'), got {chain:?}"),
        );
    }
}

#[cfg(test)]
mod tests;
