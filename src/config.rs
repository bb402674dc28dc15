//! TOML configuration of a store node and of the HQ hub, validated once at start.
//!
//! A file says what it configures with a top-level `role = "store"` or `role = "hq"`. Parsing
//! is strict (`deny_unknown_fields`): a misspelt key is an error, not a silent default. Every
//! error names the key path at fault (`mqtt.port`, `staff[1].pin_hash`), and validation
//! collects all of them so one run of `storenode check-config` shows everything to fix.

use crate::domain::inventory::AllocationPolicy;
use crate::domain::StoreId;
use crate::signing::{KeyError, StoreKeys};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod fiscal;
pub use fiscal::{load_identity, AeatConfig, FiscalConfig};
mod customers;
mod storage;
pub use customers::{ContactPolicyConfig, WEBHOOK_SECRET_LEN_MIN};
pub use storage::StorageConfig;

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
    fn one(path: &str, message: impl Into<String>) -> ConfigErrors {
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

/// Which program a config file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Store,
    Hq,
}

/// MQTT broker connection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// Defaults to `storenode-<store>` or `storenode-hq`.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default = "default_keepalive_s")]
    pub keepalive_s: u16,
}

fn default_keepalive_s() -> u16 {
    30
}

/// Where the HTTP server listens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

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

/// A chain key for pickup QR MACs, given in hex in the file.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct QrKey(Vec<u8>);

/// Shortest QR key accepted, in bytes.
pub const QR_KEY_BYTES_MIN: usize = 16;

impl QrKey {
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A fresh random QR key (32 bytes as hex) to put first in `pickup.qr_keys` when rotating
/// (`storenode new-qr-key`).
pub fn new_qr_key_hex() -> String {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    hex::encode(key)
}

/// Rotation keeps a few keys at most: the current one and the ones codes in flight may use.
pub const QR_KEYS_MAX: usize = 4;

fn check_qr_keys(keys: &[QrKey], errs: &mut Vec<ConfigError>) {
    if keys.is_empty() {
        push(errs, "pickup.qr_keys", "needs at least one key");
    }
    if keys.len() > QR_KEYS_MAX {
        push(
            errs,
            "pickup.qr_keys",
            format!(
                "{} keys; keep at most {QR_KEYS_MAX} (the current one first, then the previous \
                 ones codes in flight may still use)",
                keys.len()
            ),
        );
    }
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].contains(k) {
            push(errs, &format!("pickup.qr_keys[{i}]"), "duplicate key");
        }
    }
}

impl fmt::Debug for QrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QrKey({} bytes)", self.0.len())
    }
}

impl TryFrom<String> for QrKey {
    type Error = String;
    fn try_from(s: String) -> Result<QrKey, String> {
        let bytes = hex::decode(s.trim()).map_err(|e| format!("not hex: {e}"))?;
        if bytes.len() < QR_KEY_BYTES_MIN {
            return Err(format!(
                "key of {} bytes, expected at least {QR_KEY_BYTES_MIN}",
                bytes.len()
            ));
        }
        Ok(QrKey(bytes))
    }
}

/// Pickup settings of a store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorePickupConfig {
    pub expire_after_days: u32,
    /// Newest first: the first signs, all verify (key rotation).
    pub qr_keys: Vec<QrKey>,
}

/// Pickup settings of HQ.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HqPickupConfig {
    /// Newest first: the first signs the QR payload of new orders.
    pub qr_keys: Vec<QrKey>,
}

/// A receipt or label printer. `uri` is `tcp://host:port`, `file:///path`,
/// `serial:///dev/ttyUSB0` or `usb:///dev/usb/lp0`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrinterConfig {
    pub name: String,
    pub uri: String,
    /// `receipt` (default) or `label`.
    #[serde(default)]
    pub kind: Option<String>,
}

