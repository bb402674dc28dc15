//! Stores' link state in PostgreSQL (`hq_store_link`), so every HQ process answers `online`,
//! `last_seen` and `outbox` as the process that syncs the store sees them.
//!
//! The process that serves a store writes its row (`publish`, every second and on every
//! change); every process reads the table (`Links::refresh`) into a cache the API reads. A row
//! belongs to its `holder` while it refreshes it: another process takes it over only with
//! fresher news of the store (a later `last_seen_ms`) or once the row is `LINK_STALE_S` old,
//! and a row that old reads as offline, so a process that died does not leave its stores
//! online. Times are PostgreSQL's `now()`, one clock for every process.

use super::{connect, PgError};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_postgres::{Client, Config, GenericClient};

/// A row not refreshed for this long reads as offline and may be taken over.
pub const LINK_STALE_S: i64 = 5;
/// Longest wait for a connection before a read or write of the links fails.
pub const LINK_CONNECT_TIMEOUT_S: u64 = 2;

/// One store's link as the process serving it sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkRow {
    pub store: String,
    pub online: bool,
    /// Last message from the store, ms since the epoch.
    pub last_seen_ms: Option<u64>,
    /// Ops the store reported waiting in its outbox.
    pub outbox: u64,
    /// Ops HQ holds that the store has not acknowledged.
    pub lag_ops: u64,
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Write `rows` as `holder`'s, each unless another holder refreshed that store's row within
/// `LINK_STALE_S` and has news as fresh. Returns how many rows were written.
pub async fn publish(
    client: &impl GenericClient,
    holder: &str,
    rows: &[LinkRow],
) -> Result<u64, tokio_postgres::Error> {
    let stores: Vec<&str> = rows.iter().map(|r| r.store.as_str()).collect();
    let online: Vec<bool> = rows.iter().map(|r| r.online).collect();
    let seen: Vec<Option<i64>> = rows.iter().map(|r| r.last_seen_ms.map(int)).collect();
    let outbox: Vec<i64> = rows.iter().map(|r| int(r.outbox)).collect();
    let lag: Vec<i64> = rows.iter().map(|r| int(r.lag_ops)).collect();
    client
        .execute(
            "INSERT INTO hq_store_link (store, online, last_seen_ms, outbox, lag_ops, holder)
             SELECT s, o, l, b, g, $6 FROM unnest($1::text[], $2::bool[], $3::int8[],
                                                  $4::int8[], $5::int8[]) AS t(s, o, l, b, g)
             ON CONFLICT (store) DO UPDATE SET
                 online = excluded.online,
                 last_seen_ms = greatest(excluded.last_seen_ms, hq_store_link.last_seen_ms),
                 outbox = excluded.outbox,
                 lag_ops = excluded.lag_ops,
                 holder = excluded.holder,
                 updated_at = now()
             WHERE hq_store_link.holder = excluded.holder
                OR hq_store_link.updated_at < now() - make_interval(secs => $7)
                OR excluded.last_seen_ms > coalesce(hq_store_link.last_seen_ms, -1)",
            &[
                &stores,
                &online,
                &seen,
                &outbox,
                &lag,
                &holder,
                &(LINK_STALE_S as f64),
            ],
        )
        .await
}

/// Every store's row; `online` only where the row is fresh.
pub async fn read(client: &impl GenericClient) -> Result<Vec<LinkRow>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT store, online AND updated_at >= now() - make_interval(secs => $1),
                    last_seen_ms, outbox, lag_ops
             FROM hq_store_link",
            &[&(LINK_STALE_S as f64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| LinkRow {
            store: r.get(0),
            online: r.get(1),
            last_seen_ms: r.get::<_, Option<i64>>(2).map(|v| v.max(0) as u64),
            outbox: r.get::<_, i64>(3).max(0) as u64,
            lag_ops: r.get::<_, i64>(4).max(0) as u64,
        })
        .collect())
}

/// One connection, opened on first use and again after a failure (the links' and the
/// webhook queue's readers).
pub(super) struct Conn {
    config: Config,
    client: Mutex<Option<Client>>,
}

impl Conn {
    pub(super) fn new(url: &str) -> Result<Conn, PgError> {
        let mut config = super::parse_url(url)?;
        config.connect_timeout(Duration::from_secs(LINK_CONNECT_TIMEOUT_S));
        Ok(Conn {
            config,
            client: Mutex::new(None),
        })
    }

    pub(super) async fn run<T>(
        &self,
        body: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, PgError> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = Some(connect(&self.config).await?);
        }
        let Some(client) = slot.as_ref() else {
            return Err(PgError::Query("not connected".to_string()));
        };
        let result = body(client).await.map_err(PgError::query);
        if result.is_err() {
            *slot = None; // reconnect next time
        }
        result
    }
}

/// The links every process reads: a cache of `hq_store_link` (cheap to clone).
#[derive(Clone)]
pub struct Links {
    conn: Arc<Conn>,
    cache: Arc<RwLock<BTreeMap<String, LinkRow>>>,
}

impl Links {
    pub fn new(url: &str) -> Result<Links, PgError> {
        Ok(Links {
            conn: Arc::new(Conn::new(url)?),
            cache: Arc::default(),
        })
    }

    /// Read the table into the cache.
    pub async fn refresh(&self) -> Result<(), PgError> {
        let rows = self.conn.run(async |c| read(c).await).await?;
        let fresh: BTreeMap<String, LinkRow> =
            rows.into_iter().map(|r| (r.store.clone(), r)).collect();
        *self.cache.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    /// `store`'s link as last read (offline, never seen, when it has no row).
    pub fn get(&self, store: &str) -> LinkRow {
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(store)
            .cloned()
            .unwrap_or_else(|| LinkRow {
                store: store.to_string(),
                ..LinkRow::default()
            })
    }
}

/// The writing side, for the process that serves stores.
pub struct LinkWriter {
    conn: Conn,
    holder: String,
}

impl LinkWriter {
    /// A writer signing its rows as `holder` (one name per process).
    pub fn new(url: &str, holder: String) -> Result<LinkWriter, PgError> {
        Ok(LinkWriter {
            conn: Conn::new(url)?,
            holder,
        })
    }

    /// Write `rows` (see `publish`).
    pub async fn publish(&self, rows: &[LinkRow]) -> Result<u64, PgError> {
        let holder = self.holder.clone();
        self.conn
            .run(async move |c| publish(c, &holder, rows).await)
            .await
    }
}
