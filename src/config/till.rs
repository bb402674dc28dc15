//! `[till]` of a store config (DESIGN.md §18): how far an associate may discount without a
//! manager, whether cash sales need an open cash session, and the store's tills (each with
//! its own drawer; a terminal names its till at login).

use super::error::push;
use super::ConfigError;
use crate::domain::ids::TillId;
use crate::domain::till::default_till;
use serde::Deserialize;

/// Most tills one store may configure.
pub const TILLS_MAX: usize = 64;

/// `[till]`: discounts, the cash drawers and the tills.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
    /// The store's tills, each with its own drawer and cash sessions; the first is the one a
    /// terminal uses when its login names none. Default `["T1"]`, the till of every session
    /// opened before tills existed.
    #[serde(default = "default_tills")]
    pub tills: Vec<TillId>,
}

fn default_tills() -> Vec<TillId> {
    vec![default_till()]
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
            tills: default_tills(),
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
        if self.tills.is_empty() || self.tills.len() > TILLS_MAX {
            push(
                errs,
                "till.tills",
                format!("needs 1-{TILLS_MAX} tills, got {}", self.tills.len()),
            );
        }
        for (i, t) in self.tills.iter().enumerate() {
            if t.as_str().len() > 16 {
                push(
                    errs,
                    &format!("till.tills[{i}]"),
                    format!("a till id has at most 16 characters, got {t}"),
                );
            }
            if self.tills[..i].contains(t) {
                push(
                    errs,
                    &format!("till.tills[{i}]"),
                    format!("till {t} is listed twice"),
                );
            }
        }
    }

    /// The till a terminal uses when its login names none: the first configured.
    pub fn main_till(&self) -> TillId {
        self.tills.first().cloned().unwrap_or_else(default_till)
    }

    /// Whether `till` is one of the store's tills.
    pub fn knows(&self, till: &TillId) -> bool {
        self.tills.contains(till)
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

    #[test]
    fn a_store_lists_its_tills_and_the_first_is_the_main_one() {
        let absent: TillConfig = toml::from_str("").unwrap();
        assert_eq!(absent.main_till().as_str(), "T1");
        let two: TillConfig = toml::from_str(r#"tills = ["T2", "T1"]"#).unwrap();
        assert_eq!(two.main_till().as_str(), "T2");
        let mut errs = Vec::new();
        two.check(&mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let twice: TillConfig = toml::from_str(r#"tills = ["T1", "T1"]"#).unwrap();
        twice.check(&mut errs);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "till.tills[1]");
        let none: TillConfig = toml::from_str("tills = []").unwrap();
        errs.clear();
        none.check(&mut errs);
        assert_eq!(errs[0].path, "till.tills");
        assert!(toml::from_str::<TillConfig>(r#"tills = ["caja 1"]"#).is_err());
    }
}
