//! The adapters behind each [`ScannerConfig`]: open, read, report, retry.

use std::os::fd::AsFd;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::keymap::{KeyboardLayout, WedgeDecoder};
use super::lines::{Line, LineSplitter};
use super::{
    ScanEvent, ScannerConfig, ScannerStatus, SourceState, RETRY_BACKOFF_MS_MAX,
    RETRY_BACKOFF_MS_MIN, TCP_CLIENTS_MAX,
};
use crate::devices::barcode::{BarcodeError, SCAN_LEN_MAX};
use storenode_firmware::FrameDecoder;

const READ_BUF_BYTES: usize = 1024;

pub(super) struct Ctx {
    pub name: String,
    pub tx: mpsc::Sender<ScanEvent>,
    pub status: watch::Sender<ScannerStatus>,
    pub shutdown: watch::Receiver<bool>,
}

impl Ctx {
    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn set_state(&self, state: SourceState) {
        self.status.send_modify(|s| s.state = state);
    }

    /// Sends one line as a scan event; false if the receiver is gone.
    async fn emit(&self, line: Line) -> bool {
        let event = match line {
            Line::Text(raw) => ScanEvent::new(&self.name, raw),
            Line::TooLong(n) => ScanEvent {
                source: self.name.clone(),
                raw: String::new(),
                aim: None,
                parsed: Err(BarcodeError::TooLong(n)),
            },
        };
        let bad = event.parsed.is_err();
        self.status.send_modify(|s| {
            s.scans += 1;
            s.bad_scans += u64::from(bad);
        });
        self.tx.send(event).await.is_ok()
    }
}

/// Runs a source until shutdown, reopening it with backoff whenever it fails.
pub(super) async fn run(config: ScannerConfig, mut ctx: Ctx) {
    let mut attempt: u32 = 0;
    while !ctx.stopping() {
        ctx.set_state(SourceState::Connecting);
        let result = match &config {
            ScannerConfig::Tcp { listen } => tcp(*listen, &mut ctx).await,
            ScannerConfig::Serial { path, baud } => serial(path, *baud, false, &mut ctx).await,
            ScannerConfig::Bridge { path, baud } => serial(path, *baud, true, &mut ctx).await,
            ScannerConfig::Stdin => read_lines(tokio::io::stdin(), &mut ctx).await.map(|_| true),
            ScannerConfig::Evdev { path, layout } => evdev(path, *layout, &mut ctx).await,
        };
        match result {
            // Connected and ended cleanly: stdin's end or shutdown. Nothing to retry.
            Ok(true) => break,
            // Ended after a good connection: retry soon.
            Ok(false) => attempt = 1,
            Err(e) => {
                attempt = attempt.saturating_add(1);
                tracing::warn!(source = %ctx.name, error = %e, attempt, "scanner source failed");
                ctx.status
                    .send_modify(|s| s.last_error = Some(e.to_string()));
            }
        }
        if ctx.tx.is_closed() {
            break;
        }
        ctx.set_state(SourceState::Retrying { attempt });
        let doublings = attempt.saturating_sub(1).min(16);
        let delay = (RETRY_BACKOFF_MS_MIN << doublings).min(RETRY_BACKOFF_MS_MAX);
        tokio::select! {
            _ = ctx.shutdown.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
        }
    }
    ctx.set_state(SourceState::Stopped);
}

/// Runs a one-shot stream source (stdin, a pipe): no retry, as a closed stream stays closed.
pub(super) async fn run_reader<R: AsyncRead + Unpin>(reader: R, mut ctx: Ctx) {
    if let Err(e) = read_lines(reader, &mut ctx).await {
        ctx.status
            .send_modify(|s| s.last_error = Some(e.to_string()));
    }
    ctx.set_state(SourceState::Stopped);
}

/// Reads scans from any byte stream (stdin, a socket, a test pipe) until it ends or shutdown.
/// Returns Ok(true) on shutdown or a closed receiver, Ok(false) at the end of the stream.
pub(super) async fn read_lines<R: AsyncRead + Unpin>(
    mut reader: R,
    ctx: &mut Ctx,
) -> std::io::Result<bool> {
    ctx.set_state(SourceState::Connected);
    let mut splitter = LineSplitter::new();
    let mut buf = vec![0u8; READ_BUF_BYTES];
    loop {
        let n = tokio::select! {
            _ = ctx.shutdown.changed() => return Ok(true),
            n = reader.read(&mut buf) => n?,
        };
        if n == 0 {
            // A final line without CR/LF still counts.
            for line in splitter.push(b"\n") {
                ctx.emit(line).await;
            }
            return Ok(false);
        }
        for line in splitter.push(&buf[..n]) {
            if !ctx.emit(line).await {
                return Ok(true);
            }
        }
    }
}

