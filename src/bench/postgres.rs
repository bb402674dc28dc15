//! A private PostgreSQL cluster for the `chain` scenario: `initdb` into a scratch folder and
//! `pg_ctl start` on a free port, as the `postgres` user when the bench runs as root
//! (PostgreSQL refuses root); stopped on drop.

use super::scratch::Scratch;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A running cluster, stopped when dropped.
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    _dir: Scratch,
}

fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    found.retain(|p| p.join("pg_ctl").exists());
    found.sort();
    found
        .pop()
        .ok_or_else(|| anyhow::anyhow!("PostgreSQL is not installed: apt-get install postgresql"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn as_postgres(program: PathBuf) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) -> anyhow::Result<()> {
    let out = c.stdin(Stdio::null()).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl Postgres {
    pub fn start() -> anyhow::Result<Postgres> {
        let bin = bin_dir()?;
        let dir = Scratch::new("postgres")?;
        let root = dir.file("");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres").arg(&root);
                    c
                },
                "chown",
            )?;
        }
        let data = dir.file("pg");
        let mut init = as_postgres(bin.join("initdb"));
        init.arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "storenode", "--no-sync"]);
        run(init, "initdb")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut start = as_postgres(bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.file("log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=50",
                root.display()
            ))
            .arg("start");
        run(start, "pg_ctl start")?;
        Ok(Postgres {
            port,
            bin,
            data,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!("postgres://storenode@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut stop = as_postgres(self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
    }
}
