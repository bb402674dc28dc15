//! Scanner sources: serial ports (and ptys), TCP network scanners, stdin, evdev keyboard wedges
//! and the counter bridge, each an async task sending [`ScanEvent`]s into one channel.
//!
//! A source that fails (device unplugged, port in use) is reopened with bounded exponential
//! backoff; its state and last error are published on a watch channel for the status page.
//! Bytes become lines ([`lines`]) or key presses become lines ([`keymap`]), and each line is
//! parsed by `devices::barcode`: a bad scan is an event with an error, never a crash.

pub mod keymap;
pub mod lines;
mod sources;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::devices::barcode::{parse_scan_with_aim, split_aim, AimId, BarcodeError, Scan};
pub use keymap::KeyboardLayout;

/// First retry delay after a source fails.
pub const RETRY_BACKOFF_MS_MIN: u64 = 100;
/// Longest retry delay.
pub const RETRY_BACKOFF_MS_MAX: u64 = 5_000;
/// Network scanners connected at once to one TCP source.
pub const TCP_CLIENTS_MAX: usize = 8;

/// One scan as read from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEvent {
    /// Which source it came from (`tcp:0.0.0.0:4001`, `serial:/dev/ttyACM0`, ...).
    pub source: String,
    /// The line as received (without CR/LF).
    pub raw: String,
    /// The AIM symbology identifier, if the scanner sent one.
    pub aim: Option<AimId>,
    /// What it is, or why it is not a valid scan.
    pub parsed: Result<Scan, BarcodeError>,
}

impl ScanEvent {
    /// Parses `raw` into an event from `source`.
    pub fn new(source: &str, raw: String) -> ScanEvent {
        let (aim, parsed) = match parse_scan_with_aim(&raw) {
            Ok((aim, scan)) => (aim, Ok(scan)),
            // Keep the symbology of a refused scan: it helps to tell what was scanned.
            Err(e) => (split_aim(raw.trim()).ok().and_then(|(aim, _)| aim), Err(e)),
        };
        ScanEvent {
            source: source.to_string(),
            raw,
            aim,
            parsed,
        }
    }
}

/// A scanner source as configured per store (`kind = "tcp"`, `"serial"`, `"stdin"`,
/// `"evdev"`, `"bridge"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ScannerConfig {
    /// Listens for network scanners sending `code\r\n`.
    Tcp {
        /// Address to listen on.
        listen: SocketAddr,
    },
    /// A serial scanner or a pty: raw mode, lines ended by CR or LF.
    Serial {
        /// Device path, e.g. `/dev/ttyACM0`.
        path: PathBuf,
        /// Baud rate (ignored by USB CDC devices and ptys).
        #[serde(default = "default_baud")]
        baud: u32,
    },
    /// The counter bridge (firmware/): a serial link carrying framed scans.
    Bridge {
        /// Device path, e.g. `/dev/ttyACM0`.
        path: PathBuf,
        /// Baud rate.
        #[serde(default = "default_baud")]
        baud: u32,
    },
    /// Lines typed on standard input (demos).
    Stdin,
    /// A keyboard-wedge scanner as a Linux input device, grabbed so its keys do not reach the
    /// console.
    Evdev {
        /// Device path, e.g. `/dev/input/by-id/usb-Honeywell...-event-kbd`.
        path: PathBuf,
        /// Keyboard layout the scanner is configured for.
        #[serde(default)]
        layout: KeyboardLayout,
    },
}

fn default_baud() -> u32 {
    9600
}

impl ScannerConfig {
    /// The name events and status carry.
    pub fn name(&self) -> String {
        match self {
            ScannerConfig::Tcp { listen } => format!("tcp:{listen}"),
            ScannerConfig::Serial { path, .. } => format!("serial:{}", path.display()),
            ScannerConfig::Bridge { path, .. } => format!("bridge:{}", path.display()),
            ScannerConfig::Stdin => "stdin".to_string(),
            ScannerConfig::Evdev { path, .. } => format!("evdev:{}", path.display()),
        }
    }
}

impl ScannerConfig {
    /// A source from the URI a store config names it by: `tcp://0.0.0.0:4001`,
    /// `serial:///dev/ttyACM0?baud=115200`, `bridge:///dev/ttyACM0`,
    /// `evdev:///dev/input/event3?layout=es` or `stdin:`. The error says what is wrong.
    pub fn from_uri(uri: &str) -> Result<ScannerConfig, String> {
        let uri = uri.trim();
        if uri == "stdin:" || uri == "stdin://" {
            return Ok(ScannerConfig::Stdin);
        }
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
            format!("{uri:?} has no scheme (tcp://, serial://, bridge://, evdev://, stdin:)")
        })?;
        let (target, query) = match rest.split_once('?') {
            Some((t, q)) => (t, Some(q)),
            None => (rest, None),
        };
        let params = parse_query(query)?;
        let allowed: &[&str] = match scheme {
            "serial" | "bridge" => &["baud"],
            "evdev" => &["layout"],
            _ => &[],
        };
        if let Some((key, _)) = params.iter().find(|(k, _)| !allowed.contains(k)) {
            return Err(format!("unknown parameter {key:?} for {scheme}://"));
        }
        let param = |key: &str| params.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let path = || {
            if target.starts_with('/') {
                Ok(PathBuf::from(target))
            } else {
                Err(format!(
                    "{scheme}:// needs an absolute device path, got {target:?}"
                ))
            }
        };
        let baud = || match param("baud") {
            None => Ok(default_baud()),
            Some(b) => b
                .parse::<u32>()
                .ok()
                .filter(|b| *b > 0)
                .ok_or_else(|| format!("baud must be a positive number, got {b:?}")),
        };
        match scheme {
            "tcp" => target
                .parse::<SocketAddr>()
                .map(|listen| ScannerConfig::Tcp { listen })
                .map_err(|_| format!("tcp:// needs a listen address like 0.0.0.0:4001, got {target:?}")),
            "serial" => Ok(ScannerConfig::Serial {
                path: path()?,
                baud: baud()?,
            }),
            "bridge" => Ok(ScannerConfig::Bridge {
                path: path()?,
                baud: baud()?,
            }),
            "evdev" => {
                let layout = match param("layout") {
                    None | Some("us") => KeyboardLayout::Us,
                    Some("es") => KeyboardLayout::Es,
                    Some(other) => return Err(format!("layout must be us or es, got {other:?}")),
                };
                Ok(ScannerConfig::Evdev {
                    path: path()?,
                    layout,
                })
            }
            other => Err(format!(
                "unsupported scanner scheme {other:?} (tcp://, serial://, bridge://, evdev://, stdin:)"
            )),
        }
    }
}

