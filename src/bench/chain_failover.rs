//! `chain --hq 2`: the second HQ process is a real `storenode hq` child (this very binary)
//! syncing on the same PostgreSQL log and broker, sharing the stores with the bench's HQ by
//! leases (`sync::lease`). Mid-run it is SIGKILLed; the failover time is from the kill until
//! every store it served has all its ops acknowledged again (by the surviving process, once
//! the leases expired and it took them).

use super::chain_store::SimStore;
use crate::domain::StoreId;
use crate::store::pg;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The child's lease holder name (its MQTT client id).
pub const SECOND: &str = "bench-hq-2";
/// The bench's own HQ's lease holder name.
pub const FIRST: &str = "bench-hq-1";

/// The second HQ process; killed on drop.
pub struct Second {
    child: Option<Child>,
}

impl Second {
    /// Start `storenode hq` on `url` and the broker at `broker`, serving `stores` by leases.
    pub fn start(dir: &Path, url: &str, broker: u16, stores: &[StoreId]) -> anyhow::Result<Second> {
        let list: Vec<String> = stores.iter().map(|s| format!("\"{s}\"")).collect();
        let config = format!(
            "role = \"hq\"\nchain = \"{}\"\ndb = \"{}\"\nstores = [{}]\n\
             api_tokens = [\"bench-token-123\"]\n[mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\n\
             client_id = \"{SECOND}\"\n[http]\nlisten = \"127.0.0.1:0\"\n[pickup]\n\
             qr_keys = [\"{}\"]\n[storage]\nurl = \"{url}\"\n",
            super::chain_scale::CHAIN,
            dir.join("hq2-proc.db").display(),
            list.join(", "),
            "ab".repeat(32),
        );
        let path = dir.join("hq2.toml");
        std::fs::write(&path, config)?;
        let child = Command::new(std::env::current_exe()?)
            .args(["hq", "--config"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Second { child: Some(child) })
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for Second {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Stores each holder's unexpired leases cover.
pub async fn held_by(url: &str, holder: &str) -> anyhow::Result<Vec<StoreId>> {
    let client = pg::connect(&pg::parse_url(url)?).await?;
    let rows = client
        .query(
            "SELECT store FROM hq_lease WHERE holder = $1 AND expires_at > now()",
            &[&holder],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| StoreId::parse(r.get::<_, &str>(0)).ok())
        .collect())
}

/// Wait until the second process holds its share (`stores / 2`, rounded down).
pub async fn spread(url: &str, stores: usize, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let second = held_by(url, SECOND).await?.len();
        let first = held_by(url, FIRST).await?.len();
        if second >= stores / 2 && first + second == stores {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the leases did not spread: {first} and {second} of {stores}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What killing the second process measured.
pub struct Failover {
    pub killed: Instant,
    /// When the last orphaned store was served again.
    pub served: Instant,
    pub seconds: f64,
    pub orphans: usize,
}

/// Kill the second process and measure until every store it served has each op it wrote
/// before the kill and its first op after it acknowledged (by the survivor). Waiting for an op written after the kill keeps a store whose outbox
/// happened to be empty at the kill from counting as served at once; it adds up to one of
/// the store's op intervals.
pub async fn kill_and_measure(
    second: &mut Second,
    url: &str,
    stores: &[(StoreId, SimStore)],
    within: Duration,
) -> anyhow::Result<Failover> {
    let orphans = held_by(url, SECOND).await?;
    second.kill()?;
    let killed = Instant::now();
    let watched: Vec<(u64, &SimStore)> = stores
        .iter()
        .filter(|(s, _)| orphans.contains(s))
        .map(|(_, store)| (store.last_seq() + 1, store))
        .collect();
    loop {
        let acked = watched
            .iter()
            .all(|(seq, store)| store.last_seq().saturating_sub(store.outbox()) >= *seq);
        if acked {
            return Ok(Failover {
                killed,
                served: Instant::now(),
                seconds: killed.elapsed().as_secs_f64(),
                orphans: orphans.len(),
            });
        }
        anyhow::ensure!(
            killed.elapsed() < within,
            "the orphaned stores were not acked again within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
