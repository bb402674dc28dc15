//! The printer emulator behind `storenode printer-sim`: a TCP server on the ESC/POS raw port
//! that decodes each job and saves it as `<n>-<unix-ms>.txt` and `.png` in an output folder.
//!
//! A job ends at a paper cut or when the connection closes. Status queries are answered at
//! once, like a real printer's real-time commands, from a state tests can change
//! ([`SimStatus`]). Connections are bounded; a bad byte stream never stops the server.

pub mod decoder;
pub mod render;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use decoder::{status_byte, Decoder, Item, Output};

/// Connections served at once; more wait in the accept queue.
pub const SIM_CONNECTIONS_MAX: usize = 16;
/// Read buffer per connection.
const READ_BUF_BYTES: usize = 8 * 1024;

/// The emulated printer's sensors, answered to `DLE EOT` queries.
#[derive(Debug, Default)]
pub struct SimStatus {
    /// Roll paper end sensor.
    pub paper_out: AtomicBool,
    /// Cover open sensor.
    pub cover_open: AtomicBool,
    /// Jobs saved so far.
    pub jobs_saved: AtomicU64,
}

/// A bound emulator, not yet serving: lets a caller learn the port before jobs arrive.
pub struct PrinterSim {
    listener: TcpListener,
    out: PathBuf,
    status: Arc<SimStatus>,
    next_job: Arc<AtomicU64>,
    save_lock: Arc<tokio::sync::Mutex<()>>,
}

impl PrinterSim {
    /// Binds the listener (port 0 picks a free port) and creates `out` if needed.
    pub async fn bind(listen: SocketAddr, out: PathBuf) -> std::io::Result<PrinterSim> {
        tokio::fs::create_dir_all(&out).await?;
        let listener = TcpListener::bind(listen).await?;
        let first = count_jobs(&out).await? + 1;
        Ok(PrinterSim {
            listener,
            out,
            status: Arc::new(SimStatus::default()),
            next_job: Arc::new(AtomicU64::new(first)),
            save_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Shared sensor state, to simulate paper out or an open cover.
    pub fn status(&self) -> Arc<SimStatus> {
        self.status.clone()
    }

    /// Serves until `shutdown` turns true; connections in progress are cut off.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        let permits = Arc::new(Semaphore::new(SIM_CONNECTIONS_MAX));
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "printer-sim accept failed");
                            continue;
                        }
                    };
                    let Ok(permit) = permits.clone().acquire_owned().await else { break };
                    let conn = Connection {
                        out: self.out.clone(),
                        status: self.status.clone(),
                        next_job: self.next_job.clone(),
                        save_lock: self.save_lock.clone(),
                    };
                    let mut conn_shutdown = shutdown.clone();
                    tasks.spawn(async move {
                        tokio::select! {
                            r = conn.serve(stream) => if let Err(e) = r {
                                tracing::warn!(%peer, error = %e, "printer-sim connection failed");
                            },
                            _ = conn_shutdown.wait_for(|s| *s) => {}
                        }
                        drop(permit);
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.shutdown().await;
        Ok(())
    }
}

/// Runs the emulator on `listen`, saving jobs into `out`, until `shutdown` turns true.
pub async fn run(
    listen: SocketAddr,
    out: PathBuf,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let sim = PrinterSim::bind(listen, out).await?;
    tracing::info!(addr = %sim.local_addr()?, "printer-sim listening");
    sim.serve(shutdown).await
}

struct Connection {
    out: PathBuf,
    status: Arc<SimStatus>,
    next_job: Arc<AtomicU64>,
    /// Jobs are numbered and written one at a time, so files appear in job-number order
    /// even when several connections print at once.
    save_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Connection {
    async fn serve(self, mut stream: TcpStream) -> std::io::Result<()> {
        let mut decoder = Decoder::new();
        let mut buf = vec![0u8; READ_BUF_BYTES];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            for output in decoder.feed(&buf[..n]) {
                match output {
                    Output::Status(kind) => {
                        let byte = status_byte(
                            kind,
                            self.status.paper_out.load(Ordering::Relaxed),
                            self.status.cover_open.load(Ordering::Relaxed),
                        );
                        stream.write_all(&[byte]).await?;
                    }
                    Output::Job(items) => self.save(items).await?,
                }
            }
        }
        if let Some(items) = decoder.finish() {
            self.save(items).await?;
        }
        Ok(())
    }

    async fn save(&self, items: Vec<Item>) -> std::io::Result<()> {
        let _turn = self.save_lock.lock().await;
        let n = self.next_job.fetch_add(1, Ordering::SeqCst);
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let stem = self.out.join(format!("{n:06}-{ms}"));
        let (txt, png) = (stem.with_extension("txt"), stem.with_extension("png"));
        tokio::task::spawn_blocking(move || save_job(&items, &txt, &png))
            .await
            .map_err(std::io::Error::other)??;
        self.status.jobs_saved.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Writes the PNG first and the text last, so a reader that sees the `.txt` finds both.
fn save_job(items: &[Item], txt: &Path, png: &Path) -> std::io::Result<()> {
    render::to_png_image(items)
        .save_with_format(png, image::ImageFormat::Png)
        .map_err(std::io::Error::other)?;
    let tmp = txt.with_extension("txt.tmp");
    std::fs::write(&tmp, render::to_text(items))?;
    std::fs::rename(&tmp, txt)
}

async fn count_jobs(out: &Path) -> std::io::Result<u64> {
    let mut dir = tokio::fs::read_dir(out).await?;
    let mut n = 0;
    while let Some(entry) = dir.next_entry().await? {
        if entry.path().extension().is_some_and(|e| e == "txt") {
            n += 1;
        }
    }
    Ok(n)
}

/// `storenode printer-sim`: runs until Ctrl-C, after printing `printer-sim listening on ADDR`
/// on stdout (tests start it on port 0 and read the port from that line).
pub async fn run_until_ctrl_c(listen: SocketAddr, out: PathBuf) -> std::io::Result<()> {
    use std::io::Write;
    let sim = PrinterSim::bind(listen, out).await?;
    let addr = sim.local_addr()?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "printer-sim listening on {addr}")?;
        stdout.flush()?;
    }
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = tx.send(true);
        }
    });
    sim.serve(rx).await
}