/// A scanner source. `uri` is `tcp://listen-addr`, `serial:///dev/ttyACM0[?baud=N]`,
/// `bridge:///dev/ttyACM0[?baud=N]` (the counter bridge firmware), `evdev:///dev/input/eventN[?layout=us|es]`
/// or `stdin:` (see `devices::scanner::ScannerConfig::from_uri`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScannerConfig {
    pub name: String,
    pub uri: String,
}

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

    fn check(&self, errs: &mut Vec<ConfigError>) {
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

    fn check(&self, errs: &mut Vec<ConfigError>) {
        check_chain(&self.chain, errs);
        check_mqtt(&self.mqtt, errs);
        self.returns.check(errs);
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

/// Every configured printer must get jobs: the terminal prints receipts (and kicks the drawer)
/// on the one receipt printer and bag labels on the one label printer, if any.
fn check_printer_kinds(printers: &[PrinterConfig], errs: &mut Vec<ConfigError>) {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (i, p) in printers.iter().enumerate() {
        let kind = p.kind.as_deref().unwrap_or("receipt");
        if (kind == "receipt" || kind == "label") && !seen.insert(kind) {
            push(
                errs,
                &format!("printers[{i}].kind"),
                format!(
                    "a second {kind} printer would never be sent a job: the terminal prints \
                     {kind}s on the first one; remove it or give it the other kind"
                ),
            );
        }
    }
    if seen.contains("label") && !seen.contains("receipt") {
        push(
            errs,
            "printers",
            "a label printer alone prints no receipts; add a printer of kind \"receipt\"",
        );
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
    /// Where the op log lives: absent, the SQLite file `db`; `url`, PostgreSQL.
    #[serde(default)]
    pub storage: StorageConfig,
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

    fn check(&self, errs: &mut Vec<ConfigError>) {
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
        self.storage.check(errs);
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

fn push(errs: &mut Vec<ConfigError>, path: &str, message: impl Into<String>) {
    errs.push(ConfigError {
        path: path.to_string(),
        message: message.into(),
    });
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

fn check_mqtt(mqtt: &MqttConfig, errs: &mut Vec<ConfigError>) {
    if mqtt.host.trim().is_empty() {
        push(errs, "mqtt.host", "must not be empty");
    }
    if mqtt.port == 0 {
        push(errs, "mqtt.port", "must be 1-65535, got 0");
    }
    if !(5..=3600).contains(&mqtt.keepalive_s) {
        push(
            errs,
            "mqtt.keepalive_s",
            format!("must be 5-3600, got {}", mqtt.keepalive_s),
        );
    }
    if let Some(id) = &mqtt.client_id {
        if id.is_empty() || id.len() > 64 {
            push(errs, "mqtt.client_id", "must be 1-64 characters");
        }
    }
}

fn check_rate(path: &str, value: u32, errs: &mut Vec<ConfigError>) {
    if !(1..=1_000_000).contains(&value) {
        push(errs, path, format!("must be 1-1000000, got {value}"));
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

const PRINTER_SCHEMES: &[&str] = &["tcp://", "file://", "serial://", "usb://"];

fn check_devices(c: &StoreConfig, errs: &mut Vec<ConfigError>) {
    let mut names = BTreeSet::new();
    for (i, p) in c.printers.iter().enumerate() {
        if !PRINTER_SCHEMES.iter().any(|s| p.uri.starts_with(s)) {
            push(
                errs,
                &format!("printers[{i}].uri"),
                format!("expected one of {PRINTER_SCHEMES:?}, got {:?}", p.uri),
            );
        }
        if let Some(kind) = &p.kind {
            if kind != "receipt" && kind != "label" {
                push(
                    errs,
                    &format!("printers[{i}].kind"),
                    format!("expected \"receipt\" or \"label\", got {kind:?}"),
                );
            }
        }
        if p.name.trim().is_empty() || !names.insert(p.name.clone()) {
            push(
                errs,
                &format!("printers[{i}].name"),
                "empty or duplicate name",
            );
        }
    }
    check_printer_kinds(&c.printers, errs);
    let mut names = BTreeSet::new();
    for (i, s) in c.scanners.iter().enumerate() {
        if let Err(reason) = crate::devices::scanner::ScannerConfig::from_uri(&s.uri) {
            push(errs, &format!("scanners[{i}].uri"), reason);
        }
        if s.name.trim().is_empty() || !names.insert(s.name.clone()) {
            push(
                errs,
                &format!("scanners[{i}].name"),
                "empty or duplicate name",
            );
        }
    }
}

fn check_staff(staff: &[StaffConfig], errs: &mut Vec<ConfigError>) {
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

#[cfg(test)]
mod tests;
