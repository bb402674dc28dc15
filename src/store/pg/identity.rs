//! What every syncing HQ process on one PostgreSQL must agree on, checked at start (migration
//! `0008_hq_identity.sql`): the HQ signing key, whose public half the first process records
//! (`hq_signing_key`), and a distinct `[mqtt] client_id` per live process (the `hq_member`
//! row of a name carries the `instance` of the process renewing it).
//!
//! Two processes with different keys would each sign half the stores' down-batches, and a
//! store holding `hq_public_key` would refuse the other half; two live processes with one
//! client id would make the broker disconnect each in turn forever and would share one lease
//! holder name. Both are refused with an error naming the fix, before the process syncs.

use super::lease::LEASE_TTL;
use super::{connect, parse_url, PgError};
use std::sync::OnceLock;
use std::time::Duration;
use tokio_postgres::GenericClient;

/// How often a starting process looks again whether its name's previous owner has expired.
const CLAIM_POLL: Duration = Duration::from_millis(250);

/// Why this process may not sync against this PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Another HQ process recorded a different signing key.
    #[error(
        "this HQ process signs with public key {ours} (key file {key_path}), but the HQ \
         processes on this PostgreSQL sign with {recorded} (recorded by {recorded_by}); stores \
         accept only one: copy the key file of a running HQ process over {key_path} and start \
         again (to change the key of every process, stop them all, run \
         `DELETE FROM hq_signing_key` and set every store's hq_public_key)"
    )]
    KeyMismatch {
        ours: String,
        recorded: String,
        recorded_by: String,
        key_path: String,
    },
    /// Another live process renews the members row of this `[mqtt] client_id`.
    #[error(
        "another live HQ process uses [mqtt] client_id \"{0}\" on this PostgreSQL (the broker \
         would disconnect the two in turn, and they would share one lease holder name): give \
         each process its own client_id"
    )]
    NameTaken(String),
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// This process's instance token: random, drawn once per process, in its `hq_member` row.
pub fn process_instance() -> &'static str {
    static INSTANCE: OnceLock<String> = OnceLock::new();
    INSTANCE.get_or_init(|| format!("{:016x}", rand::random::<u64>()))
}

/// Record `public_key` as the HQ signing key if none is, else check it is the one recorded.
pub async fn check_signing_key(
    client: &impl GenericClient,
    public_key: &str,
    holder: &str,
    key_path: &str,
) -> Result<(), IdentityError> {
    client
        .execute(
            "INSERT INTO hq_signing_key (public_key, recorded_by) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&public_key, &holder],
        )
        .await
        .map_err(PgError::query)?;
    let row = client
        .query_one("SELECT public_key, recorded_by FROM hq_signing_key", &[])
        .await
        .map_err(PgError::query)?;
    let (recorded, recorded_by): (String, String) = (row.get(0), row.get(1));
    if recorded == public_key {
        return Ok(());
    }
    Err(IdentityError::KeyMismatch {
        ours: public_key.to_string(),
        recorded,
        recorded_by,
        key_path: key_path.to_string(),
    })
}

/// Renew (or create) the members row of `holder` for this process's `instance`; `false` when
/// another instance holds it unexpired (another live process of the same name).
pub async fn renew_member(
    client: &impl GenericClient,
    holder: &str,
    instance: &str,
) -> Result<bool, tokio_postgres::Error> {
    let ttl_ms = LEASE_TTL.as_millis() as f64;
    let row = client
        .query_opt(
            "INSERT INTO hq_member (holder, expires_at, instance)
             VALUES ($1, now() + $2 * interval '1 millisecond', $3)
             ON CONFLICT (holder) DO UPDATE
               SET expires_at = EXCLUDED.expires_at, instance = EXCLUDED.instance
               WHERE hq_member.instance = EXCLUDED.instance OR hq_member.expires_at <= now()
             RETURNING holder",
            &[&holder, &ttl_ms, &instance],
        )
        .await?;
    Ok(row.is_some())
}

/// Both checks for a process about to sync as `holder` with `public_key`: the key, then the
/// name. A row of the name left by a process that died (SIGKILL) expires within the lease
/// TTL, so the claim waits that long before concluding another process is alive.
pub async fn check_start(
    url: &str,
    holder: &str,
    public_key: &str,
    key_path: &str,
) -> Result<(), IdentityError> {
    let client = connect(&parse_url(url)?).await?;
    check_signing_key(&client, public_key, holder, key_path).await?;
    let deadline = tokio::time::Instant::now() + LEASE_TTL + CLAIM_POLL * 4;
    loop {
        let claimed = renew_member(&client, holder, process_instance())
            .await
            .map_err(PgError::query)?;
        if claimed {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(IdentityError::NameTaken(holder.to_string()));
        }
        tokio::time::sleep(CLAIM_POLL).await;
    }
}