/// `a=1&b=2` as pairs; an empty or missing query is no pairs.
fn parse_query(query: Option<&str>) -> Result<Vec<(&str, &str)>, String> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .map(|pair| {
            pair.split_once('=')
                .ok_or_else(|| format!("parameter {pair:?} is not key=value"))
        })
        .collect()
}

/// Where a source stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// Opening the device or binding the port.
    Connecting,
    /// Reading scans.
    Connected,
    /// Failed; the next attempt comes after a backoff.
    Retrying {
        /// Failed attempts in a row.
        attempt: u32,
    },
    /// Finished (stdin reached its end, or shutdown).
    Stopped,
}

/// A source's status as shown on the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerStatus {
    /// Source name.
    pub source: String,
    /// Current state.
    pub state: SourceState,
    /// The last error, kept after a recovery so staff can see what happened.
    pub last_error: Option<String>,
    /// Scans read.
    pub scans: u64,
    /// Scans refused by the parser.
    pub bad_scans: u64,
}

/// A running source.
pub struct ScannerHandle {
    /// The task; it ends after shutdown (or at the end of stdin).
    pub join: JoinHandle<()>,
    /// Live status.
    pub status: watch::Receiver<ScannerStatus>,
}

fn context(
    name: String,
    tx: mpsc::Sender<ScanEvent>,
    shutdown: watch::Receiver<bool>,
) -> (sources::Ctx, watch::Receiver<ScannerStatus>) {
    let (status_tx, status) = watch::channel(ScannerStatus {
        source: name.clone(),
        state: SourceState::Connecting,
        last_error: None,
        scans: 0,
        bad_scans: 0,
    });
    let ctx = sources::Ctx {
        name,
        tx,
        status: status_tx,
        shutdown,
    };
    (ctx, status)
}

/// Starts a configured source: scans go to `tx` until `shutdown` turns true.
pub fn spawn_scanner(
    config: ScannerConfig,
    tx: mpsc::Sender<ScanEvent>,
    shutdown: watch::Receiver<bool>,
) -> ScannerHandle {
    let (ctx, status) = context(config.name(), tx, shutdown);
    let join = tokio::spawn(sources::run(config, ctx));
    ScannerHandle { join, status }
}

/// Starts a source over any byte stream (what `stdin` uses; tests pass a pipe). It stops at
/// the end of the stream: a closed stream is not reopened.
pub fn spawn_reader_scanner<R>(
    name: &str,
    reader: R,
    tx: mpsc::Sender<ScanEvent>,
    shutdown: watch::Receiver<bool>,
) -> ScannerHandle
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    let (ctx, status) = context(name.to_string(), tx, shutdown);
    let join = tokio::spawn(sources::run_reader(reader, ctx));
    ScannerHandle { join, status }
}

#[cfg(test)]
mod uri_tests {
    use super::*;

    #[test]
    fn every_scheme_a_store_config_can_name_becomes_a_source() {
        assert_eq!(
            ScannerConfig::from_uri("tcp://127.0.0.1:4001"),
            Ok(ScannerConfig::Tcp {
                listen: "127.0.0.1:4001".parse().unwrap()
            })
        );
        assert_eq!(
            ScannerConfig::from_uri("serial:///dev/ttyACM0"),
            Ok(ScannerConfig::Serial {
                path: "/dev/ttyACM0".into(),
                baud: 9600
            })
        );
        assert_eq!(
            ScannerConfig::from_uri("bridge:///dev/ttyACM1?baud=115200"),
            Ok(ScannerConfig::Bridge {
                path: "/dev/ttyACM1".into(),
                baud: 115_200
            })
        );
        assert_eq!(
            ScannerConfig::from_uri("evdev:///dev/input/event3?layout=es"),
            Ok(ScannerConfig::Evdev {
                path: "/dev/input/event3".into(),
                layout: KeyboardLayout::Es
            })
        );
        assert_eq!(ScannerConfig::from_uri("stdin:"), Ok(ScannerConfig::Stdin));
    }

    #[test]
    fn a_bad_scanner_uri_is_refused_with_the_reason() {
        let err = |uri: &str| ScannerConfig::from_uri(uri).unwrap_err();
        assert!(err("tcp://scanner.local:4001").contains("listen address"));
        assert!(err("serial://ttyACM0").contains("absolute device path"));
        assert!(err("serial:///dev/ttyACM0?baud=fast").contains("baud"));
        assert!(err("serial:///dev/ttyACM0?parity=odd").contains("unknown parameter"));
        assert!(err("evdev:///dev/input/event3?layout=fr").contains("us or es"));
        assert!(err("ftp://x").contains("unsupported scanner scheme"));
        assert!(err("/dev/ttyACM0").contains("no scheme"));
    }
}
