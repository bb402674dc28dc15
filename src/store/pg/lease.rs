//! Leases of the syncing role in PostgreSQL (migration `0006_hq_lease.sql`): which HQ process
//! serves which store. Every round runs in one transaction on PostgreSQL's clock: the process
//! renews its `hq_member` row and the leases it holds, counts the live processes, gives back
//! leases above its quota `ceil(stores / live)` and takes expired or unowned ones up to it.
//!
//! Invariants: a store has at most one unexpired lease; every take raises the store's `epoch`
//! (a process that restarts under the same name takes its old leases anew, with a new epoch);
//! a lease is renewed only under the epoch the process took it with; `Leases::held` answers
//! nothing once `TTL - ROUND_TIMEOUT` has passed on the process's own monotonic clock since the
//! start of its last successful round, so a process stops serving before PostgreSQL can hand
//! its stores on, even when PostgreSQL is unreachable.

use super::{connect, parse_url, PgError};
use crate::domain::StoreId;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::{Client, Config, Transaction};

/// How long a lease and a members row live without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often a process renews, gives back and takes leases.
pub const LEASE_ROUND: Duration = Duration::from_secs(1);
/// Longest a round may take; the local validity is shortened by it.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(1);

/// `ceil(stores / live)`: the most leases one process keeps while `live` processes run.
pub fn quota(stores: usize, live: usize) -> usize {
    stores.div_ceil(live.max(1))
}

/// One process's leases (see the module doc).
pub struct Leases {
    config: Config,
    client: Option<Client>,
    holder: String,
    /// This process's token in its members row (`identity::process_instance`).
    instance: &'static str,
    stores: Vec<StoreId>,
    mine: BTreeMap<StoreId, u64>,
    valid_until: Option<Instant>,
}

impl Leases {
    /// Leases of `holder` (its MQTT client id) among `stores`; connects on the first round.
    pub fn new(url: &str, holder: &str, stores: Vec<StoreId>) -> Result<Leases, PgError> {
        Ok(Leases {
            config: parse_url(url)?,
            client: None,
            holder: holder.to_string(),
            instance: super::identity::process_instance(),
            stores,
            mine: BTreeMap::new(),
            valid_until: None,
        })
    }

    /// The stores this process serves at `now`, with their epochs: empty once the last
    /// successful round is too old (the leases are then forgotten, never renewed again).
    pub fn held(&mut self, now: Instant) -> BTreeMap<StoreId, u64> {
        if self.valid_until.is_some_and(|v| now < v) {
            return self.mine.clone();
        }
        self.mine.clear();
        self.valid_until = None;
        BTreeMap::new()
    }

    /// When the leases held lapse unless a round succeeds first.
    pub fn valid_until(&self) -> Option<Instant> {
        self.valid_until.filter(|_| !self.mine.is_empty())
    }

    /// One round (module doc); on failure the connection is dropped and made anew next time.
    pub async fn round(&mut self) -> Result<(), PgError> {
        let started = Instant::now();
        let held = self.held(started);
        let result = match tokio::time::timeout(ROUND_TIMEOUT, self.round_on(held)).await {
            Ok(r) => r,
            Err(_) => Err(PgError::Query("lease round timed out".to_string())),
        };
        match result {
            Ok(mine) => {
                self.mine = mine;
                self.valid_until = Some(started + LEASE_TTL - ROUND_TIMEOUT);
                Ok(())
            }
            Err(e) => {
                self.client = None;
                Err(e)
            }
        }
    }

    async fn round_on(
        &mut self,
        held: BTreeMap<StoreId, u64>,
    ) -> Result<BTreeMap<StoreId, u64>, PgError> {
        if self.client.is_none() {
            self.client = Some(connect(&self.config).await?);
        }
        let Some(client) = self.client.as_mut() else {
            return Err(PgError::Query("no connection".to_string()));
        };
        let tx = client.transaction().await.map_err(PgError::query)?;
        let live = heartbeat(&tx, &self.holder, self.instance)
            .await
            .map_err(PgError::query)?;
        let Some(live) = live else {
            let taken = super::identity::IdentityError::NameTaken(self.holder.clone());
            return Err(PgError::Query(taken.to_string()));
        };
        let mut mine = renew(&tx, &self.holder, &held)
            .await
            .map_err(PgError::query)?;
        let quota = quota(self.stores.len(), live);
        while mine.len() > quota {
            let Some((store, epoch)) = mine.pop_last() else {
                break;
            };
            give_back(&tx, &self.holder, &store, epoch)
                .await
                .map_err(PgError::query)?;
            tracing::info!(store = %store, epoch, live, "gave a store's lease back");
        }
        for store in &self.stores {
            if mine.len() >= quota {
                break;
            }
            if mine.contains_key(store) {
                continue;
            }
            if let Some(epoch) = take(&tx, &self.holder, store)
                .await
                .map_err(PgError::query)?
            {
                tracing::info!(store = %store, epoch, live, "took a store's lease");
                mine.insert(store.clone(), epoch);
            }
        }
        tx.commit().await.map_err(PgError::query)?;
        Ok(mine)
    }

