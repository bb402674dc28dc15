//! Everything a store node serves and drives beside sync: the associate terminal, its print
//! worker, staff from the config, and the node's own `/healthz` and `/metrics`.

use super::store_http::StoreSyncView;
use crate::config::StoreConfig;
use crate::devices::escpos::document::StoreHeader;
use crate::devices::print_queue::{Backoff, PrintWorker};
use crate::devices::printer::PrinterTransport;
use crate::devices::scanner::{spawn_scanner, ScannerConfig};
use crate::http_security::{security_headers, RateLimit, TERMINAL_CSP};
use crate::store::Node;
use crate::terminal::print::{MemoryPrintSink, PrintSink};
use crate::terminal::spool::{PrinterQueue, QueuePrintSink};
use crate::terminal::{TerminalConfig, TerminalState};
use anyhow::Context;
use axum::Router;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// A printer URI from the config as a transport.
pub fn transport(uri: &str) -> anyhow::Result<PrinterTransport> {
    if let Some(addr) = uri.strip_prefix("tcp://") {
        return Ok(PrinterTransport::Tcp {
            addr: addr.to_string(),
        });
    }
    if let Some(path) = uri.strip_prefix("file://") {
        return Ok(PrinterTransport::File {
            path: PathBuf::from(path),
        });
    }
    if let Some(path) = uri.strip_prefix("serial://") {
        return Ok(PrinterTransport::Serial {
            path: PathBuf::from(path),
        });
    }
    if let Some(path) = uri.strip_prefix("usb://") {
        return Ok(PrinterTransport::Usb {
            path: PathBuf::from(path),
        });
    }
    anyhow::bail!("unsupported printer uri {uri}")
}

/// Staff from the config, with their argon2 hashes as given.
async fn load_staff(node: &Node, cfg: &StoreConfig) -> anyhow::Result<()> {
    let staff: Vec<(String, String, String, String)> = cfg
        .staff
        .iter()
        .map(|s| {
            (
                s.staff.clone(),
                s.name.clone(),
                s.role.as_str().to_string(),
                s.pin_hash.clone(),
            )
        })
        .collect();
    node.write(move |tx| {
        for (staff, name, role, hash) in &staff {
            tx.execute(
                "INSERT INTO terminal_staff (staff, name, role, pin_hash) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(staff) DO UPDATE SET name = ?2, role = ?3, pin_hash = ?4",
                rusqlite::params![staff, name, role, hash],
            )?;
        }
        Ok(())
    })
    .await
    .context("loading staff")?;
    Ok(())
}

