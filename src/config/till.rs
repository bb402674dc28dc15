//! `[till]` of a store config (DESIGN.md §18): how far an associate may discount without a
//! manager, and whether cash sales need an open cash session.

use super::error::push;
use super::ConfigError;
use serde::Deserialize;

/// `[till]`: discounts and the cash drawer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TillConfig {
    /// Largest line or ticket discount an associate gives alone, in percent (0-100); more
    /// needs a manager's PIN.
    #[serde(default = "default_associate_max_discount_pct")]
    pub associate_max_discount_pct: u32,
    /// Refuse cash sales while no cash session is open (`409 no_cash_session`, DESIGN.md
    /// §18). On unless set to `false` (a store that keeps no drawer); the demo opens a float
    /// at each store on first start, so its tills take cash at once.
    #[serde(default = "default_cash_session_required")]
    pub cash_session_required: bool,
}

fn default_associate_max_discount_pct() -> u32 {
    10
}

fn default_cash_session_required() -> bool {
    true
}

impl Default for TillConfig {
    fn default() -> Self {
        TillConfig {
            associate_max_discount_pct: default_associate_max_discount_pct(),
            cash_session_required: default_cash_session_required(),
        }
    }
}

impl TillConfig {
    pub(super) fn check(&self, errs: &mut Vec<ConfigError>) {
        if self.associate_max_discount_pct > 100 {
            push(
                errs,
                "till.associate_max_discount_pct",
                format!("must be 0-100, got {}", self.associate_max_discount_pct),
            );
        }
    }

    /// The associate's limit in basis points.
    pub fn associate_max_bp(&self) -> u32 {
        self.associate_max_discount_pct.min(100) * 100
    }
}

#[cfg(test)]
mod tests {
    use super::TillConfig;

    #[test]
    fn cash_sales_need_an_open_drawer_unless_the_store_says_it_keeps_none() {
        let absent: TillConfig = toml::from_str("").unwrap();
        assert!(
            absent.cash_session_required,
            "DESIGN.md §18: refused by default"
        );
        assert_eq!(absent, TillConfig::default());
        let none: TillConfig = toml::from_str("cash_session_required = false").unwrap();
        assert!(!none.cash_session_required);
        assert_eq!(none.associate_max_discount_pct, 10);
    }
}
