//! Returns, exchanges and the customer card at the store's JSON API (DESIGN.md §12, §17),
//! through `tower::ServiceExt::oneshot` over a real SQLite node.

mod terminal_support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use storenode::domain::fiscal::{InvoiceType, Issuer, TaxId};
use storenode::domain::op::Channel;
use storenode::domain::{CustomerId, Payload};
use storenode::fiscal::FiscalSetup;
use storenode::terminal::print::PrintJob;
use terminal_support::{Fixture, CUSTOMER, ORDER};

/// Sell `lines` as `cookie` and return the sale id.
async fn sell(
    f: &Fixture,
    cookie: &str,
    lines: Value,
    tender: &str,
    customer: Option<&str>,
) -> String {
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/sales",
            Some(json!({"lines": lines, "tender": tender, "customer": customer})),
            Some(cookie),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

async fn store_rights(f: &Fixture, cookie: &str, sku: &str) -> i64 {
    let (_, _, stock) = f
        .call(
            Method::GET,
            &format!("/api/v1/stock/{sku}"),
            None,
            Some(cookie),
        )
        .await;
    stock["store_rights"].as_i64().unwrap()
}

async fn give_back(f: &Fixture, cookie: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, answer) = f
        .call(Method::POST, "/api/v1/returns", Some(body), Some(cookie))
        .await;
    (status, answer)
}

