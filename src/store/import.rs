//! CSV imports (catalog, stock, customers, carts): parse and check every line first, then
//! submit everything as one all-or-nothing change. A file with one bad line changes nothing
//! and gets an error per bad line naming the line, the column and the value.

use crate::domain::ids::Category;
use crate::domain::op::{Channel, ProfilePatch, ReceiveReason};
use crate::domain::{ActorId, CustomerId, Ean13, Payload, Replica, Sku, StoreId};
use std::io::Read;

/// Most errors listed for one file; the rest are counted.
pub const LINE_ERRORS_MAX: usize = 50;

/// What can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportKind {
    Catalog,
    Stock,
    Customers,
    Carts,
}

/// One bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

/// Why an import was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}", render_lines(.0, *.1))]
    Lines(Vec<LineError>, usize),
    #[error("header is {found:?}, expected {expected:?}")]
    Header { found: String, expected: String },
    #[error("{0}")]
    WrongReplica(String),
    #[error("cannot read csv: {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Submit(#[from] super::SubmitError),
}

fn render_lines(lines: &[LineError], more: usize) -> String {
    let mut out: Vec<String> = lines
        .iter()
        .map(|e| format!("line {}: {}", e.line, e.message))
        .collect();
    if more > 0 {
        out.push(format!("... and {more} more bad lines"));
    }
    out.join("\n")
}

/// Parsed payloads plus rows left out because they belong to another store.
#[derive(Debug, Default)]
pub struct Parsed {
    pub payloads: Vec<Payload>,
    pub skipped: usize,
}

const HEADERS: [(ImportKind, &str); 4] = [
    (ImportKind::Catalog, "sku,ean,name,price_cents,vat_bp"),
    (ImportKind::Stock, "store,sku,qty"),
    (
        ImportKind::Customers,
        "id,name,email,phone,loyalty_card,consent_email,consent_sms,consent_whatsapp",
    ),
    (ImportKind::Carts, "customer,sku,qty"),
];

/// The catalog's optional last column: the product's category (promotions by category);
/// empty leaves the product's category as it is.
const CATEGORY_COLUMN: &str = "category";

fn field<'a>(rec: &'a csv::StringRecord, i: usize, name: &str) -> Result<&'a str, String> {
    rec.get(i)
        .map(str::trim)
        .ok_or_else(|| format!("missing column {name}"))
}

fn number<T: std::str::FromStr>(
    rec: &csv::StringRecord,
    i: usize,
    name: &str,
) -> Result<T, String> {
    let raw = field(rec, i, name)?;
    raw.parse()
        .map_err(|_| format!("invalid {name} {raw:?}: expected a whole number >= 0"))
}

fn flag(rec: &csv::StringRecord, i: usize, name: &str) -> Result<bool, String> {
    match field(rec, i, name)? {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        other => Err(format!("invalid {name} {other:?}: expected true or false")),
    }
}

/// Parse `input` as `kind` for the replica `replica` (whose actor decides what it may author).
pub fn parse(kind: ImportKind, input: impl Read, replica: &Replica) -> Result<Parsed, ImportError> {
    let actor = replica.actor();
    check_replica(kind, actor)?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let expected = HEADERS.iter().find(|h| h.0 == kind).map_or("", |h| h.1);
    let found = reader.headers()?.iter().collect::<Vec<_>>().join(",");
    let optional = (kind == ImportKind::Catalog).then(|| format!("{expected},{CATEGORY_COLUMN}"));
    if found != expected && Some(&found) != optional.as_ref() {
        return Err(ImportError::Header {
            found,
            expected: expected.to_string(),
        });
    }
    let mut parsed = Parsed::default();
    let mut errors = Vec::new();
    let mut more = 0usize;
    for (i, rec) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let outcome = rec
            .map_err(|e| e.to_string())
            .and_then(|rec| row(kind, &rec, replica, actor));
        match outcome {
            Ok(Some(mut payloads)) => parsed.payloads.append(&mut payloads),
            Ok(None) => parsed.skipped += 1,
            Err(message) if errors.len() < LINE_ERRORS_MAX => {
                errors.push(LineError { line, message })
            }
            Err(_) => more += 1,
        }
    }
    if !errors.is_empty() {
        return Err(ImportError::Lines(errors, more));
    }
    Ok(parsed)
}

