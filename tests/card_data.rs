//! No card data at rest or in logs: payments are recorded as tender type and amount only.
//! Sales (card and cash) run through the real store code and the real binary; then every
//! SQLite file (database, WAL) and every log line is scanned for PAN-like numbers: 13-19
//! digits, optionally grouped by spaces or dashes, passing the Luhn check, with a card
//! network prefix. Product EANs from the catalog are not card numbers and are skipped.

use std::collections::BTreeSet;
use std::process::Command;
use storenode::domain::op::{SaleLine, Tender};
use storenode::domain::{CustomerId, Payload, SaleId, Sku, StoreId};
use storenode::store::Node;

const BIN: &str = env!("CARGO_BIN_EXE_storenode");

fn luhn_ok(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Issuer prefixes of the card networks (Visa, Mastercard, Amex, Discover, JCB, Diners,
/// Maestro, UnionPay).
fn card_prefix(d: &[u8]) -> bool {
    let n = |k: usize| d.iter().take(k).fold(0u32, |a, x| a * 10 + u32::from(*x));
    matches!(d.first(), Some(4))
        || (51..=55).contains(&n(2))
        || (2221..=2720).contains(&n(4))
        || matches!(n(2), 34 | 37 | 36 | 38 | 62 | 65)
        || n(4) == 6011
        || (3528..=3589).contains(&n(4))
        || matches!(n(2), 50 | 56..=58 | 63 | 67)
}

/// Whether digit groups split by single spaces or dashes are laid out like a printed card
/// number: 4-4-4-4(-3), 4-4-4-1..4, or Amex 4-6-5.
fn card_grouping(groups: &[usize]) -> bool {
    match groups {
        [_] => true,
        [4, 6, 5] => true,
        [4, 4, 4, last] => (1..=4).contains(last),
        [4, 4, 4, 4, 3] => true,
        _ => false,
    }
}

/// Every PAN-like number in `bytes`, as a digit string: a whole run of 13-19 digits (or
/// card-like groups of them) passing Luhn with a card network prefix.
fn pan_like(bytes: &[u8], not_cards: &BTreeSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut digits = Vec::new();
        let mut groups = vec![0usize];
        let mut j = i;
        while j < bytes.len() {
            if bytes[j].is_ascii_digit() {
                digits.push(bytes[j] - b'0');
                if let Some(g) = groups.last_mut() {
                    *g += 1;
                }
                j += 1;
            } else if (bytes[j] == b' ' || bytes[j] == b'-')
                && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
                && groups.last() == Some(&4)
            {
                groups.push(0);
                j += 1;
            } else {
                break;
            }
        }
        let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        // Digits inside a hex word (an invoice's SHA-256 `huella`) are not a card number.
        let hex_letter = |b: Option<&u8>| b.is_some_and(|b| matches!(b, b'A'..=b'F' | b'a'..=b'f'));
        let in_hex_word =
            hex_letter(i.checked_sub(1).and_then(|k| bytes.get(k))) || hex_letter(bytes.get(j));
        if (13..=19).contains(&digits.len())
            && !in_hex_word
            && card_grouping(&groups)
            && luhn_ok(&digits)
            && card_prefix(&digits)
            && !not_cards.contains(&s)
        {
            found.push(s);
        }
        i = j;
    }
    found.sort();
    found.dedup();
    found
}

/// EANs the soak catalog uses: product codes, not card numbers.
fn catalog_eans() -> BTreeSet<String> {
    storenode::soak::soak_catalog()
        .unwrap()
        .into_iter()
        .filter_map(|op| match op.payload {
            Payload::CatalogPut { ean, .. } => Some(ean.to_string()),
            _ => None,
        })
        .collect()
}

fn scan_dir(dir: &std::path::Path, not_cards: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // The closing writer may delete the WAL while we list the folder.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for pan in pan_like(&bytes, not_cards) {
            hits.push((path.display().to_string(), pan));
        }
    }
    hits
}

#[test]
fn the_scanner_finds_card_numbers_however_they_are_written() {
    let none = BTreeSet::new();
    for text in [
        "pan=4111111111111111;",
        "card 4111 1111 1111 1111 ok",
        "x5555-5555-5555-4444y",
        "\u{1}\u{7}378282246310005\u{0}",
    ] {
        assert_eq!(pan_like(text.as_bytes(), &none).len(), 1, "{text}");
    }
    // Timestamps, amounts and a wrong check digit are not card numbers.
    assert!(pan_like(b"1763900000000 ms 4111111111111112 199 cents", &none).is_empty());

    // Inside an SQLite file: a card number typed into a free-text field is found.
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(
        &dir.path().join("leak.db"),
        storenode::domain::ActorId::hq(),
    )
    .unwrap();
    node.submit_blocking(
        1,
        vec![Payload::CustomerUpdate {
            customer: CustomerId::parse("C-0009").unwrap(),
            patch: storenode::domain::op::ProfilePatch {
                name: Some("Ana 4111 1111 1111 1111".into()),
                ..Default::default()
            },
        }],
    )
    .unwrap();
    node.checkpoint_blocking().unwrap();
    drop(node);
    let hits = scan_dir(dir.path(), &none);
    assert!(
        hits.iter().any(|(_, pan)| pan == "4111111111111111"),
        "{hits:?}"
    );
}

#[test]
fn card_sales_leave_no_card_number_in_databases_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    let not_cards = catalog_eans();

    // The binary: a store soak selling by card and cash, with every log level on.
    let db = dir.path().join("store.db");
    let out = Command::new(BIN)
        .args([
            "soak",
            "--actor",
            "store:madrid-centro",
            "--writers",
            "4",
            "--ops",
            "3000",
            "--db",
        ])
        .arg(&db)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = [out.stdout, out.stderr].concat();
    assert!(!logs.is_empty());

    // In-process: card sales naming a customer, through the real node.
    let store = StoreId::parse("sevilla-nervion").unwrap();
    let node = Node::open(&dir.path().join("inproc.db"), store.actor()).unwrap();
    node.ingest_blocking(storenode::soak::soak_catalog().unwrap())
        .unwrap();
    let sku = Sku::parse("SOAK-1").unwrap();
    node.submit_blocking(
        1,
        vec![Payload::StockReceive {
            store: store.clone(),
            sku: sku.clone(),
            qty: 100,
            reason: storenode::domain::op::ReceiveReason::Delivery,
        }],
    )
    .unwrap();
    let mut cards = 0;
    for i in 0..50 {
        let done = node
            .submit_blocking(
                2 + i,
                vec![Payload::Sale {
                    store: store.clone(),
                    sale_id: SaleId::parse(&format!("S-{i}")).unwrap(),
                    lines: vec![SaleLine {
                        sku: sku.clone(),
                        qty: 1,
                        unit_cents: 249,
                        vat_bp: 2100,
                    }],
                    tender: Tender::Card,
                    customer: Some(CustomerId::parse("C-0001").unwrap()),
                }],
            )
            .unwrap();
        cards += done.ops.len();
    }
    assert_eq!(cards, 50);
    let recorded = node.read(|r| {
        r.state()
            .sales
            .values()
            .filter(|s| s.tender == Tender::Card)
            .count()
    });
    assert_eq!(recorded, 50);
    node.checkpoint_blocking().unwrap();
    drop(node);

    let mut hits = scan_dir(dir.path(), &not_cards);
    hits.extend(
        pan_like(&logs, &not_cards)
            .into_iter()
            .map(|p| ("logs".to_string(), p)),
    );
    assert!(hits.is_empty(), "PAN-like numbers found: {hits:?}");
}
