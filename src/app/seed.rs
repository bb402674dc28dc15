//! Demo seed data (config/seed/*.csv, embedded in the binary) turned into payloads: catalog,
//! customers with consent and carts authored by HQ, stock received by each store.

use crate::domain::op::{Channel, ProfilePatch, ReceiveReason};
use crate::domain::{CustomerId, Ean13, Payload, Sku, StoreId};
use std::collections::BTreeMap;

const CATALOG_CSV: &str = include_str!("../../config/seed/catalog.csv");
const CUSTOMERS_CSV: &str = include_str!("../../config/seed/customers.csv");
const CARTS_CSV: &str = include_str!("../../config/seed/carts.csv");
const STOCK_CSV: &str = include_str!("../../config/seed/stock.csv");

/// A seed file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{file} line {line}: {reason}")]
    Row {
        file: &'static str,
        line: u64,
        reason: String,
    },
}

/// Payloads to seed a demo chain with.
#[derive(Debug, Default)]
pub struct Seed {
    /// Authored by HQ: catalog first, then customers and carts.
    pub hq: Vec<Payload>,
    /// Authored by each store: its stock receipts.
    pub stock: BTreeMap<StoreId, Vec<Payload>>,
}

fn rows(
    file: &'static str,
    text: &'static str,
) -> impl Iterator<Item = Result<(u64, csv::StringRecord), SeedError>> {
    csv::Reader::from_reader(text.as_bytes())
        .into_records()
        .map(move |r| {
            r.map(|rec| (rec.position().map_or(0, |p| p.line()), rec))
                .map_err(|e| SeedError::Row {
                    file,
                    line: e.position().map_or(0, |p| p.line()),
                    reason: e.to_string(),
                })
        })
}

fn field<'a>(
    file: &'static str,
    line: u64,
    rec: &'a csv::StringRecord,
    i: usize,
) -> Result<&'a str, SeedError> {
    rec.get(i).ok_or_else(|| SeedError::Row {
        file,
        line,
        reason: format!("missing column {i}"),
    })
}

fn bad(file: &'static str, line: u64, e: impl std::fmt::Display) -> SeedError {
    SeedError::Row {
        file,
        line,
        reason: e.to_string(),
    }
}

/// Read the embedded seed files.
pub fn load() -> Result<Seed, SeedError> {
    let mut seed = Seed::default();
    for row in rows("catalog.csv", CATALOG_CSV) {
        let (line, rec) = row?;
        let f = |i| field("catalog.csv", line, &rec, i);
        let e = |err| bad("catalog.csv", line, err);
        seed.hq.push(Payload::CatalogPut {
            sku: Sku::parse(f(0)?).map_err(e)?,
            ean: Ean13::parse(f(1)?).map_err(e)?,
            name: f(2)?.to_string(),
            price_cents: f(3)?.parse().map_err(|x| bad("catalog.csv", line, x))?,
            vat_bp: f(4)?.parse().map_err(|x| bad("catalog.csv", line, x))?,
        });
    }
    for row in rows("customers.csv", CUSTOMERS_CSV) {
        let (line, rec) = row?;
        let f = |i| field("customers.csv", line, &rec, i);
        let customer = CustomerId::parse(f(0)?).map_err(|x| bad("customers.csv", line, x))?;
        seed.hq.push(Payload::CustomerUpdate {
            customer: customer.clone(),
            patch: ProfilePatch {
                name: Some(f(1)?.to_string()),
                email: Some(f(2)?.to_string()),
                phone: Some(f(3)?.to_string()),
                loyalty_card: Some(f(4)?.to_string()),
            },
        });
        for (i, channel) in [
            (5, Channel::Email),
            (6, Channel::Sms),
            (7, Channel::Whatsapp),
        ] {
            seed.hq.push(Payload::ConsentSet {
                customer: customer.clone(),
                channel,
                granted: f(i)? == "true",
                source: "seed".to_string(),
            });
        }
    }
    for row in rows("carts.csv", CARTS_CSV) {
        let (line, rec) = row?;
        let f = |i| field("carts.csv", line, &rec, i);
        seed.hq.push(Payload::CartSet {
            customer: CustomerId::parse(f(0)?).map_err(|x| bad("carts.csv", line, x))?,
            sku: Sku::parse(f(1)?).map_err(|x| bad("carts.csv", line, x))?,
            qty: f(2)?.parse().map_err(|x| bad("carts.csv", line, x))?,
        });
    }
    for row in rows("stock.csv", STOCK_CSV) {
        let (line, rec) = row?;
        let f = |i| field("stock.csv", line, &rec, i);
        let store = StoreId::parse(f(0)?).map_err(|x| bad("stock.csv", line, x))?;
        let qty: u32 = f(2)?.parse().map_err(|x| bad("stock.csv", line, x))?;
        if qty == 0 {
            continue;
        }
        seed.stock
            .entry(store.clone())
            .or_default()
            .push(Payload::StockReceive {
                store,
                sku: Sku::parse(f(1)?).map_err(|x| bad("stock.csv", line, x))?,
                qty,
                reason: ReceiveReason::Delivery,
            });
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_seed_reads_completely() {
        let seed = load().unwrap();
        let catalog = seed
            .hq
            .iter()
            .filter(|p| matches!(p, Payload::CatalogPut { .. }))
            .count();
        assert!(catalog > 200, "{catalog}");
        assert_eq!(seed.stock.len(), 2);
        assert!(seed.stock.values().all(|v| v.len() > 100));
    }
}