    /// Give every lease back at once (a clean stop), so another process takes them on its
    /// next round instead of after the TTL.
    pub async fn release_all(&mut self) -> Result<(), PgError> {
        let mine = std::mem::take(&mut self.mine);
        self.valid_until = None;
        let Some(client) = self.client.as_ref() else {
            return Ok(());
        };
        client
            .execute(
                "UPDATE hq_lease SET expires_at = now() - interval '1 millisecond'
                 WHERE holder = $1",
                &[&self.holder],
            )
            .await
            .map_err(PgError::query)?;
        client
            .execute("DELETE FROM hq_member WHERE holder = $1", &[&self.holder])
            .await
            .map_err(PgError::query)?;
        tracing::info!(leases = mine.len(), "gave every lease back");
        Ok(())
    }
}

fn ttl_ms() -> f64 {
    LEASE_TTL.as_millis() as f64
}

/// Renew this process's members row; the number of live processes (this one included), or
/// `None` when another live process renews the row of this name (`identity::renew_member`).
async fn heartbeat(
    tx: &Transaction<'_>,
    holder: &str,
    instance: &str,
) -> Result<Option<usize>, tokio_postgres::Error> {
    if !super::identity::renew_member(tx, holder, instance).await? {
        return Ok(None);
    }
    let live: i64 = tx
        .query_one(
            "SELECT count(*) FROM hq_member WHERE expires_at > now()",
            &[],
        )
        .await?
        .get(0);
    Ok(Some(live.max(1) as usize))
}

/// Renew the leases held, each only under its own epoch and while unexpired.
async fn renew(
    tx: &Transaction<'_>,
    holder: &str,
    held: &BTreeMap<StoreId, u64>,
) -> Result<BTreeMap<StoreId, u64>, tokio_postgres::Error> {
    let stores: Vec<&str> = held.keys().map(|s| s.as_str()).collect();
    let epochs: Vec<i64> = held.values().map(|e| *e as i64).collect();
    let rows = tx
        .query(
            "UPDATE hq_lease SET expires_at = now() + $2 * interval '1 millisecond'
             WHERE holder = $1 AND expires_at > now()
               AND (store, epoch) IN (SELECT * FROM unnest($3::text[], $4::bigint[]))
             RETURNING store, epoch",
            &[&holder, &ttl_ms(), &stores, &epochs],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let store = StoreId::parse(r.get::<_, &str>(0)).ok()?;
            Some((store, r.get::<_, i64>(1).max(0) as u64))
        })
        .collect())
}

async fn give_back(
    tx: &Transaction<'_>,
    holder: &str,
    store: &StoreId,
    epoch: u64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE hq_lease SET expires_at = now() - interval '1 millisecond'
         WHERE store = $1 AND holder = $2 AND epoch = $3",
        &[&store.as_str(), &holder, &(epoch as i64)],
    )
    .await?;
    Ok(())
}

/// Take `store`'s lease if nobody holds it, it expired, or it is this holder's from before a
/// restart; the new epoch, or `None` when another process holds it.
async fn take(
    tx: &Transaction<'_>,
    holder: &str,
    store: &StoreId,
) -> Result<Option<u64>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            "INSERT INTO hq_lease (store, holder, epoch, expires_at)
             VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
             ON CONFLICT (store) DO UPDATE
               SET holder = EXCLUDED.holder, epoch = hq_lease.epoch + 1,
                   expires_at = EXCLUDED.expires_at
               WHERE hq_lease.expires_at <= now() OR hq_lease.holder = EXCLUDED.holder
             RETURNING epoch",
            &[&store.as_str(), &holder, &ttl_ms()],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, i64>(0).max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::quota;

    #[test]
    fn the_quota_spreads_stores_evenly_and_a_lone_process_takes_them_all() {
        assert_eq!(quota(2, 1), 2);
        assert_eq!(quota(2, 2), 1);
        assert_eq!(quota(5, 2), 3);
        assert_eq!(quota(200, 3), 67);
        assert_eq!(quota(3, 0), 3);
    }
}
