//! Rate limits and cookie hardening: the terminal's `[terminal]` and HQ's `[rate_limit]`
//! sections, both optional with safe defaults.

use super::{push, ConfigError};
use serde::Deserialize;

/// The associate terminal's hardening (`[terminal]`, optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TerminalSecurityConfig {
    /// Login attempts per client IP at once...
    pub login_burst: u32,
    /// ...then this many a minute (the per-staff PIN lockout applies too).
    pub login_per_minute: u32,
    /// Mark the session cookie `Secure`: set it when the terminal is reached over https
    /// (a TLS proxy in front); plain http on loopback (the demo) needs it off.
    pub secure_cookie: bool,
}

impl Default for TerminalSecurityConfig {
    fn default() -> Self {
        TerminalSecurityConfig {
            login_burst: 20,
            login_per_minute: 30,
            secure_cookie: false,
        }
    }
}

/// Rate limits of HQ's API (`[rate_limit]`, optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HqRateLimitConfig {
    /// Requests per bearer token at once...
    pub burst: u32,
    /// ...then this many a minute.
    pub per_minute: u32,
    /// Requests with a missing or wrong token, per client IP, at once...
    pub unauthenticated_burst: u32,
    /// ...then this many a minute.
    pub unauthenticated_per_minute: u32,
}

impl Default for HqRateLimitConfig {
    fn default() -> Self {
        HqRateLimitConfig {
            burst: 600,
            per_minute: 6_000,
            unauthenticated_burst: 20,
            unauthenticated_per_minute: 60,
        }
    }
}

pub(super) fn check_rate(path: &str, value: u32, errs: &mut Vec<ConfigError>) {
    if !(1..=1_000_000).contains(&value) {
        push(errs, path, format!("must be 1-1000000, got {value}"));
    }
}
