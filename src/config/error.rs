//! The errors of a config file: each names the key path at fault, and validation collects
//! all of them so one run of `check-config` shows everything to fix.

use std::fmt;

/// One problem in a config file: the key path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, e.g. `mqtt.port` or `staff[0].pin_hash`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config file (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("; "))
    }
}

impl ConfigErrors {
    pub(super) fn one(path: &str, message: impl Into<String>) -> ConfigErrors {
        ConfigErrors(vec![ConfigError {
            path: path.to_string(),
            message: message.into(),
        }])
    }
    /// Whether some error names exactly `path`.
    pub fn names(&self, path: &str) -> bool {
        self.0.iter().any(|e| e.path == path)
    }
}

pub(super) fn push(errs: &mut Vec<ConfigError>, path: &str, message: impl Into<String>) {
    errs.push(ConfigError {
        path: path.to_string(),
        message: message.into(),
    });
}
