//! The store node's config (`role = "store"`): its sections, defaults and checks. HQ's public
//! key is required, since a store must verify every down-batch it applies.

use super::devices::check_devices;
use super::network::check_mqtt;
use super::pickup::check_qr_keys;
use super::security::check_rate;
use super::staff::check_staff;
use super::{
    check_chain, push, Config, ConfigError, ConfigErrors, FiscalConfig, HttpConfig, MqttConfig,
    PrinterConfig, Role, ScannerConfig, StaffConfig, StorePickupConfig, TerminalSecurityConfig,
};
use crate::domain::inventory::AllocationPolicy;
use crate::domain::StoreId;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// How much of its stock a store lends HQ (see `AllocationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllocationConfig {
    pub hq_share_percent: u8,
    pub min_one_above: u32,
}

impl AllocationConfig {
    pub fn policy(&self) -> AllocationPolicy {
        AllocationPolicy {
            hq_share_percent: self.hq_share_percent,
            min_one_above: self.min_one_above,
        }
    }
}

/// Configuration of a store node (`storenode run`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub role: Role,
    pub store: StoreId,
    pub chain: String,
    pub data_dir: PathBuf,
    /// Defaults to `<data_dir>/store.db`.
    #[serde(default)]
    pub db: Option<PathBuf>,
    pub mqtt: MqttConfig,
    pub http: HttpConfig,
    pub allocation: AllocationConfig,
    pub pickup: StorePickupConfig,
    #[serde(default)]
    pub printers: Vec<PrinterConfig>,
    #[serde(default)]
    pub scanners: Vec<ScannerConfig>,
    #[serde(default)]
    pub staff: Vec<StaffConfig>,
    #[serde(default)]
    pub terminal: TerminalSecurityConfig,
    #[serde(default)]
    pub returns: ReturnsConfig,
    /// Discounts and the cash drawer (DESIGN.md §18).
    #[serde(default)]
    pub till: super::TillConfig,
    /// HQ's public key (64 hex digits, printed by `storenode key --hq --db <hq db>`). HQ
    /// always signs its down-batches, so this is required: without it a store would take
    /// whatever anyone publishes on its `down` topic.
    #[serde(default)]
    pub hq_public_key: Option<String>,
    /// Spanish invoices (VERI*FACTU); absent: sales issue no invoice.
    #[serde(default)]
    pub fiscal: Option<FiscalConfig>,
    /// Stores this one may send transfers to (DESIGN.md section 19); none: no transfers.
    #[serde(default)]
    pub transfer_to: Vec<StoreId>,
}

/// `[returns]`: how long a sale may be returned, and the largest refund a manager may give
/// without the sale's return rights (an unverified return, DESIGN.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnsConfig {
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    #[serde(default = "default_unverified_max_cents")]
    pub unverified_max_cents: i64,
}

fn default_window_days() -> u32 {
    30
}
fn default_unverified_max_cents() -> i64 {
    10_000
}

impl Default for ReturnsConfig {
    fn default() -> Self {
        ReturnsConfig {
            window_days: default_window_days(),
            unverified_max_cents: default_unverified_max_cents(),
        }
    }
}

impl ReturnsConfig {
    pub fn policy(&self) -> crate::domain::returns::ReturnPolicy {
        crate::domain::returns::ReturnPolicy {
            window_ms: u64::from(self.window_days) * 86_400_000,
            unverified_max_cents: self.unverified_max_cents,
        }
    }

    pub(super) fn check(&self, errs: &mut Vec<ConfigError>) {
        if !(1..=3650).contains(&self.window_days) {
            push(
                errs,
                "returns.window_days",
                format!("must be 1-3650, got {}", self.window_days),
            );
        }
        if !(0..=100_000_000).contains(&self.unverified_max_cents) {
            push(
                errs,
                "returns.unverified_max_cents",
                format!("must be 0-100000000, got {}", self.unverified_max_cents),
            );
        }
    }
}

impl StoreConfig {
    pub fn db_path(&self) -> PathBuf {
        self.db
            .clone()
            .unwrap_or_else(|| self.data_dir.join("store.db"))
    }
    pub fn client_id(&self) -> String {
        self.mqtt
            .client_id
            .clone()
            .unwrap_or_else(|| format!("storenode-{}", self.store))
    }
    /// Read and validate a store config file.
    pub fn load(path: &Path) -> Result<StoreConfig, ConfigErrors> {
        match Config::load(path)? {
            Config::Store(c) => Ok(*c),
            Config::Hq(_) => Err(ConfigErrors::one(
                "role",
                "this is an hq config; `storenode run` needs role = \"store\"",
            )),
        }
    }

    pub(super) fn check(&self, errs: &mut Vec<ConfigError>) {
        check_chain(&self.chain, errs);
        check_mqtt(&self.mqtt, errs);
        self.returns.check(errs);
        self.till.check(errs);
        if self.data_dir.as_os_str().is_empty() {
            push(errs, "data_dir", "must not be empty");
        }
        if self.allocation.hq_share_percent > 100 {
            push(
                errs,
                "allocation.hq_share_percent",
                format!("must be 0-100, got {}", self.allocation.hq_share_percent),
            );
        }
        if !(1..=365).contains(&self.pickup.expire_after_days) {
            push(
                errs,
                "pickup.expire_after_days",
                format!("must be 1-365, got {}", self.pickup.expire_after_days),
            );
        }
        check_qr_keys(&self.pickup.qr_keys, errs);
        check_hq_public_key(self.hq_public_key.as_deref(), errs);
        check_devices(self, errs);
        check_staff(&self.staff, errs);
        check_rate("terminal.login_burst", self.terminal.login_burst, errs);
        check_rate(
            "terminal.login_per_minute",
            self.terminal.login_per_minute,
            errs,
        );
        if let Some(fiscal) = &self.fiscal {
            fiscal.check(errs);
        }
    }
}

/// HQ signs every down-batch (this release on), so a store config must name HQ's key.
fn check_hq_public_key(key: Option<&str>, errs: &mut Vec<ConfigError>) {
    match key.map(crate::signing::HqPublicKey::parse) {
        None => push(
            errs,
            "hq_public_key",
            "missing: HQ signs its down-batches and the store must check them; set it to the \
             key `storenode key --hq --db <hq db>` prints",
        ),
        Some(Err(e)) => push(errs, "hq_public_key", e.to_string()),
        Some(Ok(_)) => {}
    }
}
