//! Real `storenode hq` processes syncing on one PostgreSQL log and one broker, as the
//! failover tests run them: each with its own SQLite file and `[mqtt] client_id` (its lease
//! holder name), all with the one HQ signing key; and the lease table read back.

use crate::sync_support::{free_port, store_a, store_b, wait_port, CHAIN};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use storenode::domain::StoreId;
use storenode::store::Node;
use storenode::sync::{spawn_store_sync, StoreSyncConfig, StoreSyncHandle};

use super::http::TOKEN;

/// The config of a syncing HQ process `name` on the stores a and b.
pub fn hq_config(db: &Path, name: &str, http: u16, broker: u16, url: &str) -> String {
    format!(
        "role = \"hq\"\nchain = \"{CHAIN}\"\ndb = \"{}\"\nstores = [\"{}\", \"{}\"]\n\
         api_tokens = [\"{TOKEN}\"]\n[mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\n\
         client_id = \"{name}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n[pickup]\n\
         qr_keys = [\"{}\"]\n[rate_limit]\nburst = 10000\nper_minute = 100000\n\
         [storage]\nurl = \"{url}\"\n",
        db.display(),
        store_a().as_str(),
        store_b().as_str(),
        "ab".repeat(32)
    )
}

/// Give the process of `db` the HQ signing key every process in `dir` shares (made on first
/// use): processes on one PostgreSQL with different keys refuse to start.
pub fn share_hq_key(dir: &Path, db: &Path) {
    use storenode::signing::HqKey;
    let shared = dir.join("shared-hq.db");
    HqKey::load_or_create(&shared).unwrap();
    std::fs::copy(HqKey::path_for(&shared), HqKey::path_for(db)).unwrap();
}

/// A real `storenode hq` process that syncs (`sync` defaults to true).
pub struct Hq {
    pub name: String,
    child: Option<Child>,
    pub port: u16,
    config: PathBuf,
}

impl Hq {
    /// Write the config of `name` in `dir` (with the shared key) and start it.
    pub fn start(dir: &Path, name: &str, broker: u16, url: &str) -> Hq {
        let mut hq = Hq::configure(dir, name, broker, url);
        share_hq_key(dir, &hq.db());
        hq.restart();
        hq
    }

    /// Write the config of `name` in `dir`; nothing is started.
    pub fn configure(dir: &Path, name: &str, broker: u16, url: &str) -> Hq {
        let port = free_port();
        let config = dir.join(format!("{name}.toml"));
        let db = dir.join(format!("{name}.db"));
        std::fs::write(&config, hq_config(&db, name, port, broker, url)).unwrap();
        Hq {
            name: name.to_string(),
            child: None,
            port,
            config,
        }
    }

    /// The process's SQLite file.
    pub fn db(&self) -> PathBuf {
        self.config.with_extension("db")
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_storenode"));
        c.args(["hq", "--config"]).arg(&self.config);
        c.stdin(Stdio::null()).stdout(Stdio::null());
        c
    }

    /// Start (again) and wait for its HTTP port.
    pub fn restart(&mut self) {
        let child = self.command().stderr(Stdio::inherit()).spawn().unwrap();
        self.child = Some(child);
        wait_port(self.port);
    }

    /// Start it expecting it to refuse: its exit status and what it wrote to stderr, within
    /// `within`.
    pub fn run_refused(&self, within: Duration) -> (std::process::ExitStatus, String) {
        let mut child = self.command().stderr(Stdio::piped()).spawn().unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let out = child.wait_with_output().unwrap();
                return (status, String::from_utf8_lossy(&out.stderr).into_owned());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} still runs {within:?} after its start", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }
}

impl Drop for Hq {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The unexpired leases: store -> (holder, epoch).
pub async fn leases(url: &str) -> BTreeMap<String, (String, i64)> {
    let config = storenode::store::pg::parse_url(url).unwrap();
    let client = storenode::store::pg::connect(&config).await.unwrap();
    let rows = client
        .query(
            "SELECT store, holder, epoch FROM hq_lease WHERE expires_at > now()",
            &[],
        )
        .await
        .unwrap_or_default();
    rows.iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

/// Poll the leases until `ok` holds, within `within`.
pub async fn leases_until(
    url: &str,
    within: Duration,
    what: &str,
    ok: impl Fn(&BTreeMap<String, (String, i64)>) -> bool,
) -> BTreeMap<String, (String, i64)> {
    let deadline = Instant::now() + within;
    loop {
        let now = leases(url).await;
        if ok(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "{what}: leases are {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Both stores leased, by two different processes.
pub fn spread(l: &BTreeMap<String, (String, i64)>) -> bool {
    let holders: std::collections::BTreeSet<_> = l.values().map(|(h, _)| h.clone()).collect();
    l.len() == 2 && holders.len() == 2
}

/// Store `s`'s node in `dir`, syncing over the broker at `broker` (quick retransmits).
pub fn store(
    dir: &Path,
    s: StoreId,
    broker: u16,
) -> (Node, StoreSyncHandle, tokio::sync::watch::Sender<bool>) {
    let node = Node::open(&dir.join(format!("{s}.db")), s.actor()).unwrap();
    let mut cfg = StoreSyncConfig::new(CHAIN, s, "127.0.0.1", broker);
    cfg.retransmit_ms = 500;
    cfg.keepalive_s = 5;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let sync = spawn_store_sync(node.clone(), cfg, rx);
    (node, sync, stop)
}
