//! The HQ hub's config (`role = "hq"`): API tokens, the stores and their public keys, the
//! ready webhook, pickup keys, rate limits and the contact policy.

use super::network::check_mqtt;
use super::pickup::check_qr_keys;
use super::security::check_rate;
use super::{
    check_chain, customers, push, Config, ConfigError, ConfigErrors, ContactPolicyConfig,
    HqPickupConfig, HqRateLimitConfig, HttpConfig, MqttConfig, Role,
};
use crate::domain::StoreId;
use crate::signing::{KeyError, StoreKeys};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where the ready webhook goes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL; no webhook when absent.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "default_backoff_ms_max")]
    pub retry_backoff_ms_max: u64,
    /// Shared secret every delivery is signed with (HMAC-SHA256); required with `url`.
    #[serde(default)]
    pub secret: Option<String>,
    /// Send `cart.abandoned` once a cart is unchanged this long; none when absent.
    #[serde(default)]
    pub abandoned_cart_hours: Option<u32>,
}

fn default_backoff_ms_max() -> u64 {
    60_000
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: None,
            retry_backoff_ms_max: default_backoff_ms_max(),
            secret: None,
            abandoned_cart_hours: None,
        }
    }
}

/// Configuration of the HQ hub (`storenode hq`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HqConfig {
    pub role: Role,
    pub chain: String,
    pub db: PathBuf,
    pub mqtt: MqttConfig,
    pub http: HttpConfig,
    /// Bearer tokens the online shop may use (several, for rotation).
    #[serde(default)]
    pub api_tokens: Vec<String>,
    /// A single token; joins `api_tokens`.
    #[serde(default)]
    pub token: Option<String>,
    pub stores: Vec<StoreId>,
    /// Public keys of the stores' batch-signing keys, store id -> 64 hex digits (printed by
    /// `storenode key --db <store db> --store <id>`, and logged by `storenode run` at start).
    /// When present, every store in `stores` needs one and HQ refuses unsigned, wrongly signed
    /// and cross-store batches; when absent, unsigned batches are accepted.
    #[serde(default)]
    pub store_keys: BTreeMap<String, String>,
    #[serde(default)]
    pub webhook: WebhookConfig,
    pub pickup: HqPickupConfig,
    #[serde(default)]
    pub rate_limit: HqRateLimitConfig,
    #[serde(default)]
    pub contact_policy: ContactPolicyConfig,
    #[serde(default)]
    pub ship_to_store: super::ShipToStoreConfig,
    /// Where the op log lives: absent, the SQLite file `db`; `url`, PostgreSQL.
    #[serde(default)]
    pub storage: super::StorageConfig,
    /// HQ staff accounts of the console (`[console]`).
    #[serde(default)]
    pub console: super::ConsoleConfig,
}

/// Shortest API token accepted.
pub const TOKEN_LEN_MIN: usize = 8;

impl HqConfig {
    /// Every accepted bearer token.
    pub fn tokens(&self) -> Vec<String> {
        let mut all = self.api_tokens.clone();
        all.extend(self.token.clone());
        all
    }
    pub fn client_id(&self) -> String {
        self.mqtt
            .client_id
            .clone()
            .unwrap_or_else(|| "storenode-hq".to_string())
    }
    /// The registered store public keys, or `None` when `store_keys` is absent (unsigned
    /// batches accepted).
    pub fn store_keys(&self) -> Result<Option<StoreKeys>, KeyError> {
        if self.store_keys.is_empty() {
            return Ok(None);
        }
        let mut entries = Vec::new();
        for (store, key) in &self.store_keys {
            let id = StoreId::parse(store).map_err(|e| KeyError::BadPublicKey {
                store: store.clone(),
                reason: e.to_string(),
            })?;
            entries.push((id, key.as_str()));
        }
        StoreKeys::parse(entries).map(Some)
    }
    /// Read and validate an HQ config file.
    pub fn load(path: &Path) -> Result<HqConfig, ConfigErrors> {
        match Config::load(path)? {
            Config::Hq(c) => Ok(*c),
            Config::Store(_) => Err(ConfigErrors::one(
                "role",
                "this is a store config; `storenode hq` needs role = \"hq\"",
            )),
        }
    }

    pub(super) fn check(&self, errs: &mut Vec<ConfigError>) {
        check_chain(&self.chain, errs);
        check_mqtt(&self.mqtt, errs);
        let tokens = self.tokens();
        if tokens.is_empty() {
            push(
                errs,
                "api_tokens",
                "needs at least one token (or set `token`)",
            );
        }
        for (i, t) in self.api_tokens.iter().enumerate() {
            check_token(&format!("api_tokens[{i}]"), t, errs);
        }
        if let Some(t) = &self.token {
            check_token("token", t, errs);
        }
        if self.stores.is_empty() {
            push(errs, "stores", "needs at least one store");
        }
        let mut seen = BTreeSet::new();
        for (i, s) in self.stores.iter().enumerate() {
            if !seen.insert(s) {
                push(
                    errs,
                    &format!("stores[{i}]"),
                    format!("duplicate store {s}"),
                );
            }
        }
        if let Some(url) = &self.webhook.url {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
                push(
                    errs,
                    "webhook.url",
                    format!("expected an http:// or https:// URL, got {url:?}"),
                );
            }
        }
        if !(100..=3_600_000).contains(&self.webhook.retry_backoff_ms_max) {
            push(
                errs,
                "webhook.retry_backoff_ms_max",
                format!(
                    "must be 100-3600000, got {}",
                    self.webhook.retry_backoff_ms_max
                ),
            );
        }
        check_qr_keys(&self.pickup.qr_keys, errs);
        customers::check_webhook(
            self.webhook.url.as_deref(),
            self.webhook.secret.as_deref(),
            self.webhook.abandoned_cart_hours,
            errs,
        );
        self.contact_policy.check(errs);
        self.ship_to_store.check(errs);
        self.storage.check(errs);
        self.console.check(errs);
        self.check_store_keys(errs);
        let r = &self.rate_limit;
        check_rate("rate_limit.burst", r.burst, errs);
        check_rate("rate_limit.per_minute", r.per_minute, errs);
        check_rate(
            "rate_limit.unauthenticated_burst",
            r.unauthenticated_burst,
            errs,
        );
        check_rate(
            "rate_limit.unauthenticated_per_minute",
            r.unauthenticated_per_minute,
            errs,
        );
    }

    fn check_store_keys(&self, errs: &mut Vec<ConfigError>) {
        if self.store_keys.is_empty() {
            return;
        }
        for (store, key) in &self.store_keys {
            let path = format!("store_keys.{store}");
            match StoreId::parse(store) {
                Ok(id) if !self.stores.contains(&id) => {
                    push(errs, &path, format!("{store} is not in `stores`"));
                }
                Ok(id) => {
                    if let Err(e) = StoreKeys::parse([(id, key.as_str())]) {
                        push(errs, &path, e.to_string());
                    }
                }
                Err(e) => push(errs, &path, e.to_string()),
            }
        }
        for store in &self.stores {
            if !self.store_keys.contains_key(store.as_str()) {
                push(
                    errs,
                    &format!("store_keys.{store}"),
                    format!(
                        "missing: with store_keys set every store needs its public key \
                         (`storenode key --db <its db> --store {store}` prints it)"
                    ),
                );
            }
        }
    }
}

fn check_token(path: &str, token: &str, errs: &mut Vec<ConfigError>) {
    if token.len() < TOKEN_LEN_MIN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        push(
            errs,
            path,
            format!("must be at least {TOKEN_LEN_MIN} printable characters without spaces"),
        );
    }
}
