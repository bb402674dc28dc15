//! HQ's op log on PostgreSQL (`[storage] url`): the source of truth, with the node's SQLite
//! file as its local cache.
//!
//! `open_node` connects (retrying with backoff while PostgreSQL is down), applies the
//! PostgreSQL migrations (a newer database is refused), brings the SQLite file and the shared
//! log level (ops the file lacks are ingested; ops only the file has, from an HQ that ran on
//! SQLite before, are copied up), and opens the `Node` with a `PgJournal`: from then on each
//! group commits to PostgreSQL first, so an acknowledged op is in PostgreSQL, stored once by
//! its `(actor, seq)` primary key. Every statement lives in `log.rs` and `schema.rs`.

pub mod identity;
pub mod jobs;
pub mod journal;
pub mod lease;
pub mod link;
pub mod log;
pub mod rights;
pub mod schema;
pub mod tail;

use super::{decode_op, CodecError, Node, StoreError};
use crate::domain::ActorId;
use journal::PgJournal;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::{Client, Config, NoTls};

/// Ops read or copied per round trip while restoring.
pub const RESTORE_CHUNK_OPS: i64 = 2_000;
/// First and longest wait between connection attempts at start.
pub const CONNECT_BACKOFF_MS_MIN: u64 = 250;
pub const CONNECT_BACKOFF_MS_MAX: u64 = 10_000;

/// The SQLite cache's writer: PostgreSQL holds the durable copy (a group is acknowledged only
/// once PostgreSQL committed it), so the cache's commits are not fsynced one by one; a cache
/// left behind by a power cut is brought level by `pull` at the next open, as after a crash
/// between the two commits.
pub const CACHE_DURABILITY: super::Durability = super::Durability {
    synchronous: super::Synchronous::Normal,
    busy_timeout_ms: 5_000,
};

/// Why the shared op log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// `[storage] url` is not a PostgreSQL connection string.
    #[error("storage.url is not a postgres:// URL: {0}")]
    BadUrl(String),
    /// PostgreSQL did not answer within the time allowed.
    #[error("cannot reach PostgreSQL at {target}: {detail}")]
    Unreachable { target: String, detail: String },
    /// The database was migrated by a newer storenode.
    #[error("PostgreSQL schema version {found} is newer than this binary supports ({supported}); upgrade storenode")]
    NewerSchema { found: u32, supported: u32 },
    #[error("PostgreSQL migration {0} failed: {1}")]
    Migration(u32, String),
    #[error("postgres: {0}")]
    Query(String),
    /// The shared log holds bytes this binary cannot read.
    #[error("shared op log entry {actor}/{seq}: {source}")]
    Codec {
        actor: String,
        seq: u64,
        source: CodecError,
    },
    /// The local file refused ops of the shared log: the two disagree.
    #[error("the local file refused {count} ops of the shared log, first {first}")]
    Diverged { count: usize, first: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PgError {
    /// A failed statement.
    pub fn query(e: tokio_postgres::Error) -> PgError {
        PgError::Query(e.to_string())
    }
}

/// Parse a `postgres://` (or `postgresql://`) URL; never echoes a password.
pub fn parse_url(url: &str) -> Result<Config, PgError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(PgError::BadUrl("must start with postgres://".to_string()));
    }
    Config::from_str(url).map_err(|e| PgError::BadUrl(e.to_string()))
}

/// `host:port/dbname` of a config, for logs and errors (no user, no password).
pub fn target(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("");
    format!("{host}:{port}/{db}")
}

/// Connect once; the connection is driven by a task on the current runtime.
pub async fn connect(config: &Config) -> Result<Client, PgError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| PgError::Unreachable {
            target: target(config),
            detail: e.to_string(),
        })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection lost");
        }
    });
    Ok(client)
}

/// Connect and `LISTEN` on `channel`; every notification (and the connection's end) wakes
/// `wake`.
pub async fn connect_listening(
    config: &Config,
    channel: &str,
    wake: std::sync::Arc<tokio::sync::Notify>,
) -> Result<Client, PgError> {
    use futures_util::StreamExt;
    let (client, mut connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|e| PgError::Unreachable {
                target: target(config),
                detail: e.to_string(),
            })?;
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(_)) => wake.notify_one(),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL connection lost");
                    break;
                }
            }
        }
        wake.notify_one();
    });
    client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .map_err(PgError::query)?;
    Ok(client)
}

/// Connect, retrying with doubling backoff while PostgreSQL is unreachable, for at most
/// `patience` (`None`: until it answers).
pub async fn connect_retrying(
    config: &Config,
    patience: Option<Duration>,
) -> Result<Client, PgError> {
    let started = tokio::time::Instant::now();
    let mut backoff_ms = CONNECT_BACKOFF_MS_MIN;
    loop {
        match connect(config).await {
            Ok(client) => return Ok(client),
            Err(e) if patience.is_some_and(|p| started.elapsed() >= p) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff_ms, "PostgreSQL unreachable");
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = (backoff_ms * 2).min(CONNECT_BACKOFF_MS_MAX);
            }
        }
    }
}

/// What `open_node` did to bring the file and the shared log level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    /// Ops the file lacked, ingested from the shared log.
    pub pulled: usize,
    /// Ops only the file had, copied up to the shared log.
    pub pushed: usize,
    /// Idempotency-Keys the file lacked, copied down.
    pub keys_pulled: usize,
}

