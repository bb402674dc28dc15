//! The offline maintenance commands: migrate, import, digest. Each prints what it did and
//! returns an error with context for `main` to show.

use crate::domain::{ActorId, StoreId};
use crate::store::import::{import_blocking, ImportKind};
use crate::store::{schema, Node};
use anyhow::Context;
use std::path::Path;

/// Create or upgrade a database; `actor` is needed only for a new file.
pub fn migrate(db: &Path, actor: Option<&str>) -> anyhow::Result<()> {
    let node = open(db, actor)?;
    node.checkpoint_blocking()?;
    println!(
        "{}: schema version {}, actor {}",
        db.display(),
        schema::latest_version(),
        node.actor()
    );
    Ok(())
}

/// Import a CSV file into the database in one transaction.
pub fn import(db: &Path, actor: Option<&str>, kind: ImportKind, file: &Path) -> anyhow::Result<()> {
    let node = open(db, actor)?;
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let (ops, skipped) = import_blocking(&node, kind, input)
        .with_context(|| format!("{} not imported; the database is unchanged", file.display()))?;
    node.checkpoint_blocking()?;
    println!("imported {}: {ops} ops written", file.display());
    if skipped > 0 {
        println!("skipped {skipped} rows that belong to other stores");
    }
    Ok(())
}

/// Print the state digests of a database: the whole state and each store's shared part.
pub fn digest(db: &Path) -> anyhow::Result<()> {
    if !db.exists() {
        anyhow::bail!("{} does not exist", db.display());
    }
    let node = Node::open_existing(db).with_context(|| format!("cannot open {}", db.display()))?;
    let ops = node.query_blocking(Node::op_count)?;
    let (all, stores) = node.read(|r| {
        let mut stores: Vec<StoreId> = r.state().stock.keys().map(|(s, _)| s.clone()).collect();
        stores.extend(r.state().orders.values().map(|o| o.store.clone()));
        stores.sort();
        stores.dedup();
        let per: Vec<(StoreId, String)> = stores
            .into_iter()
            .map(|s| {
                let d = r.digest_for_store(&s).short();
                (s, d)
            })
            .collect();
        (r.digest().short(), per)
    });
    println!("digest {all}");
    println!("ops {ops}");
    for (store, d) in stores {
        println!("store {store} {d}");
    }
    Ok(())
}

fn open(db: &Path, actor: Option<&str>) -> anyhow::Result<Node> {
    let node = match actor {
        Some(a) => {
            let actor = ActorId::parse(a)?;
            Node::open(db, actor)
        }
        None if db.exists() && std::fs::metadata(db).map(|m| m.len() > 0).unwrap_or(false) => {
            Node::open_existing(db)
        }
        None => anyhow::bail!(
            "{} is a new database: say whose it is with --actor hq or --actor store:<id>",
            db.display()
        ),
    };
    node.with_context(|| format!("cannot open {}", db.display()))
}

/// Write a steady stream of HQ ops (catalog prices, carts) from `writers` concurrent tasks and
/// print `ack <actor> <seq>` for each op once it is committed. Runs until `ops` are written or
/// the process is killed: the crash tests kill it and check every printed op survived.
pub fn soak(db: &Path, ops: u64, writers: usize) -> anyhow::Result<()> {
    use crate::domain::{CustomerId, Ean13, Payload, Sku};
    use std::io::Write;
    let node = open(db, Some("hq"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..writers.max(1) {
            let node = node.clone();
            tasks.spawn(async move {
                let per = ops / writers.max(1) as u64;
                for i in 0..per {
                    let n = (w as u64) * per + i;
                    let sku = Sku::parse(&format!("SOAK-{}", n % 500))?;
                    let payload = if n % 3 == 2 {
                        Payload::CartSet {
                            customer: CustomerId::parse(&format!("C-{}", n % 50))?,
                            sku,
                            qty: (n % 9 + 1) as u32,
                        }
                    } else {
                        Payload::CatalogPut {
                            sku,
                            ean: Ean13::parse("4006381333931")?,
                            name: format!("Artículo de prueba {}", n % 500),
                            price_cents: (n % 10_000) as i64 + 1,
                            vat_bp: 2100,
                        }
                    };
                    // A cart line needs its sku in the catalog first: fall back to a price.
                    let submitted = match node.submit(vec![payload]).await {
                        Ok(s) => s,
                        Err(crate::store::SubmitError::Domain(_)) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let mut out = std::io::stdout().lock();
                    for op in submitted.ops {
                        writeln!(out, "ack {} {}", op.actor, op.seq)?;
                    }
                    out.flush()?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        anyhow::Ok(())
    })
}

/// `storenode store reset-hq-cursor --db FILE`: a store that followed leased HQ processes
/// (down cursor epoch > 0) follows a single HQ again (no `[storage] url`, epoch 0). The store
/// must be stopped; its next hello asks HQ for its down-log from the start, and ops it already
/// holds are skipped by `(actor, seq)`.
pub fn reset_hq_cursor(db: &Path) -> anyhow::Result<()> {
    use crate::sync::protocol::store::DownCursor;
    if !db.exists() {
        anyhow::bail!("{} does not exist", db.display());
    }
    let node = Node::open_existing(db).with_context(|| format!("cannot open {}", db.display()))?;
    if node.actor().store().is_none() {
        anyhow::bail!(
            "{} is {}'s database, not a store's; only a store has an HQ cursor",
            db.display(),
            node.actor()
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let before = rt.block_on(node.write(crate::sync::persist::reset_down_cursor))?;
    node.close_blocking()?;
    let before = DownCursor::unpack(before);
    println!(
        "{}: HQ cursor was epoch {} index {}, now epoch 0 index 0; start the store: HQ resends \
         its down-log and ops already here are skipped",
        db.display(),
        before.epoch,
        before.idx
    );
    Ok(())
}
