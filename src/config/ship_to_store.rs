//! HQ's `[ship_to_store]` (DESIGN.md §19): whether HQ may take a pickup order for a store that
//! lacks the stock by shipping it from another store, and the lead time the customer is told.

use super::{push, ConfigError};
use serde::Deserialize;

/// Longest lead time accepted: thirty days.
pub const LEAD_HOURS_MAX: u32 = 30 * 24;

/// `[ship_to_store]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipToStoreConfig {
    /// Take orders that ship from another store (default on).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Hours from placing until the customer may collect a shipped order (default 48).
    #[serde(default = "default_lead_hours")]
    pub lead_hours: u32,
}

fn default_enabled() -> bool {
    true
}

fn default_lead_hours() -> u32 {
    48
}

impl Default for ShipToStoreConfig {
    fn default() -> Self {
        ShipToStoreConfig {
            enabled: default_enabled(),
            lead_hours: default_lead_hours(),
        }
    }
}

impl ShipToStoreConfig {
    /// The lead time in milliseconds.
    pub fn lead_ms(&self) -> u64 {
        u64::from(self.lead_hours) * 3_600_000
    }

    pub(super) fn check(&self, errs: &mut Vec<ConfigError>) {
        if !(1..=LEAD_HOURS_MAX).contains(&self.lead_hours) {
            push(
                errs,
                "ship_to_store.lead_hours",
                format!("must be 1-{LEAD_HOURS_MAX} hours, got {}", self.lead_hours),
            );
        }
    }
}
