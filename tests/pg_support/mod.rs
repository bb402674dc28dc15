//! A throwaway PostgreSQL cluster for tests: `initdb` into a temp folder, started on its own
//! port as the `postgres` user when the tests run as root (PostgreSQL refuses root), stopped
//! and removed on drop. A watcher process stops it too if the test process dies first.
//! PostgreSQL missing is a failure naming the fix, never a silent skip.
#![allow(dead_code)] // each test binary uses a different subset

pub mod hq;
pub mod http;
pub mod pair;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A running (or stopped) cluster; removed on drop.
pub struct PgCluster {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    found.retain(|p| p.join("pg_ctl").exists());
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed: run `apt-get install postgresql` (.ci/run installs it)"
        )
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program args` as the `postgres` user when we are root, else as ourselves.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.stdin(Stdio::null()).output().expect(what);
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgCluster {
    /// initdb and start a cluster on a free port.
    pub fn start() -> PgCluster {
        let bin = pg_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres").arg(dir.path());
                    c
                },
                "chown the cluster folder",
            );
        }
        let mut init = as_postgres(&bin.join("initdb"));
        init.arg("-D").arg(dir.path().join("pg")).args([
            "-A",
            "trust",
            "-U",
            "storenode",
            "--no-sync",
        ]);
        run(init, "initdb");
        let port = super::sync_support::free_port();
        let cluster = PgCluster { port, bin, dir };
        cluster.start_again();
        cluster.watch(std::process::id());
        cluster
    }

    /// Start the (stopped) cluster; returns once it accepts connections.
    pub fn start_again(&self) {
        let mut c = as_postgres(&self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(self.dir.path().join("pg"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                self.dir.path().display()
            ))
            .arg("start");
        run(c, "pg_ctl start");
    }

    /// Stop the cluster now (`immediate`: as if the machine lost it).
    pub fn stop(&self) {
        let mut c = as_postgres(&self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(self.dir.path().join("pg"))
            .args(["-m", "immediate", "-w", "stop"]);
        run(c, "pg_ctl stop");
    }

    /// The URL of `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://storenode@127.0.0.1:{}/{db}", self.port)
    }

    /// A new, empty database; returns its URL.
    pub async fn new_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("hq_{}", N.fetch_add(1, Ordering::Relaxed));
        let client = self.client("postgres").await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        self.url(&name)
    }

    /// A connection to `db`.
    pub async fn client(&self, db: &str) -> tokio_postgres::Client {
        let config = storenode::store::pg::parse_url(&self.url(db)).unwrap();
        storenode::store::pg::connect(&config).await.unwrap()
    }

    /// Stop the cluster and remove its folder if this process dies without dropping it.
    fn watch(&self, pid: u32) {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {} {} -D {} -m immediate stop >/dev/null 2>&1; rm -rf {}",
            if is_root() {
                "runuser -u postgres --"
            } else {
                ""
            },
            self.bin.join("pg_ctl").display(),
            self.dir.path().join("pg").display(),
            self.dir.path().display()
        );
        let _ = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut c = as_postgres(&self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(self.dir.path().join("pg"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = c.status();
    }
}
