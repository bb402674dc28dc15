//! `[storage]` of an HQ config: where HQ's op log lives. Absent, HQ keeps everything in its
//! SQLite file (`db`); with `url = "postgres://..."` the log is shared in PostgreSQL and the
//! file becomes its local cache (`store::pg`). The URL is checked here; it is never logged.

use super::{push, ConfigError};
use serde::Deserialize;

/// HQ's storage (`[storage]`, optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// PostgreSQL connection URL, e.g. `postgres://storenode@db.example:5432/storenode`.
    #[serde(default)]
    pub url: Option<String>,
    /// Whether this process runs the sync engine with the stores (default). Several HQ
    /// processes may share one PostgreSQL log for the API; exactly one of them syncs.
    #[serde(default = "yes")]
    pub sync: bool,
}

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            url: None,
            sync: true,
        }
    }
}

fn yes() -> bool {
    true
}

impl StorageConfig {
    pub(super) fn check(&self, errs: &mut Vec<ConfigError>) {
        if let Some(url) = &self.url {
            if let Err(e) = crate::store::pg::parse_url(url) {
                push(errs, "storage.url", e.to_string());
            }
        }
        if !self.sync && self.url.is_none() {
            push(
                errs,
                "storage.sync",
                "sync = false needs a shared log (storage.url): this process would reach no store"
                    .to_string(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_accepted_and_anything_else_named() {
        let ok = StorageConfig {
            url: Some("postgres://storenode@127.0.0.1:5432/hq".to_string()),
            sync: false,
        };
        let mut errs = Vec::new();
        ok.check(&mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let bad = StorageConfig {
            url: Some("mysql://hq".to_string()),
            sync: true,
        };
        bad.check(&mut errs);
        assert_eq!(errs.len(), 1);
        assert!(format!("{errs:?}").contains("storage.url"), "{errs:?}");
        let alone = StorageConfig {
            url: None,
            sync: false,
        };
        alone.check(&mut errs);
        assert_eq!(errs.len(), 2);
        assert!(
            format!("{:?}", errs[1]).contains("storage.sync"),
            "{errs:?}"
        );
    }
}