fn check_replica(kind: ImportKind, actor: &ActorId) -> Result<(), ImportError> {
    match kind {
        ImportKind::Catalog | ImportKind::Customers | ImportKind::Carts if !actor.is_hq() => {
            Err(ImportError::WrongReplica(format!(
                "{kind:?} is authored by HQ: import it into the HQ database, not {actor}'s"
            )))
        }
        ImportKind::Stock if actor.is_hq() => Err(ImportError::WrongReplica(
            "stock is recorded by each store: import it into the store's database".to_string(),
        )),
        _ => Ok(()),
    }
}

/// One CSV row as payloads; `None` for a stock row of another store.
fn row(
    kind: ImportKind,
    rec: &csv::StringRecord,
    replica: &Replica,
    actor: &ActorId,
) -> Result<Option<Vec<Payload>>, String> {
    let err = |e: crate::domain::IdError| e.to_string();
    let known = |sku: &Sku| {
        if replica.state().catalog.contains(sku) {
            Ok(())
        } else {
            Err(format!("unknown sku {sku}"))
        }
    };
    Ok(Some(match kind {
        ImportKind::Catalog => {
            let price: i64 = field(rec, 3, "price_cents")?.parse().map_err(|_| {
                format!(
                    "invalid price_cents {:?}",
                    field(rec, 3, "price_cents").unwrap_or("")
                )
            })?;
            let vat_bp: u32 = number(rec, 4, "vat_bp")?;
            let payload = Payload::CatalogPut {
                sku: Sku::parse(field(rec, 0, "sku")?).map_err(err)?,
                ean: Ean13::parse(field(rec, 1, "ean")?).map_err(err)?,
                name: field(rec, 2, "name")?.to_string(),
                price_cents: price,
                vat_bp,
            };
            replica.check(&payload).map_err(|e| e.to_string())?;
            let sku = Sku::parse(field(rec, 0, "sku")?).map_err(err)?;
            let mut payloads = vec![payload];
            match rec.get(5).map(str::trim) {
                None | Some("") => {}
                Some(c) => payloads.push(Payload::CatalogCategory {
                    sku,
                    category: Some(Category::parse(c).map_err(err)?),
                }),
            }
            payloads
        }
        ImportKind::Stock => {
            let store = StoreId::parse(field(rec, 0, "store")?).map_err(err)?;
            let sku = Sku::parse(field(rec, 1, "sku")?).map_err(err)?;
            let qty: u32 = number(rec, 2, "qty")?;
            if store.actor() != *actor {
                return Ok(None);
            }
            known(&sku)?;
            if qty == 0 {
                return Ok(Some(vec![]));
            }
            vec![Payload::StockReceive {
                store,
                sku,
                qty,
                reason: ReceiveReason::Delivery,
            }]
        }
        ImportKind::Customers => {
            let customer = CustomerId::parse(field(rec, 0, "id")?).map_err(err)?;
            let text = |i: usize, name: &str| -> Result<Option<String>, String> {
                let v = field(rec, i, name)?;
                Ok((!v.is_empty()).then(|| v.to_string()))
            };
            let email = text(2, "email")?;
            if let Some(e) = &email {
                if !e.contains('@') {
                    return Err(format!("invalid email {e:?}"));
                }
            }
            let update = Payload::CustomerUpdate {
                customer: customer.clone(),
                patch: ProfilePatch {
                    name: text(1, "name")?,
                    email,
                    phone: text(3, "phone")?,
                    loyalty_card: text(4, "loyalty_card")?,
                },
            };
            replica.check(&update).map_err(|e| e.to_string())?;
            let mut out = vec![update];
            for (i, name, channel) in [
                (5, "consent_email", Channel::Email),
                (6, "consent_sms", Channel::Sms),
                (7, "consent_whatsapp", Channel::Whatsapp),
            ] {
                out.push(Payload::ConsentSet {
                    customer: customer.clone(),
                    channel,
                    granted: flag(rec, i, name)?,
                    source: "import".to_string(),
                });
            }
            out
        }
        ImportKind::Carts => {
            let customer = CustomerId::parse(field(rec, 0, "customer")?).map_err(err)?;
            let sku = Sku::parse(field(rec, 1, "sku")?).map_err(err)?;
            known(&sku)?;
            let qty: u32 = number(rec, 2, "qty")?;
            let payload = Payload::CartSet { customer, sku, qty };
            replica.check(&payload).map_err(|e| e.to_string())?;
            vec![payload]
        }
    }))
}

