//! `[[staff]]` of a store: who may log in at the terminal, with an argon2 PIN hash (never a
//! plain PIN) and a unique staff number.

use super::{push, ConfigError};
use serde::Deserialize;
use std::collections::BTreeSet;

/// Role of a staff member at the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaffRole {
    Associate,
    Manager,
}

impl StaffRole {
    pub fn as_str(&self) -> &'static str {
        match self {
            StaffRole::Associate => "associate",
            StaffRole::Manager => "manager",
        }
    }
}

/// A staff member who may log in at the terminal. The PIN is stored only as an argon2 hash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffConfig {
    /// Staff number, 1-10 digits.
    pub staff: String,
    pub name: String,
    pub role: StaffRole,
    /// PHC string, `$argon2id$...`.
    pub pin_hash: String,
}

pub(super) fn check_staff(staff: &[StaffConfig], errs: &mut Vec<ConfigError>) {
    let mut seen = BTreeSet::new();
    for (i, s) in staff.iter().enumerate() {
        let ok_number = !s.staff.is_empty()
            && s.staff.len() <= 10
            && s.staff.bytes().all(|b| b.is_ascii_digit());
        if !ok_number {
            push(
                errs,
                &format!("staff[{i}].staff"),
                format!("expected 1-10 digits, got {:?}", s.staff),
            );
        } else if !seen.insert(s.staff.clone()) {
            push(
                errs,
                &format!("staff[{i}].staff"),
                format!("duplicate staff number {}", s.staff),
            );
        }
        if s.name.trim().is_empty() {
            push(errs, &format!("staff[{i}].name"), "must not be empty");
        }
        if !s.pin_hash.starts_with("$argon2") {
            push(
                errs,
                &format!("staff[{i}].pin_hash"),
                "expected an argon2 PHC string ($argon2id$...), never a plain PIN",
            );
        }
    }
}