async fn tcp(listen: std::net::SocketAddr, ctx: &mut Ctx) -> std::io::Result<bool> {
    let listener = TcpListener::bind(listen).await?;
    ctx.set_state(SourceState::Connected);
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(TCP_CLIENTS_MAX));
    let mut clients = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = ctx.shutdown.changed() => break,
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = accepted?;
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "too many network scanners, refusing");
                    continue;
                };
                let mut client = Ctx {
                    name: ctx.name.clone(),
                    tx: ctx.tx.clone(),
                    status: ctx.status.clone(),
                    shutdown: ctx.shutdown.clone(),
                };
                clients.spawn(async move {
                    if let Err(e) = read_lines(stream, &mut client).await {
                        tracing::info!(%peer, error = %e, "network scanner disconnected");
                    }
                    // A client leaving does not make the listener less connected.
                    client.set_state(SourceState::Connected);
                    drop(permit);
                });
            }
        }
    }
    clients.shutdown().await;
    Ok(true)
}

/// Opens a tty in raw mode, non-blocking, for tokio's reactor.
fn open_tty(path: &std::path::Path, baud: u32) -> std::io::Result<std::fs::File> {
    use nix::sys::termios::{self, SetArg};
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(path)?;
    let mut tio = termios::tcgetattr(file.as_fd()).map_err(std::io::Error::from)?;
    termios::cfmakeraw(&mut tio);
    if let Some(rate) = baud_rate(baud) {
        termios::cfsetspeed(&mut tio, rate).map_err(std::io::Error::from)?;
    }
    termios::tcsetattr(file.as_fd(), SetArg::TCSANOW, &tio).map_err(std::io::Error::from)?;
    Ok(file)
}

fn baud_rate(baud: u32) -> Option<nix::sys::termios::BaudRate> {
    use nix::sys::termios::BaudRate as B;
    Some(match baud {
        1200 => B::B1200,
        2400 => B::B2400,
        4800 => B::B4800,
        9600 => B::B9600,
        19200 => B::B19200,
        38400 => B::B38400,
        57600 => B::B57600,
        115200 => B::B115200,
        _ => return None,
    })
}

async fn serial(
    path: &std::path::Path,
    baud: u32,
    framed: bool,
    ctx: &mut Ctx,
) -> std::io::Result<bool> {
    use std::io::Read;
    use tokio::io::unix::AsyncFd;
    let file = open_tty(path, baud)?;
    // SAFETY: the `File` owns its descriptor, which stays open and unchanged until the
    // `AsyncFd` (which owns the `File`) is dropped.
    let fd = unsafe { AsyncFd::register(file)? };
    ctx.set_state(SourceState::Connected);
    let mut splitter = LineSplitter::new();
    let mut frames = FrameDecoder::new();
    let mut buf = vec![0u8; READ_BUF_BYTES];
    loop {
        let mut guard = tokio::select! {
            _ = ctx.shutdown.changed() => return Ok(true),
            g = fd.readable() => g?,
        };
        let n = match guard.try_io(|inner| inner.get_ref().read(&mut buf)) {
            Ok(result) => result?,
            Err(_would_block) => continue,
        };
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "serial device closed",
            ));
        }
        let lines = if framed {
            let mut lines = Vec::new();
            for &b in &buf[..n] {
                frames.push(b);
                while let Some(frame) = frames.next_frame() {
                    let payload = &frame.payload()[..frame.payload().len().min(SCAN_LEN_MAX)];
                    lines.push(Line::Text(String::from_utf8_lossy(payload).into_owned()));
                }
            }
            lines
        } else {
            splitter.push(&buf[..n])
        };
        for line in lines {
            if !ctx.emit(line).await {
                return Ok(true);
            }
        }
    }
}

async fn evdev(
    path: &std::path::Path,
    layout: KeyboardLayout,
    ctx: &mut Ctx,
) -> std::io::Result<bool> {
    let mut device = evdev::Device::open(path)?;
    device.grab()?;
    let mut events = device.into_event_stream()?;
    ctx.set_state(SourceState::Connected);
    let mut decoder = WedgeDecoder::new(layout);
    loop {
        let event = tokio::select! {
            _ = ctx.shutdown.changed() => return Ok(true),
            e = events.next_event() => e?,
        };
        if event.event_type() != evdev::EventType::KEY {
            continue;
        }
        if let Some(line) = decoder.key(event.code(), event.value()) {
            if !ctx.emit(Line::Text(line)).await {
                return Ok(true);
            }
        }
    }
}