/// Parse and submit a whole file in one transaction (for the CLI; blocks).
pub fn import_blocking(
    node: &super::Node,
    kind: ImportKind,
    input: impl Read,
) -> Result<(usize, usize), ImportError> {
    let parsed = node.read(|replica| parse(kind, input, replica))?;
    let count = parsed.payloads.len();
    if count > 0 {
        node.submit_blocking(super::now_ms(), parsed.payloads)?;
    }
    Ok((count, parsed.skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ActorId;

    const HEAD: &str =
        "id,name,email,phone,loyalty_card,consent_email,consent_sms,consent_whatsapp\n";

    #[test]
    fn customers_import_with_their_consent_per_channel_from_the_import() {
        let csv = format!(
            "{HEAD}C-0001,Sofía Domínguez,sofia@example.com,+34619892561,2165033660244,true,false,true\n"
        );
        let replica = Replica::new(ActorId::hq());
        let parsed = parse(ImportKind::Customers, csv.as_bytes(), &replica).unwrap();
        let mut hq = Replica::new(ActorId::hq());
        for p in parsed.payloads {
            hq.prepare(1, p).unwrap();
        }
        let c = &hq.state().customers[&CustomerId::parse("C-0001").unwrap()];
        assert_eq!(c.phone(), Some("+34619892561"));
        let granted = |ch| c.consent(ch).map(|k| (k.granted, k.source.clone()));
        assert_eq!(granted(Channel::Email), Some((true, "import".to_string())));
        assert_eq!(granted(Channel::Sms), Some((false, "import".to_string())));
        assert_eq!(
            granted(Channel::Whatsapp),
            Some((true, "import".to_string()))
        );
    }

    #[test]
    fn a_bad_phone_or_email_refuses_the_file_naming_the_line_and_field() {
        let csv = format!(
            "{HEAD}C-1,Ana,ana@example.com,+34600111222,,true,true,true\n\
             C-2,Eva,eva@example,+34600111333,,true,true,true\n\
             C-3,Rosa,rosa@example.com,call me,,true,true,true\n"
        );
        let replica = Replica::new(ActorId::hq());
        let err = parse(ImportKind::Customers, csv.as_bytes(), &replica)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("email"), "{err}");
        assert!(err.contains("line 4") && err.contains("phone"), "{err}");
        assert!(!err.contains("line 2"), "{err}");
    }

    #[test]
    fn a_catalog_with_a_category_column_sets_each_category_and_one_without_still_imports() {
        let with = "sku,ean,name,price_cents,vat_bp,category\n\
                    SKU-1,4006381333931,Manzana,199,400,fruteria\n\
                    SKU-2,8410000000016,Sal,50,1000,\n";
        let mut hq = Replica::new(ActorId::hq());
        let parsed = parse(ImportKind::Catalog, with.as_bytes(), &hq).unwrap();
        assert_eq!(parsed.payloads.len(), 3, "two products, one category");
        for p in parsed.payloads {
            hq.prepare(1, p).unwrap();
        }
        let category = |s: &str| {
            hq.state()
                .catalog
                .category(&Sku::parse(s).unwrap())
                .map(|c| c.to_string())
        };
        assert_eq!(category("SKU-1").as_deref(), Some("fruteria"));
        assert_eq!(category("SKU-2"), None);
        let without = "sku,ean,name,price_cents,vat_bp\nSKU-3,8412345678905,Pan,85,400\n";
        let parsed = parse(ImportKind::Catalog, without.as_bytes(), &hq).unwrap();
        assert_eq!(parsed.payloads.len(), 1);
        let bad = "sku,ean,name,price_cents,vat_bp,category\nSKU-4,5901234123457,Vino,900,2100,vino tinto\n";
        let err = parse(ImportKind::Catalog, bad.as_bytes(), &hq)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("category"), "{err}");
    }
}
