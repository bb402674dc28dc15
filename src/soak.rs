//! Store soak: a store node under a steady stream of receipts, till sales (each invoiced in
//! the store's VERI*FACTU series) and pickup orders (place, pick, ready, hand over), printing `ack <actor> <seq>` on stdout once each op is
//! committed. The crash-loop test SIGKILLs it at random points and checks that every printed
//! op survived. Two hidden broken modes exist only to prove that test can fail: acks printed
//! before the commit, and `synchronous=OFF`.

use crate::domain::fiscal::{InvoiceDraft, Issuer, TaxId};
use crate::domain::op::{Advance, OrderLine, ReceiveReason, SaleLine, Tender};
use crate::domain::{ActorId, CustomerId, Ean13, OrderId, Payload, Replica, SaleId, Sku, StoreId};
use crate::fiscal::{with_invoice, FiscalSetup, InvoiceFor};
use crate::store::{now_ms, Durability, Node, SubmitError, Synchronous};
use anyhow::Context;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Skus of the soak catalog.
pub const SOAK_SKUS: usize = 8;
/// Units received whenever a writer runs short.
const RECEIVE_QTY: u32 = 20;
/// Fixed clock of the generated HQ catalog, so every run generates the very same ops.
const CATALOG_WALL_MS: u64 = 1_700_000_000_000;

/// How the store soak runs.
#[derive(Debug, Clone, Copy)]
pub struct StoreSoak {
    /// Stop after about this many ops.
    pub ops: u64,
    /// Concurrent writers (their ops share group commits).
    pub writers: usize,
    /// BROKEN ON PURPOSE: print each ack before its op is committed.
    pub unsafe_ack_before_commit: bool,
    /// BROKEN ON PURPOSE: commit with `synchronous=OFF` (nothing is fsynced).
    pub unsafe_synchronous_off: bool,
}

/// HQ-authored catalog ops for the soak, generated in-process (identical on every run).
pub fn soak_catalog() -> anyhow::Result<Vec<crate::domain::Op>> {
    let mut hq = Replica::new(ActorId::hq());
    let eans = [
        "4006381333931",
        "8410000000016",
        "8412345678905",
        "5901234123457",
        "4000000000006",
        "8480000000002",
        "8437000000006",
        "8420000000008",
    ];
    let mut ops = Vec::new();
    for (i, ean) in eans.iter().enumerate().take(SOAK_SKUS) {
        let (op, _) = hq.prepare(
            CATALOG_WALL_MS,
            Payload::CatalogPut {
                sku: soak_sku(i)?,
                ean: Ean13::parse(ean)?,
                name: format!("Artículo de prueba {i}"),
                price_cents: 199 + 50 * i as i64,
                vat_bp: 2100,
            },
        )?;
        ops.push(op);
    }
    Ok(ops)
}

fn soak_sku(i: usize) -> anyhow::Result<Sku> {
    Ok(Sku::parse(&format!("SOAK-{}", i % SOAK_SKUS))?)
}

/// Run the store soak on `db` as `store` until `opts.ops` ops are written or it is killed.
pub fn run_store(db: &Path, store: StoreId, opts: StoreSoak) -> anyhow::Result<()> {
    let durability = Durability {
        synchronous: if opts.unsafe_synchronous_off {
            Synchronous::UnsafeOff
        } else {
            Synchronous::Full
        },
        ..Durability::default()
    };
    let node = Node::open_with(db, store.actor(), durability)
        .with_context(|| format!("cannot open {}", db.display()))?;
    node.ingest_blocking(soak_catalog()?)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        // One writer in the ack-before-commit mode, so the predicted seq is the real one.
        let writers = if opts.unsafe_ack_before_commit {
            1
        } else {
            opts.writers.max(1)
        };
        let run = now_ms();
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..writers {
            let writer = Writer {
                node: node.clone(),
                store: store.clone(),
                prefix: format!("{run}-{w}"),
                early_acks: opts.unsafe_ack_before_commit,
            };
            let per = opts.ops / writers as u64;
            tasks.spawn(async move { writer.run(w, per).await });
        }
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        anyhow::Ok(())
    })
}

/// One stream of store work: each round receives stock if short, sells, and takes one
/// pickup order from placement to handover.
struct Writer {
    node: Node,
    store: StoreId,
    prefix: String,
    early_acks: bool,
}

