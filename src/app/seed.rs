//! Demo seed data (config/seed/*.csv, embedded in the binary so `storenode demo` runs from any
//! directory), loaded with the store's CSV import: catalog, customers and carts at HQ, each
//! store's stock receipts at that store.

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
    Ok(n)
}

/// This store's rows of stock.csv as receipts by the store (its catalog must be there first).
pub async fn seed_stock(node: &Node) -> Result<usize, SeedError> {
    import(node, ImportKind::Stock, "stock.csv", STOCK_CSV).await
}