/// Open `db` for `actor` as a cache of the shared log at `url` (see the module doc).
pub async fn open_node(
    db: &Path,
    actor: ActorId,
    url: &str,
    patience: Option<Duration>,
) -> Result<(Node, Restored), PgError> {
    open_node_with(db, actor, url, patience, None).await
}

/// `open_node`, the journal queueing the webhook jobs `jobs` says each new op calls for.
pub async fn open_node_with(
    db: &Path,
    actor: ActorId,
    url: &str,
    patience: Option<Duration>,
    jobs: Option<std::sync::Arc<dyn jobs::JobSource>>,
) -> Result<(Node, Restored), PgError> {
    let config = parse_url(url)?;
    let mut client = connect_retrying(&config, patience).await?;
    let applied = schema::migrate(&mut client).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, target = %target(&config), "PostgreSQL migrations applied");
    }
    let node = blocking({
        let (db, actor) = (db.to_path_buf(), actor.clone());
        move || Node::open(&db, actor)
    })
    .await?;
    let restored = Restored {
        pulled: pull(&client, &node).await?,
        pushed: push(&mut client, &node).await?,
        keys_pulled: level_keys(&mut client, &node).await?,
    };
    if restored.pushed > 0 {
        // An HQ moving from SQLite: its answers to requests for rights back count everywhere.
        let answered = node.query(rights::local_answered).await?;
        rights::insert_answered(&client, &answered)
            .await
            .map_err(PgError::query)?;
    }
    let closing = node.clone();
    blocking(move || closing.close_blocking()).await?;
    drop(node);
    let journal = match jobs {
        Some(source) => PgJournal::new(config, actor.clone()).with_jobs(source),
        None => PgJournal::new(config, actor.clone()),
    };
    let db = db.to_path_buf();
    let node = blocking(move || {
        Node::open_journaled(&db, actor, CACHE_DURABILITY, Some(Box::new(journal)))
    })
    .await?;
    Ok((node, restored))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, PgError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PgError::Store(StoreError::Thread(e.to_string())))?
        .map_err(PgError::Store)
}

/// Ingest every op of the shared log the file lacks, in log order.
async fn pull(client: &Client, node: &Node) -> Result<usize, PgError> {
    let mut after = 0i64;
    let mut pulled = 0;
    loop {
        let rows = log::ops_after(client, after, RESTORE_CHUNK_OPS)
            .await
            .map_err(PgError::query)?;
        let Some(last) = rows.last() else {
            return Ok(pulled);
        };
        after = last.gseq;
        let mut ops = Vec::new();
        for row in rows {
            let op = decode_op(&row.body).map_err(|source| PgError::Codec {
                actor: row.actor.clone(),
                seq: row.seq,
                source,
            })?;
            if !node.read(|r| r.version().contains(&op.actor, op.seq)) {
                ops.push(op);
            }
        }
        if ops.is_empty() {
            continue;
        }
        let ingested = node.ingest(ops).await?;
        if let Some((id, e)) = ingested.rejected.first() {
            return Err(PgError::Diverged {
                count: ingested.rejected.len(),
                first: format!("{id:?}: {e}"),
            });
        }
        pulled += ingested.applied;
    }
}

/// Bring the Idempotency-Keys level: PostgreSQL's copied into the file, the file's own (an HQ
/// moving from SQLite) copied up. Returns how many the file gained.
async fn level_keys(client: &mut Client, node: &Node) -> Result<usize, PgError> {
    let shared = log::all_idempotency(client).await.map_err(PgError::query)?;
    let pulled = node
        .write(move |tx| log::restore_local_idempotency(tx, &shared))
        .await?;
    let local = node.query(log::all_local_idempotency).await?;
    let tx = client.transaction().await.map_err(PgError::query)?;
    let taken = log::insert_idempotency(&tx, &local)
        .await
        .map_err(PgError::query)?;
    tx.commit().await.map_err(PgError::query)?;
    if !taken.is_empty() {
        tracing::warn!(
            keys = taken.len(),
            "Idempotency-Keys of this file name other orders in PostgreSQL; PostgreSQL's kept"
        );
    }
    Ok(pulled)
}

/// Copy up the ops only the file has (an HQ moving from SQLite to PostgreSQL).
async fn push(client: &mut Client, node: &Node) -> Result<usize, PgError> {
    let actors: Vec<String> = node
        .query(|c| {
            let mut stmt = c.prepare("SELECT DISTINCT actor FROM ops")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
        .await?;
    let mut pushed = 0;
    for name in actors {
        let Ok(actor) = ActorId::parse(&name) else {
            continue; // refused at open: replay decodes every op
        };
        let mut after = log::max_seq(client, &actor).await.map_err(PgError::query)?;
        loop {
            let who = actor.clone();
            let ops = node
                .query(move |c| Node::ops_since(c, &who, after, RESTORE_CHUNK_OPS as usize))
                .await?;
            let Some(last) = ops.last() else { break };
            after = last.seq;
            let tx = client.transaction().await.map_err(PgError::query)?;
            pushed += log::insert_ops(&tx, &ops)
                .await
                .map_err(PgError::query)?
                .len();
            tx.commit().await.map_err(PgError::query)?;
        }
    }
    Ok(pushed)
}