impl Writer {
    async fn run(&self, w: usize, ops: u64) -> anyhow::Result<()> {
        let mut written = 0u64;
        let mut round = 0usize;
        while written < ops {
            let sku = soak_sku(w + round)?;
            let order_id = OrderId::parse(&format!("O-{}-{round}", self.prefix))?;
            let customer = CustomerId::parse(&format!("C-{:04}", round % 50))?;
            let store = self.store.clone();
            let sale = Payload::Sale {
                store: store.clone(),
                sale_id: SaleId::parse(&format!("S-{}-{round}", self.prefix))?,
                lines: vec![SaleLine {
                    sku: sku.clone(),
                    qty: 1 + (round % 2) as u32,
                    unit_cents: 199,
                    vat_bp: 2100,
                }],
                tender: if round.is_multiple_of(3) {
                    Tender::Cash
                } else {
                    Tender::Card
                },
                customer: None,
            };
            let place = Payload::OrderPlace {
                order_id: order_id.clone(),
                store: store.clone(),
                customer,
                lines: vec![OrderLine {
                    sku: sku.clone(),
                    qty: 1,
                }],
                pickup_code: "K7P2QX".into(),
                placed_at_ms: now_ms(),
            };
            let advance = |to| Payload::OrderAdvance {
                order_id: order_id.clone(),
                store: store.clone(),
                to,
            };
            let steps = vec![
                sale,
                place,
                advance(Advance::Picking),
                Payload::OrderPick {
                    order_id: order_id.clone(),
                    store: store.clone(),
                    sku: sku.clone(),
                    picked: 1,
                },
                advance(Advance::Ready),
                advance(Advance::HandedOver),
            ];
            for payload in steps {
                written += self.submit(payload).await?;
            }
            let short = self
                .node
                .read(|r| r.state().rights(&store, &sku, &store.actor()))
                < 4;
            if short {
                let receive = Payload::StockReceive {
                    store: store.clone(),
                    sku,
                    qty: RECEIVE_QTY,
                    reason: ReceiveReason::Delivery,
                };
                written += self.submit(receive).await?;
            }
            round += 1;
        }
        Ok(())
    }

    /// Submit one op and print its ack; a domain refusal (sold out) is skipped. A sale is
    /// invoiced (VERI*FACTU record in the same transaction), except in the early-ack mode,
    /// whose predicted seq counts one op per submit.
    async fn submit(&self, payload: Payload) -> anyhow::Result<u64> {
        if let (Payload::Sale { sale_id, lines, .. }, false) = (&payload, self.early_acks) {
            let draft = InvoiceDraft::sale(
                sale_id.as_str(),
                lines.iter().map(|l| (l.qty, l.unit_cents, l.vat_bp)),
                None,
            );
            let build = with_invoice(
                soak_fiscal()?,
                self.store.clone(),
                vec![payload],
                InvoiceFor::Sale(draft),
            );
            return match self.node.submit_built(build, |_, _| Ok(())).await {
                Ok((done, ())) => {
                    for op in &done.ops {
                        ack(&op.actor, op.seq)?;
                    }
                    Ok(done.ops.len() as u64)
                }
                Err(SubmitError::Domain(e)) => {
                    tracing::debug!(error = %e, "soak sale refused");
                    Ok(0)
                }
                Err(e) => Err(e.into()),
            };
        }
        if self.early_acks {
            // Validated, so the only way this ack can be wrong is a crash before the commit.
            let (seq, valid) = self
                .node
                .read(|r| (r.next_seq(), r.check(&payload).is_ok()));
            if valid {
                ack(self.node.actor(), seq)?;
            }
        }
        match self.node.submit(vec![payload]).await {
            Ok(done) => {
                if !self.early_acks {
                    for op in &done.ops {
                        ack(&op.actor, op.seq)?;
                    }
                }
                Ok(done.ops.len() as u64)
            }
            Err(SubmitError::Domain(e)) => {
                tracing::debug!(error = %e, "soak op refused");
                Ok(0)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The issuer of the soak's invoices: the AEAT's test NIF, series `SOAK`.
pub fn soak_fiscal() -> anyhow::Result<Arc<FiscalSetup>> {
    Ok(Arc::new(FiscalSetup {
        issuer: Issuer {
            nif: TaxId::parse("89890001K")?,
            name: "Soak SL".to_string(),
            series: "SOAK".to_string(),
        },
        address: Vec::new(),
        zone: jiff::tz::TimeZone::get("Europe/Madrid")?,
        qr_base_url: "https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR".to_string(),
    }))
}

fn ack(actor: &ActorId, seq: u64) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ack {actor} {seq}")?;
    out.flush()
}
