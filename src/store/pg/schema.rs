//! The PostgreSQL schema of the shared op log, brought up to date at start like SQLite's.
//!
//! Migrations are the numbered files in `migrations/postgres/`, applied in order in one
//! transaction under an advisory lock (several HQ processes may start together), each
//! recorded in `schema_version`. A database from a newer binary is refused untouched.

use super::PgError;
use tokio_postgres::Client;

/// Every PostgreSQL migration this binary knows, in order. Add new files at the end.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "oplog",
        include_str!("../../../migrations/postgres/0001_oplog.sql"),
    ),
    (
        2,
        "hq_idempotency",
        include_str!("../../../migrations/postgres/0002_hq_idempotency.sql"),
    ),
    (
        3,
        "hq_processes",
        include_str!("../../../migrations/postgres/0003_hq_processes.sql"),
    ),
    (
        4,
        "store_links",
        include_str!("../../../migrations/postgres/0004_store_links.sql"),
    ),
    (
        5,
        "webhook_jobs",
        include_str!("../../../migrations/postgres/0005_webhook_jobs.sql"),
    ),
    (
        6,
        "hq_lease",
        include_str!("../../../migrations/postgres/0006_hq_lease.sql"),
    ),
    (
        7,
        "hq_rights_answers",
        include_str!("../../../migrations/postgres/0007_hq_rights_answers.sql"),
    ),
    (
        8,
        "hq_identity",
        include_str!("../../../migrations/postgres/0008_hq_identity.sql"),
    ),
];

/// Advisory lock key serialising migrations between processes ("storenode" in hex, truncated).
const MIGRATION_LOCK_KEY: i64 = 0x5354_4f52_454e;

/// Highest schema version this binary understands.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Apply the missing migrations; returns the versions applied. A newer database is refused
/// before anything is written.
pub async fn migrate(client: &mut Client) -> Result<Vec<u32>, PgError> {
    let tx = client.transaction().await.map_err(PgError::query)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(PgError::query)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(PgError::query)?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await
        .map_err(PgError::query)?
        .get(0);
    let current = u32::try_from(current).unwrap_or(0);
    if current > latest_version() {
        return Err(PgError::NewerSchema {
            found: current,
            supported: latest_version(),
        });
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| PgError::Migration(*version, e.to_string()))?;
        let v = *version as i32;
        tx.execute(
            "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
            &[&v, name],
        )
        .await
        .map_err(|e| PgError::Migration(*version, e.to_string()))?;
        applied.push(*version);
    }
    tx.commit().await.map_err(PgError::query)?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, (version, _, sql)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, i + 1);
            assert!(!sql.trim().is_empty());
        }
    }
}
