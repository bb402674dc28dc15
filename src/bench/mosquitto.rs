//! A private mosquitto broker for one scenario: its own free port on loopback, a config as in
//! DEPENDENCIES.md (no persistence, no queue limit) plus `set_tcp_nodelay true` as in
//! deploy/mosquitto/mosquitto.conf (Nagle in the broker held each op ~40 ms), killed when dropped.

use super::scratch::Scratch;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh broker may take to accept connections.
const LISTEN_TIMEOUT_MS: u64 = 10_000;

/// A running mosquitto process.
pub struct Mosquitto {
    pub port: u16,
    child: Child,
    _dir: Scratch,
}

fn binary() -> anyhow::Result<PathBuf> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .ok_or_else(|| anyhow::anyhow!("mosquitto is not installed (apt-get install -y mosquitto)"))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_listening(port: u16) -> anyhow::Result<()> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_millis(LISTEN_TIMEOUT_MS);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    anyhow::bail!("mosquitto did not listen on port {port} within {LISTEN_TIMEOUT_MS} ms")
}

fn write_config(path: &Path, port: u16) -> std::io::Result<()> {
    std::fs::write(
        path,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 0\nmax_inflight_messages 100\nmax_packet_size 1048576\n\
             set_tcp_nodelay true\n"
        ),
    )
}

impl Mosquitto {
    pub fn start() -> anyhow::Result<Mosquitto> {
        let dir = Scratch::new("mosquitto")?;
        let port = free_port()?;
        let conf = dir.file("mosquitto.conf");
        write_config(&conf, port)?;
        let child = Command::new(binary()?)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let broker = Mosquitto {
            port,
            child,
            _dir: dir,
        };
        wait_listening(port)?;
        Ok(broker)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
