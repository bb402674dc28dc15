//! `[[printers]]` and `[[scanners]]` of a store: device URIs and names, checked so every
//! configured printer is sent jobs (one receipt printer, at most one label printer).

use super::{push, ConfigError, StoreConfig};
use serde::Deserialize;
use std::collections::BTreeSet;

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

const PRINTER_SCHEMES: &[&str] = &["tcp://", "file://", "serial://", "usb://"];

pub(super) fn check_devices(c: &StoreConfig, errs: &mut Vec<ConfigError>) {
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
