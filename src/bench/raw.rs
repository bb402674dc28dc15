//! The persistence limit: the same op rows written with plain batched rusqlite inserts, same
//! table, same pragmas (WAL, `synchronous=FULL`, `store::schema::throughput_pragmas`), no
//! domain, no materialised rows.

use rusqlite::{params, Connection};
use std::path::Path;
use std::time::{Duration, Instant};

/// One op row as the log stores it.
pub struct Row {
    pub actor: String,
    pub seq: i64,
    pub body: Vec<u8>,
}

/// Open a fresh file with the writer's pragmas and the op log table.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    crate::store::schema::throughput_pragmas(&conn)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS ops (
            actor TEXT NOT NULL, seq INTEGER NOT NULL, hlc_wall INTEGER NOT NULL,
            hlc_counter INTEGER NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL,
            PRIMARY KEY (actor, seq))",
    )?;
    Ok(conn)
}

/// Insert `rows`, `batch` per transaction; returns the time taken.
pub fn insert_batched(path: &Path, rows: &[Row], batch: usize) -> rusqlite::Result<Duration> {
    let mut conn = open(path)?;
    let started = Instant::now();
    for chunk in rows.chunks(batch.max(1)) {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO ops (actor, seq, hlc_wall, hlc_counter, kind, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for row in chunk {
                stmt.execute(params![
                    row.actor,
                    row.seq,
                    1_700_000_000_000i64,
                    0,
                    "sale",
                    row.body
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(started.elapsed())
}

/// Time of `commits` single-row `synchronous=FULL` commits, each measured alone, back to back
/// (sorted, ms): the machine's commit latency at a glance.
pub fn commit_latencies_ms(
    path: &Path,
    body_bytes: usize,
    commits: usize,
) -> rusqlite::Result<Vec<f64>> {
    commit_latencies_paced_ms(path, body_bytes, commits, Duration::ZERO)
}

/// Like `commit_latencies_ms`, one commit every `every`: at a run's rate and for its length
/// the disk's occasional stalls (every few seconds on this host) land in the tail, as they do
/// in the run's; a few hundred commits in a row last a fraction of a second and miss them.
pub fn commit_latencies_paced_ms(
    path: &Path,
    body_bytes: usize,
    commits: usize,
    every: Duration,
) -> rusqlite::Result<Vec<f64>> {
    let conn = open(path)?;
    let body = vec![7u8; body_bytes];
    let mut stmt = conn.prepare(
        "INSERT INTO ops (actor, seq, hlc_wall, hlc_counter, kind, body) VALUES ('store:x', ?1, 0, 0, 'sale', ?2)",
    )?;
    let mut samples = Vec::with_capacity(commits);
    let first = Instant::now();
    for seq in 0..commits {
        let slot = first + every * seq as u32;
        if let Some(wait) = slot.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let started = Instant::now();
        stmt.execute(params![seq as i64 + 1, body])?;
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples)
}