#[tokio::test]
async fn a_sale_returned_at_its_store_refunds_what_was_paid_restocks_and_opens_the_drawer() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let sale = sell(
        &f,
        &cookie,
        json!([{"sku": "SKU-1", "qty": 2}]),
        "cash",
        None,
    )
    .await;
    let rights = store_rights(&f, &cookie, "SKU-1").await;
    let (status, headers, got) = f
        .call(
            Method::GET,
            &format!("/api/v1/sales/{sale}"),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(headers["x-storenode-lookup"], "local");
    assert_eq!(got["store"], "madrid-centro");
    assert_eq!(got["tender"], "cash");
    assert_eq!(got["total_cents"], 698);
    assert_eq!(got["lines"][0]["sku"], "SKU-1");
    assert_eq!(got["lines"][0]["qty"], 2);
    assert_eq!(got["lines"][0]["price_cents"], 349);
    assert_eq!(got["lines"][0]["returned"], 0);

    let jobs_before = f.printer.jobs().len();
    let (status, answer) = give_back(
        &f,
        &cookie,
        json!({"sale": sale, "lines": [{"sku": "SKU-1", "qty": 1, "restock": true}], "tender": "cash"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["refund_cents"], 349);
    assert_eq!(answer["verified"], true);
    assert!(answer["id"].as_str().is_some_and(|id| id.starts_with('R')));
    assert_eq!(store_rights(&f, &cookie, "SKU-1").await, rights + 1);
    let jobs = f.printer.jobs();
    assert!(
        matches!(&jobs[jobs_before], PrintJob::ReturnReceipt { net_cents: -349, verified: true, sale: s, .. } if *s == sale),
        "{jobs:?}"
    );
    assert_eq!(jobs[jobs_before + 1], PrintJob::DrawerKick);
    assert_eq!(terminal_support::queued(&f.node, "return_receipt").await, 1);

    let (_, _, got) = f
        .call(
            Method::GET,
            &format!("/api/v1/sales/{sale}"),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(got["lines"][0]["returned"], 1);
    assert_eq!(got["lines"][0]["returnable"], 1);
    // A card refund does not open the drawer; a damaged unit is not restocked.
    let (status, answer) = give_back(
        &f,
        &cookie,
        json!({"sale": sale, "lines": [{"sku": "SKU-1", "qty": 1, "restock": false}], "tender": "card"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(store_rights(&f, &cookie, "SKU-1").await, rights + 1);
    assert_eq!(f.printer.jobs().len(), jobs_before + 3);
}

#[tokio::test]
async fn returning_more_than_is_left_or_what_was_not_sold_changes_nothing() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let sale = sell(
        &f,
        &cookie,
        json!([{"sku": "SKU-2", "qty": 2}]),
        "card",
        None,
    )
    .await;
    let (status, _) = give_back(
        &f,
        &cookie,
        json!({"sale": sale, "lines": [{"sku": "SKU-2", "qty": 1}], "tender": "card"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let jobs = f.printer.jobs().len();
    let rights = store_rights(&f, &cookie, "SKU-2").await;
    let (status, body) = give_back(
        &f,
        &cookie,
        json!({"sale": sale, "lines": [{"sku": "SKU-2", "qty": 2}], "tender": "card"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "already_returned");
    assert_eq!(body["sku"], "SKU-2");
    assert_eq!(body["returnable"], 1);
    let (status, body) = give_back(
        &f,
        &cookie,
        json!({"sale": sale, "lines": [{"sku": "SKU-1", "qty": 1}], "tender": "card"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "not_in_sale");
    assert_eq!(body["sku"], "SKU-1");
    assert_eq!(
        f.printer.jobs().len(),
        jobs,
        "no receipt for a refused return"
    );
    assert_eq!(store_rights(&f, &cookie, "SKU-2").await, rights);
    for (bad, field) in [
        (
            json!({"lines": [{"sku": "SKU-2", "qty": 1}], "tender": "card"}),
            "sale",
        ),
        (
            json!({"sale": sale, "lines": [], "tender": "card"}),
            "lines",
        ),
        (
            json!({"sale": sale, "lines": [{"sku": "SKU-2", "qty": 0}], "tender": "card"}),
            "qty",
        ),
        (
            json!({"sale": sale, "lines": [{"sku": "SKU-2", "qty": 1}], "tender": "gold"}),
            "tender",
        ),
        (
            json!({"sale": sale, "lines": [{"sku": "SKU-2", "qty": 1, "restock": "yes"}], "tender": "card"}),
            "restock",
        ),
    ] {
        let (status, body) = give_back(&f, &cookie, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["field"], field, "{body}");
    }
}

#[tokio::test]
async fn a_sale_not_known_here_needs_a_manager_within_the_limit_and_the_window() {
    let f = Fixture::with_config(|c| c.returns.unverified_max_cents = 500).await;
    let associate = f.login("1001", "1234").await;
    let manager = f.login("9001", "4321").await;
    // No sync engine here: HQ cannot be asked.
    let (status, headers, body) = f
        .call(
            Method::GET,
            "/api/v1/sales/S1764410000000-beef",
            None,
            Some(&associate),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "unknown_sale");
    assert!(!headers.contains_key("x-storenode-lookup") || headers["x-storenode-lookup"] != "hq");
    let now_sale = format!("S{}-beef", storenode::store::now_ms());
    let ask = |qty: u32| json!({"sale": now_sale, "lines": [{"sku": "SKU-1", "qty": qty}], "tender": "cash"});
    let (status, body) = give_back(&f, &associate, ask(1)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "manager_required");
    let (status, body) = give_back(&f, &manager, ask(2)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "over the limit: {body}");
    assert_eq!(body["error"], "manager_required");
    let (status, body) = give_back(&f, &manager, ask(1)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["verified"], false);
    assert_eq!(body["refund_cents"], 349);
    let (status, body) = give_back(
        &f,
        &manager,
        json!({"sale": "S1000-beef", "lines": [{"sku": "SKU-1", "qty": 1}], "tender": "cash"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "a 1970 sale: {body}");
    assert_eq!(body["error"], "return_window_closed");
}

#[tokio::test]
async fn an_exchange_returns_and_sells_in_one_transaction_paying_the_difference() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let sale = sell(
        &f,
        &cookie,
        json!([{"sku": "SKU-2", "qty": 1}]),
        "card",
        None,
    )
    .await;
    let (milk, coffee) = (
        store_rights(&f, &cookie, "SKU-2").await,
        store_rights(&f, &cookie, "SKU-1").await,
    );
    // SKU-4 has no stock: the whole exchange is refused and nothing is returned.
    let (status, body) = give_back(
        &f,
        &cookie,
        json!({"sale": sale, "lines": [{"sku": "SKU-2", "qty": 1}], "tender": "card",
               "exchange": [{"sku": "SKU-4", "qty": 1}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "insufficient_stock");
    assert_eq!(store_rights(&f, &cookie, "SKU-2").await, milk);
    let (status, body) = give_back(
        &f,
        &cookie,
        json!({"sale": sale, "lines": [{"sku": "SKU-2", "qty": 1}], "tender": "cash",
               "exchange": [{"sku": "SKU-1", "qty": 1}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["refund_cents"], 99);
    assert_eq!(body["net_cents"], 349 - 99);
    let new_sale = body["sale"].as_str().unwrap().to_string();
    assert_eq!(store_rights(&f, &cookie, "SKU-2").await, milk + 1);
    assert_eq!(store_rights(&f, &cookie, "SKU-1").await, coffee - 1);
    let (status, _, got) = f
        .call(
            Method::GET,
            &format!("/api/v1/sales/{new_sale}"),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["total_cents"], 349);
    let jobs = f.printer.jobs();
    assert!(
        matches!(jobs.iter().rev().nth(1), Some(PrintJob::ReturnReceipt { net_cents: 250, exchange_sale: Some(s), .. }) if *s == new_sale),
        "{jobs:?}"
    );
    assert_eq!(jobs.last(), Some(&PrintJob::DrawerKick));
}

#[tokio::test]
async fn the_customer_card_shows_consent_the_abandoned_cart_and_purchase_history() {
    let mut f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let customer = CustomerId::parse(CUSTOMER).unwrap();
    let (consent, _) =
        f.hq.prepare(
            3_000,
            Payload::ConsentSet {
                customer: customer.clone(),
                channel: Channel::Email,
                granted: true,
                source: "web".into(),
            },
        )
        .unwrap();
    f.node.ingest(vec![consent]).await.unwrap();
    let sale = sell(
        &f,
        &cookie,
        json!([{"sku": "SKU-2", "qty": 1}]),
        "card",
        Some(CUSTOMER),
    )
    .await;
    let (status, body) = give_back(
        &f,
        &cookie,
        json!({"sale": sale, "lines": [{"sku": "SKU-2", "qty": 1}], "tender": "card"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _, card) = f
        .call(
            Method::GET,
            &format!("/api/v1/customers/{CUSTOMER}"),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{card}");
    assert_eq!(card["id"], CUSTOMER);
    assert_eq!(card["name"], "Lucía Pérez Gómez");
    assert_eq!(card["phone"], "+34 600 111 222");
    assert_eq!(card["consent"]["email"]["granted"], true);
    assert_eq!(card["consent"]["email"]["source"], "web");
    assert!(card["consent"].get("sms").is_none());
    assert!(card["cart"]["lines"]
        .as_array()
        .is_some_and(|l| !l.is_empty()));
    assert!(
        card["abandoned_since"].is_u64(),
        "cart untouched since 1970: {card}"
    );
    let history = card["history"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = history
        .iter()
        .map(|h| (h["kind"].as_str().unwrap(), h["id"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("sale", sale.as_str())), "{kinds:?}");
    assert!(kinds.contains(&("order", ORDER)), "{kinds:?}");
    assert!(kinds.iter().any(|(k, _)| *k == "return"), "{kinds:?}");
    for h in history {
        assert_eq!(h["store"], "madrid-centro");
        assert!(h["at"].is_u64() && h["total_cents"].is_i64(), "{h}");
    }
    let (status, _, body) = f
        .call(Method::GET, "/api/v1/customers/C-9999", None, Some(&cookie))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "unknown_customer");
}

#[tokio::test]
async fn with_fiscal_a_return_and_an_exchange_each_issue_one_rectifying_invoice_naming_the_sale() {
    let f = Fixture::with_config(|c| {
        c.fiscal = Some(Arc::new(FiscalSetup {
            issuer: Issuer {
                nif: TaxId::parse("89890001K").unwrap(),
                name: "Tiendas Demo SL".into(),
                series: "MAD1".into(),
            },
            address: vec![],
            zone: jiff::tz::TimeZone::get("Europe/Madrid").unwrap(),
            qr_base_url: "https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR".into(),
        }))
    })
    .await;
    let cookie = f.login("1001", "1234").await;
    let sale = sell(
        &f,
        &cookie,
        json!([{"sku": "SKU-1", "qty": 2}]),
        "cash",
        None,
    )
    .await;
    let (_, _, got) = f
        .call(
            Method::GET,
            &format!("/api/v1/sales/{sale}"),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(got["invoice"], "MAD1-1");
    let (status, answer) = give_back(
        &f,
        &cookie,
        json!({"sale": sale, "lines": [{"sku": "SKU-1", "qty": 1}], "tender": "cash"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["invoice"], "MAD1-2");
    let (status, answer) = give_back(
        &f,
        &cookie,
        json!({"sale": sale, "lines": [{"sku": "SKU-1", "qty": 1}], "tender": "card",
               "exchange": [{"sku": "SKU-2", "qty": 1}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        answer["invoice"], "MAD1-3",
        "one invoice for the exchange: {answer}"
    );
    let records: Vec<(InvoiceType, Option<String>, i64)> = f.node.read(|r| {
        let chain = &r.state().fiscal[&terminal_support::store()];
        assert_eq!(chain.records, 3);
        ["MAD1-2", "MAD1-3"]
            .iter()
            .filter_map(|n| {
                r.state().returns.returns.values().find_map(|ret| {
                    let inv = chain.invoice_for(ret.id.as_str())?;
                    (inv.numserie == *n)
                        .then(|| (inv.tipo, Some(inv.numserie.clone()), inv.importe_cents))
                })
            })
            .collect()
    });
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records.iter().all(|(t, _, _)| *t == InvoiceType::R5),
        "{records:?}"
    );
    assert_eq!(records[0].2, -349, "{records:?}");
    assert_eq!(records[1].2, 99 - 349, "{records:?}");
    let jobs = f.printer.jobs();
    assert!(
        jobs.iter().any(|j| matches!(j, PrintJob::ReturnReceipt { fiscal: Some(m), .. } if m.tipo == "R5" && m.rectifies.as_deref() == Some("MAD1-1"))),
        "{jobs:?}"
    );
}
