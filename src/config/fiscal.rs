//! `[fiscal]` of a store config: the company that issues the store's invoices, its series,
//! time zone and QR validation URL, and optionally the AEAT endpoint the records are sent to.
//! Checked like every other section: a bad NIF check letter names the letter it expected.

use super::{push, ConfigError};
use crate::domain::fiscal::TaxId;
use serde::Deserialize;
use std::path::PathBuf;

/// Longest `NombreRazon` the AEAT schema accepts.
pub const NAME_LEN_MAX: usize = 120;
/// Longest series: `<series>-<n>` must fit the schema's 60 characters with room for `n`.
pub const SERIES_LEN_MAX: usize = 20;

/// The store's fiscal identity (`[fiscal]`, optional: without it sales issue no invoice).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiscalConfig {
    /// The issuer's NIF or CIF (`IDEmisorFactura`).
    pub nif: String,
    /// The issuer's legal name (`NombreRazonEmisor`).
    pub name: String,
    /// Address lines printed under the name.
    #[serde(default)]
    pub address: Vec<String>,
    /// This store node's invoice series: numbers are `<series>-<n>`, gapless.
    pub series: String,
    /// IANA zone of `FechaHoraHusoGenRegistro` and of the invoice date.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The AEAT's QR validation URL (production or its test environment).
    pub qr_base_url: String,
    /// Where records are submitted; absent: they are kept, not sent.
    #[serde(default)]
    pub aeat: Option<AeatConfig>,
}

fn default_timezone() -> String {
    "Europe/Madrid".to_string()
}

/// The AEAT's VERI*FACTU submission endpoint (`[fiscal.aeat]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeatConfig {
    /// SOAP endpoint, e.g. the test environment's
    /// `https://prewww1.aeat.es/wlpl/TIKE-CONT/ws/SistemaFacturacion/VerifactuSOAP`.
    pub url: String,
    /// PEM file with the client certificate and its private key (required for https).
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Longest wait between attempts after failures.
    #[serde(default = "default_backoff_ms_max")]
    pub retry_backoff_ms_max: u64,
}

fn default_backoff_ms_max() -> u64 {
    600_000
}

impl FiscalConfig {
    /// The validated NIF (check passed in `check`).
    pub fn tax_id(&self) -> Result<TaxId, crate::domain::fiscal::NifError> {
        TaxId::parse(&self.nif)
    }

    /// The configured zone.
    pub fn zone(&self) -> Result<jiff::tz::TimeZone, jiff::Error> {
        jiff::tz::TimeZone::get(&self.timezone)
    }

    pub(super) fn check(&self, errs: &mut Vec<ConfigError>) {
        if let Err(e) = self.tax_id() {
            push(errs, "fiscal.nif", e.to_string());
        }
        if self.name.trim().is_empty() || self.name.chars().count() > NAME_LEN_MAX {
            push(
                errs,
                "fiscal.name",
                format!("must be 1-{NAME_LEN_MAX} characters"),
            );
        }
        let series_ok = |c: char| c.is_ascii_alphanumeric() || "/_.".contains(c);
        if self.series.is_empty()
            || self.series.len() > SERIES_LEN_MAX
            || !self.series.chars().all(series_ok)
        {
            push(
                errs,
                "fiscal.series",
                format!(
                    "must be 1-{SERIES_LEN_MAX} of A-Z a-z 0-9 / _ . (numbers are <series>-<n>), got {:?}",
                    self.series
                ),
            );
        }
        if let Err(e) = self.zone() {
            push(
                errs,
                "fiscal.timezone",
                format!("unknown time zone {:?}: {e}", self.timezone),
            );
        }
        if !self.qr_base_url.starts_with("https://") || self.qr_base_url.contains('?') {
            push(
                errs,
                "fiscal.qr_base_url",
                format!(
                    "expected an https:// URL without a query, got {:?}",
                    self.qr_base_url
                ),
            );
        }
        if let Some(aeat) = &self.aeat {
            aeat.check(errs);
        }
    }
}

impl AeatConfig {
    fn check(&self, errs: &mut Vec<ConfigError>) {
        let https = self.url.starts_with("https://");
        if !(https || self.url.starts_with("http://")) {
            push(
                errs,
                "fiscal.aeat.url",
                format!("expected an http:// or https:// URL, got {:?}", self.url),
            );
        }
        match &self.client_cert {
            None if https => push(
                errs,
                "fiscal.aeat.client_cert",
                "the AEAT requires a client certificate over https: give a PEM file",
            ),
            None => {}
            Some(path) => {
                if let Err(e) = load_identity(path) {
                    push(errs, "fiscal.aeat.client_cert", e);
                }
            }
        }
        if !(1_000..=86_400_000).contains(&self.retry_backoff_ms_max) {
            push(
                errs,
                "fiscal.aeat.retry_backoff_ms_max",
                format!("must be 1000-86400000, got {}", self.retry_backoff_ms_max),
            );
        }
    }
}

/// Read the PEM file holding the client certificate and its key, as reqwest will use it.
pub fn load_identity(path: &std::path::Path) -> Result<reqwest::Identity, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&pem);
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    if !text.contains("PRIVATE KEY-----") {
        return Err(format!(
            "{} holds no PEM private key (put the key after the certificate)",
            path.display()
        ));
    }
    reqwest::Identity::from_pem(&pem).map_err(|e| {
        format!(
            "{} is not a usable certificate and key: {e}",
            path.display()
        )
    })
}
