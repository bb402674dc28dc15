//! Demo seed data (config/seed/*.csv, embedded in the binary so `storenode demo` runs from any
//! directory), loaded with the store's CSV import: catalog, customers and carts at HQ, each
//! store's stock receipts at that store.

use crate::domain::Payload;
use crate::store::import::{parse, ImportError, ImportKind};
use crate::store::{Node, SubmitError};

const CATALOG_CSV: &str = include_str!("../../config/seed/catalog.csv");
const CUSTOMERS_CSV: &str = include_str!("../../config/seed/customers.csv");
const CARTS_CSV: &str = include_str!("../../config/seed/carts.csv");
const STOCK_CSV: &str = include_str!("../../config/seed/stock.csv");

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("seed {file}: {source}")]
    Import {
        file: &'static str,
        source: ImportError,
    },
    #[error("seed {file}: {source}")]
    Submit {
        file: &'static str,
        source: SubmitError,
    },
}

async fn import(
    node: &Node,
    kind: ImportKind,
    file: &'static str,
    text: &'static str,
) -> Result<usize, SeedError> {
    let parsed = node
        .read(|r| parse(kind, text.as_bytes(), r))
        .map_err(|source| SeedError::Import { file, source })?;
    let n = parsed.payloads.len();
    if n > 0 {
        node.submit(parsed.payloads)
            .await
            .map_err(|source| SeedError::Submit { file, source })?;
    }
    Ok(n)
}

/// Catalog, customers (with consent) and carts, authored by HQ. Returns the ops written.
pub async fn seed_hq(node: &Node) -> Result<usize, SeedError> {
    let mut n = import(node, ImportKind::Catalog, "catalog.csv", CATALOG_CSV).await?;
    n += import(node, ImportKind::Customers, "customers.csv", CUSTOMERS_CSV).await?;
    n += import(node, ImportKind::Carts, "carts.csv", CARTS_CSV).await?;
    n += seed_promotions(node).await?;
    Ok(n)
}

/// The demo's promotions (DESIGN.md §18): a 3x2 and a second unit at half price on two
/// cheeses, and 10 % off the whole `fruteria` category (catalog.csv's last column), valid from
/// 2026 to the end of 2030, so the till shows them at once.
async fn seed_promotions(node: &Node) -> Result<usize, SeedError> {
    const FRUIT: &str = "fruteria";
    use crate::domain::ids::PromotionId;
    use crate::domain::till::{Promotion, PromotionKind};
    const FROM_MS: u64 = 1_767_222_000_000; // 2026-01-01T00:00:00+01:00
    const UNTIL_MS: u64 = 1_924_988_400_000; // 2031-01-01T00:00:00+01:00
    let promotion = |id: &str, name: &str, kind, sku: &str| -> Option<Promotion> {
        Some(Promotion {
            id: PromotionId::parse(id).ok()?,
            name: name.to_string(),
            kind,
            skus: vec![crate::domain::Sku::parse(sku).ok()?],
            starts_ms: FROM_MS,
            ends_ms: UNTIL_MS,
            priority: 1,
            categories: Vec::new(),
        })
    };
    let payloads: Vec<Payload> = [
        promotion(
            "DEMO-3X2",
            "3x2",
            PromotionKind::NForM { n: 3, m: 2 },
            "SKU-000021",
        ),
        promotion(
            "DEMO-2A-50",
            "2a unidad -50 %",
            PromotionKind::SecondUnit { bp: 5_000 },
            "SKU-000022",
        ),
    ]
    .into_iter()
    .flatten()
    .chain(
        promotion(
            "DEMO-FRUTA-10",
            "Frutería -10 %",
            PromotionKind::Percent { bp: 1_000 },
            "SKU-000031",
        )
        .and_then(|p| {
            Some(Promotion {
                skus: Vec::new(),
                categories: vec![crate::domain::ids::Category::parse(FRUIT).ok()?],
                ..p
            })
        }),
    )
    .map(|promotion| Payload::PromotionSet { promotion })
    .collect();
    let n = payloads.len();
    node.submit(payloads)
        .await
        .map_err(|source| SeedError::Submit {
            file: "promotions",
            source,
        })?;
    Ok(n)
}

/// This store's rows of stock.csv as receipts by the store (its catalog must be there first).
pub async fn seed_stock(node: &Node) -> Result<usize, SeedError> {
    import(node, ImportKind::Stock, "stock.csv", STOCK_CSV).await
}
