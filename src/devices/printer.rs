//! Printer transports: where ESC/POS bytes go. TCP (raw port 9100), a serial port or USB
//! printer device file (`/dev/usb/lp0`), or a plain file for tests and demos.
//!
//! `send` returns only after every byte was written and flushed, which is what the print queue
//! waits for before it marks a job printed. Every step has a timeout; errors name the printer.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::devices::escpos::{status_query, PrinterStatus, StatusKind};

/// Time allowed to connect to a network printer.
pub const CONNECT_TIMEOUT_MS: u64 = 3_000;
/// Time allowed to write one job.
pub const WRITE_TIMEOUT_MS: u64 = 10_000;
/// Time allowed for a status byte to come back.
pub const STATUS_TIMEOUT_MS: u64 = 1_000;

/// Where a printer is, as written in the store's config (`kind = "tcp"`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum PrinterTransport {
    /// A network printer's raw port, e.g. `192.0.2.10:9100`.
    Tcp {
        /// host:port.
        addr: String,
    },
    /// A serial port, e.g. `/dev/ttyUSB0` (line settings are left as configured by the OS).
    Serial {
        /// Device path.
        path: PathBuf,
    },
    /// A USB printer class device, e.g. `/dev/usb/lp0`.
    Usb {
        /// Device path.
        path: PathBuf,
    },
    /// A plain file jobs are appended to.
    File {
        /// File path.
        path: PathBuf,
    },
}

/// Why a job did not reach the printer.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    /// Could not connect or open the device.
    #[error("cannot reach printer {target}: {source}")]
    Unreachable {
        /// Address or path.
        target: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing the job failed part-way.
    #[error("writing to printer {target} failed: {source}")]
    Write {
        /// Address or path.
        target: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The printer did not answer in time.
    #[error("printer {target} timed out after {ms} ms")]
    Timeout {
        /// Address or path.
        target: String,
        /// The timeout.
        ms: u64,
    },
    /// Status queries need a two-way link.
    #[error("printer {0} cannot report status over this transport")]
    NoStatus(String),
}

impl PrinterTransport {
    /// Address or path, for messages.
    pub fn target(&self) -> String {
        match self {
            PrinterTransport::Tcp { addr } => addr.clone(),
            PrinterTransport::Serial { path }
            | PrinterTransport::Usb { path }
            | PrinterTransport::File { path } => path.display().to_string(),
        }
    }

    /// Delivers one job: returns after all bytes were written and flushed.
    pub async fn send(&self, job: &[u8]) -> Result<(), PrintError> {
        let target = self.target();
        let write_err = |source| PrintError::Write {
            target: target.clone(),
            source,
        };
        match self {
            PrinterTransport::Tcp { addr } => {
                let mut stream = self.connect(addr).await?;
                let write = async {
                    stream.write_all(job).await?;
                    stream.flush().await?;
                    stream.shutdown().await
                };
                timeout(&target, WRITE_TIMEOUT_MS, write)
                    .await?
                    .map_err(write_err)
            }
            PrinterTransport::Serial { path }
            | PrinterTransport::Usb { path }
            | PrinterTransport::File { path } => {
                let mut options = tokio::fs::OpenOptions::new();
                options.append(true);
                if matches!(self, PrinterTransport::File { .. }) {
                    options.create(true);
                }
                let mut file =
                    options
                        .open(path)
                        .await
                        .map_err(|source| PrintError::Unreachable {
                            target: target.clone(),
                            source,
                        })?;
                let write = async {
                    file.write_all(job).await?;
                    file.flush().await?;
                    file.sync_data().await.or_else(|e| {
                        // Character devices cannot fsync; the flush above is all they need.
                        if e.raw_os_error() == Some(nix::libc::EINVAL) {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                };
                timeout(&target, WRITE_TIMEOUT_MS, write)
                    .await?
                    .map_err(write_err)
            }
        }
    }

    /// Asks a network printer for its paper and cover state (`DLE EOT 1, 2, 4`).
    pub async fn status(&self) -> Result<PrinterStatus, PrintError> {
        let PrinterTransport::Tcp { addr } = self else {
            return Err(PrintError::NoStatus(self.target()));
        };
        let target = self.target();
        let mut stream = self.connect(addr).await?;
        let mut status = PrinterStatus::default();
        for kind in [StatusKind::Printer, StatusKind::Offline, StatusKind::Paper] {
            let ask = async {
                stream.write_all(&status_query(kind)).await?;
                stream.read_u8().await
            };
            let byte = timeout(&target, STATUS_TIMEOUT_MS, ask)
                .await?
                .map_err(|source| PrintError::Write {
                    target: target.clone(),
                    source,
                })?;
            status.absorb(kind, byte);
        }
        Ok(status)
    }

    async fn connect(&self, addr: &str) -> Result<TcpStream, PrintError> {
        let target = self.target();
        let stream = timeout(&target, CONNECT_TIMEOUT_MS, TcpStream::connect(addr))
            .await?
            .map_err(|source| PrintError::Unreachable {
                target: target.clone(),
                source,
            })?;
        // TCP "simultaneous open": retrying a local port with no listener can pick that same
        // port as the source and connect to itself, which would swallow a job as printed.
        if stream.local_addr().ok() == stream.peer_addr().ok() {
            return Err(PrintError::Unreachable {
                target,
                source: std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connected to itself: nothing listens there",
                ),
            });
        }
        Ok(stream)
    }
}

async fn timeout<F: std::future::Future>(
    target: &str,
    ms: u64,
    fut: F,
) -> Result<F::Output, PrintError> {
    tokio::time::timeout(Duration::from_millis(ms), fut)
        .await
        .map_err(|_| PrintError::Timeout {
            target: target.to_string(),
            ms,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_transport_appends_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lp0");
        let printer = PrinterTransport::File { path: path.clone() };
        printer.send(b"one").await.unwrap();
        printer.send(b"two").await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"onetwo");
    }

    #[tokio::test]
    async fn missing_device_is_unreachable() {
        let printer = PrinterTransport::Usb {
            path: "/nonexistent/usb/lp0".into(),
        };
        let err = printer.send(b"x").await.unwrap_err();
        assert!(err
            .to_string()
            .starts_with("cannot reach printer /nonexistent/usb/lp0"));
    }

    #[test]
    fn config_is_tagged_by_kind() {
        let t: PrinterTransport =
            toml::from_str("kind = \"tcp\"\naddr = \"127.0.0.1:9100\"").unwrap();
        assert_eq!(
            t,
            PrinterTransport::Tcp {
                addr: "127.0.0.1:9100".into()
            }
        );
    }
}