/// Starts a print worker for every configured printer (each drains its own queue through the
/// node's writer) and returns the terminal's sink: receipts and drawer kicks go to the receipt
/// printer, bag labels to the label printer when there is one (`check-config` allows at most
/// one of each kind, and no label printer alone). `None` without printers.
fn start_printers(
    node: &Node,
    cfg: &StoreConfig,
    header: StoreHeader,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<Option<(QueuePrintSink, Vec<JoinHandle<()>>)>> {
    let mut tasks = Vec::new();
    let mut receipt = None;
    let mut label = None;
    for p in &cfg.printers {
        let wake = Arc::new(Notify::new());
        let worker = PrintWorker {
            node: node.clone(),
            printer: p.name.clone(),
            transport: transport(&p.uri).with_context(|| format!("printer {:?}", p.name))?,
            backoff: Backoff::default(),
            wake: wake.clone(),
        };
        let (task, health) = worker.spawn(shutdown.clone());
        let name = p.name.clone();
        tasks.push(tokio::spawn(async move {
            if let Ok(Err(e)) = task.await {
                tracing::error!(printer = %name, error = %e, "print worker stopped");
            }
        }));
        let slot = match p.kind.as_deref() {
            Some("label") => &mut label,
            _ => &mut receipt,
        };
        if slot.is_none() {
            *slot = Some(PrinterQueue {
                name: p.name.clone(),
                wake,
                health: Some(health),
            });
        }
    }
    let Some(receipt) = receipt else {
        return Ok(None);
    };
    Ok(Some((QueuePrintSink::new(receipt, label, header), tasks)))
}

/// Scans a source may queue while the terminal forwards the previous ones.
const SCAN_QUEUE: usize = 64;

/// Starts the configured scanner sources: their scans show on every open terminal page and
/// their status on the status screen. The sources stop when `shutdown` turns true.
fn start_scanners(
    cfg: &StoreConfig,
    terminal: &TerminalState,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    if cfg.scanners.is_empty() {
        return Ok(Vec::new());
    }
    let (tx, rx) = tokio::sync::mpsc::channel(SCAN_QUEUE);
    let mut tasks = Vec::new();
    for s in &cfg.scanners {
        let source = ScannerConfig::from_uri(&s.uri)
            .map_err(|e| anyhow::anyhow!("scanner {:?}: {e}", s.name))?;
        tracing::info!(scanner = %s.name, source = %source.name(), "scanner source starting");
        let handle = spawn_scanner(source, tx.clone(), shutdown.clone());
        terminal.watch_scanner(handle.status);
        tasks.push(handle.join);
    }
    // The forwarder ends when every source has stopped and dropped its sender.
    drop(tx);
    tasks.push(terminal.scan_sender().forward(rx));
    Ok(tasks)
}

/// The store node's router (terminal behind our `/healthz` and `/metrics`) and the tasks it
/// started (the print worker, the scanner sources), which stop when `shutdown` turns true.
pub async fn store_app(
    node: Node,
    cfg: &StoreConfig,
    link: Arc<dyn crate::terminal::link::LinkStatusSource>,
    view: Arc<dyn StoreSyncView>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(Router, Vec<JoinHandle<()>>)> {
    load_staff(&node, cfg).await?;
    let mut tasks = Vec::new();
    let fiscal = match &cfg.fiscal {
        Some(f) => Some(Arc::new(
            crate::fiscal::FiscalSetup::from_config(f).context("[fiscal]")?,
        )),
        None => None,
    };
    if let Some(aeat) = cfg.fiscal.as_ref().and_then(|f| f.aeat.as_ref()) {
        let submitter = crate::fiscal::aeat::Submitter::new(node.clone(), cfg.store.clone(), aeat)
            .context("[fiscal.aeat]")?;
        tasks.push(submitter.spawn(shutdown.clone()));
    }
    let header = StoreHeader {
        name: format!("storenode {}", cfg.store),
        address: fiscal
            .as_ref()
            .map(|f| f.address.clone())
            .unwrap_or_default(),
        tax_id: fiscal
            .as_ref()
            .map(|f| f.issuer.nif.to_string())
            .unwrap_or_default(),
    };
    let printer: Arc<dyn PrintSink> = match start_printers(&node, cfg, header, &shutdown)? {
        Some((sink, workers)) => {
            tasks.extend(workers);
            Arc::new(sink)
        }
        None => Arc::new(MemoryPrintSink::default()),
    };
    let mut tcfg = TerminalConfig::new(cfg.store.clone());
    tcfg.pickup_keys = cfg
        .pickup
        .qr_keys
        .iter()
        .map(|k| k.bytes().to_vec())
        .collect();
    tcfg.login_rate = RateLimit {
        per_minute: cfg.terminal.login_per_minute,
        burst: cfg.terminal.login_burst,
    };
    tcfg.secure_cookie = cfg.terminal.secure_cookie;
    tcfg.returns = cfg.returns.policy();
    tcfg.fiscal = fiscal;
    tcfg.transfer_to = cfg.transfer_to.clone();
    tcfg.till = cfg.till.clone();
    let state = TerminalState::new(node.clone(), link, printer, tcfg);
    tasks.extend(start_scanners(cfg, &state, shutdown)?);
    let terminal = crate::terminal::app(state);
    let router = super::store_router(node, cfg.store.clone(), view)
        .fallback_service(terminal)
        .layer(axum::middleware::from_fn(
            |req: axum::extract::Request, next: axum::middleware::Next| {
                security_headers(TERMINAL_CSP, req, next)
            },
        ));
    Ok((router, tasks))
}
