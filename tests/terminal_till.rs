//! The till as shops run it (DESIGN.md §18), through the terminal's HTTP API on a real SQLite
//! file: promotions and manual discounts flow into the sale, its invoice and its refund; a
//! discount over the associate's limit needs a manager's PIN; a cash session opened, used for
//! sales and a return, and closed gives a Z report that adds up against the op log.

mod terminal_support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use storenode::domain::fiscal::{Issuer, TaxId};
use storenode::domain::ids::Category;
use storenode::domain::ids::{CashSessionId, PromotionId};
use storenode::domain::op::Tender;
use storenode::domain::till::pricing::net_lines;
use storenode::domain::till::{CashMoveKind, Promotion, PromotionKind, SkuPromotion};
use storenode::domain::{Op, Payload, Sku};
use storenode::fiscal::FiscalSetup;
use storenode::store::{now_ms, Node};
use storenode::terminal::print::PrintJob;
use terminal_support::{queued, store, Fixture};

fn setup() -> Arc<FiscalSetup> {
    Arc::new(FiscalSetup {
        issuer: Issuer {
            nif: TaxId::parse("89890001K").unwrap(),
            name: "Tiendas Demo SL".into(),
            series: "MAD1".into(),
        },
        address: vec![],
        zone: jiff::tz::TimeZone::get("Europe/Madrid").unwrap(),
        qr_base_url: "https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR".into(),
    })
}

/// A fixture with invoices, the cash-session rule as given, and HQ's 20 % off SKU-1 (in the
/// encoding before categories, `PromotionPut`, which stores still apply).
async fn till(cash_session_required: bool) -> Fixture {
    let mut f = Fixture::with_config(|c| {
        c.fiscal = Some(setup());
        c.till.cash_session_required = cash_session_required;
    })
    .await;
    let now = now_ms();
    let (op, _) =
        f.hq.prepare(
            now,
            Payload::PromotionPut {
                promotion: SkuPromotion {
                    id: PromotionId::parse("P-20").unwrap(),
                    name: "20 % café".into(),
                    kind: PromotionKind::Percent { bp: 2_000 },
                    skus: vec![Sku::parse("SKU-1").unwrap()],
                    starts_ms: now - 86_400_000,
                    ends_ms: now + 86_400_000,
                    priority: 1,
                },
            },
        )
        .unwrap();
    f.node.ingest(vec![op]).await.unwrap();
    f
}

async fn post(f: &Fixture, uri: &str, body: Value, cookie: &str) -> (StatusCode, Value) {
    let (status, _, v) = f.call(Method::POST, uri, Some(body), Some(cookie)).await;
    (status, v)
}

#[tokio::test]
async fn promotions_and_discounts_flow_into_the_sale_its_invoice_and_its_refund() {
    let f = till(false).await;
    let associate = f.login("1001", "1234").await;
    let sale = json!({
        "lines": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-2", "qty": 3, "discount_pct": 5}],
        "tender": "card", "ticket_discount_pct": 2,
    });
    let (status, s) = post(&f, "/api/v1/sales", sale, &associate).await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    // SKU-1: 2 x 3.49 = 6.98, 20 % off 1.40 -> 5.58; SKU-2: 3 x 0.99 = 2.97, 5 % off 0.15 ->
    // 2.82; the ticket's 2 % of 8.40 is 0.17, spread 0.11 + 0.06 (largest remainder).
    assert_eq!(s["total_cents"], 823);
    assert_eq!(s["discount_cents"], 172);
    assert_eq!(s["lines"][0]["promotion"], "P-20");
    assert_eq!(s["lines"][0]["unit_cents"], 349);
    assert_eq!(s["lines"][0]["discount_cents"], 151);
    assert_eq!(s["lines"][1]["discount_cents"], 21);
    let id = s["id"].as_str().unwrap().to_string();
    let invoice = s["invoice"].as_str().unwrap().to_string();
    let record = f.node.read(|r| {
        r.state()
            .fiscal
            .get(&store())
            .and_then(|_| storenode::fiscal::issued_invoice(r, &id))
    });
    assert_eq!(record.map(|i| i.importe_cents), Some(823), "{invoice}");
    // The receipt prints each discount under its line, at that line's VAT rate, and adds up.
    let receipt = f.printer.jobs().into_iter().find_map(|j| match j {
        PrintJob::Receipt {
            reference,
            lines,
            total_cents,
            ..
        } if reference == id => Some((lines, total_cents)),
        _ => None,
    });
    let (lines, total) = receipt.expect("the sale's receipt");
    assert_eq!(total, 823);
    let printed: i64 = lines.iter().map(|l| l.unit_cents * i64::from(l.qty)).sum();
    assert_eq!(printed, 823);
    assert!(
        lines
            .iter()
            .any(|l| l.unit_cents == -151 && l.vat_bp == 1000),
        "{lines:?}"
    );
    let (_, _, shown) = f
        .call(
            Method::GET,
            &format!("/api/v1/sales/{id}"),
            None,
            Some(&associate),
        )
        .await;
    assert_eq!(shown["total_cents"], 823);
    // Returning both units of SKU-1 refunds exactly what they were paid, one at a time.
    let ret = |qty| json!({"sale": id, "lines": [{"sku": "SKU-1", "qty": qty, "restock": true}], "tender": "card"});
    let (status, r1) = post(&f, "/api/v1/returns", ret(1), &associate).await;
    assert_eq!(status, StatusCode::CREATED, "{r1}");
    let (_, r2) = post(&f, "/api/v1/returns", ret(1), &associate).await;
    assert_eq!(r1["refund_cents"], 273);
    assert_eq!(r2["refund_cents"], 274);
}

#[tokio::test]
async fn a_promotion_by_category_reaches_the_skus_hq_put_in_it_on_the_sale_receipt_and_invoice() {
    let mut f = till(false).await;
    let now = now_ms();
    let dairy = Category::parse("lacteos").unwrap();
    let ops: Vec<Op> = [
        Payload::CatalogCategory {
            sku: Sku::parse("SKU-2").unwrap(),
            category: Some(dairy.clone()),
        },
        Payload::PromotionSet {
            promotion: Promotion {
                id: PromotionId::parse("P-LACTEOS").unwrap(),
                name: "Lácteos -10 %".into(),
                kind: PromotionKind::Percent { bp: 1_000 },
                skus: vec![],
                starts_ms: now - 86_400_000,
                ends_ms: now + 86_400_000,
                priority: 1,
                categories: vec![dairy],
            },
        },
    ]
    .into_iter()
    .map(|p| f.hq.prepare(now, p).unwrap().0)
    .collect();
    f.node.ingest(ops).await.unwrap();
    let associate = f.login("1001", "1234").await;
    let (_, _, scanned) = f
        .call(Method::GET, "/api/v1/stock/SKU-2", None, Some(&associate))
        .await;
    assert_eq!(
        scanned["category"], "lacteos",
        "the page learns the category"
    );
    let (_, _, promos) = f
        .call(Method::GET, "/api/v1/promotions", None, Some(&associate))
        .await;
    let listed = promos
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "P-LACTEOS");
    assert_eq!(
        listed.map(|p| p["categories"].clone()),
        Some(json!(["lacteos"]))
    );
    let sale = json!({"lines": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-2", "qty": 3}], "tender": "card"});
    let (status, s) = post(&f, "/api/v1/sales", sale, &associate).await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    // SKU-1: 6.98 - 20 % (1.40) = 5.58 by its sku; SKU-2: 2.97 - 10 % (0.30) = 2.67 by its
    // category.
    assert_eq!(s["lines"][0]["promotion"], "P-20");
    assert_eq!(s["lines"][1]["promotion"], "P-LACTEOS");
    assert_eq!(s["lines"][1]["discount_cents"], 30);
    assert_eq!(s["total_cents"], 825);
    let id = s["id"].as_str().unwrap().to_string();
    let record = f.node.read(|r| storenode::fiscal::issued_invoice(r, &id));
    assert_eq!(record.map(|i| i.importe_cents), Some(825));
    let receipt = f.printer.jobs().into_iter().find_map(|j| match j {
        PrintJob::Receipt {
            reference, lines, ..
        } if reference == id => Some(lines),
        _ => None,
    });
    let lines = receipt.expect("the sale's receipt");
    assert!(
        lines
            .iter()
            .any(|l| l.name.contains("P-LACTEOS") && l.unit_cents == -30),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_discount_over_the_associates_limit_needs_a_managers_pin_on_the_same_call() {
    let f = till(false).await;
    let associate = f.login("1001", "1234").await;
    let sale = |extra: Value| {
        let mut b =
            json!({"lines": [{"sku": "SKU-2", "qty": 1, "discount_pct": 15}], "tender": "card"});
        if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
            b.extend(extra.clone());
        }
        b
    };
    let (status, e) = post(&f, "/api/v1/sales", sale(json!({})), &associate).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"], "manager_required");
    assert_eq!(e["limit_pct"], 10);
    let not_manager = json!({"approval": {"staff": "1001", "pin": "1234"}});
    let (status, e) = post(&f, "/api/v1/sales", sale(not_manager), &associate).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("manager_required"))
    );
    let wrong_pin = json!({"approval": {"staff": "9001", "pin": "0000"}});
    let (status, _) = post(&f, "/api/v1/sales", sale(wrong_pin), &associate).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let approved = json!({"approval": {"staff": "9001", "pin": "4321"}});
    let (status, s) = post(&f, "/api/v1/sales", sale(approved), &associate).await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    assert_eq!(s["total_cents"], 99 - 15);
    let sale_id = storenode::domain::SaleId::parse(s["id"].as_str().unwrap()).unwrap();
    let approver = f.node.read(|r| {
        r.state().sales[&sale_id]
            .pricing
            .as_ref()
            .and_then(|p| p.approved_by.clone())
    });
    assert_eq!(approver.as_deref(), Some("9001"));
    for (line, ticket, field) in [
        (json!(-5), json!(0), "discount_pct"),
        (json!(100.5), json!(0), "discount_pct"),
        (json!("5"), json!(0), "discount_pct"),
        (json!(0), json!(150), "ticket_discount_pct"),
    ] {
        let body = json!({"lines": [{"sku": "SKU-2", "qty": 1, "discount_pct": line}],
                          "tender": "card", "ticket_discount_pct": ticket});
        let before = f.node.read(|r| r.state().sales.len());
        let (status, e) = post(&f, "/api/v1/sales", body, &associate).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["field"], field);
        assert_eq!(
            f.node.read(|r| r.state().sales.len()),
            before,
            "nothing sold"
        );
    }
}

/// The store's own ops, in seq order, from the SQLite op log.
async fn store_log(node: &Node) -> Vec<Op> {
    let actor = store().actor();
    node.query(move |c| Node::ops_since(c, &actor, 0, 100_000))
        .await
        .unwrap()
}

/// The Z report recomputed from the op log alone: the ops between the session's open and
/// close, each sale at its lines minus the discounts recorded with it.
fn z_from_log(log: &[Op], session: &CashSessionId) -> BTreeMap<&'static str, i64> {
    let mut z = BTreeMap::new();
    let mut inside = false;
    let mut pricing = BTreeMap::new();
    for op in log {
        match &op.payload {
            Payload::CashOpen {
                session: s,
                float_cents,
                ..
            } if s == session => {
                inside = true;
                *z.entry("expected").or_default() += float_cents;
            }
            Payload::CashClose { session: s, .. } if s == session => inside = false,
            _ if !inside => {}
            Payload::SalePriced {
                sale_id,
                pricing: p,
                ..
            } => {
                pricing.insert(sale_id.clone(), p.clone());
            }
            Payload::Sale {
                sale_id,
                lines,
                tender,
                ..
            } => {
                let p = pricing.get(sale_id);
                let paid: i64 = net_lines(lines, p).iter().sum();
                *z.entry("discounts").or_default() += p.map_or(0, |p| p.discount_cents());
                *z.entry(tender_key(*tender)).or_default() += paid;
                if *tender == Tender::Cash {
                    *z.entry("expected").or_default() += paid;
                }
            }
            Payload::Return { lines, tender, .. } => {
                let refund: i64 = lines.iter().map(|l| l.refund_cents).sum();
                *z.entry("returns").or_default() += refund;
                *z.entry(tender_key(*tender)).or_default() -= refund;
                if *tender == Tender::Cash {
                    *z.entry("expected").or_default() -= refund;
                }
            }
            Payload::CashMove { kind, cents, .. } => {
                let signed = if *kind == CashMoveKind::In {
                    *cents
                } else {
                    -cents
                };
                *z.entry("expected").or_default() += signed;
            }
            Payload::Invoice { record, .. } => {
                z.entry("first_invoice").or_insert(record.number as i64);
                z.insert("last_invoice", record.number as i64);
            }
            _ => {}
        }
    }
    z
}

fn tender_key(t: Tender) -> &'static str {
    match t {
        Tender::Cash => "cash",
        Tender::Card => "card",
    }
}

#[tokio::test]
async fn a_session_open_sales_a_return_and_close_give_a_z_report_that_adds_up_against_the_op_log() {
    let mut f = till(true).await;
    let associate = f.login("1001", "1234").await;
    let cash_sale = |sku: &str, qty: u32, tender: &str| json!({"lines": [{"sku": sku, "qty": qty}], "tender": tender});
    let (status, e) = post(
        &f,
        "/api/v1/sales",
        cash_sale("SKU-2", 1, "cash"),
        &associate,
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::CONFLICT, Some("no_cash_session"))
    );
    let (status, _) = post(
        &f,
        "/api/v1/sales",
        cash_sale("SKU-2", 1, "card"),
        &associate,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "card sales need no drawer");
    let close = |counted: i64| json!({"counted_cents": counted});
    let (status, _) = post(
        &f,
        "/api/v1/cash/sessions/current/close",
        close(0),
        &associate,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "closing a session that is not open"
    );

    let (status, opened) = post(
        &f,
        "/api/v1/cash/sessions",
        json!({"float_cents": 10_000}),
        &associate,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let session = CashSessionId::parse(opened["id"].as_str().unwrap()).unwrap();
    let (status, e) = post(
        &f,
        "/api/v1/cash/sessions",
        json!({"float_cents": 0}),
        &associate,
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::CONFLICT, Some("session_open"))
    );
    let movements = "/api/v1/cash/sessions/current/movements";
    let (status, e) = post(
        &f,
        movements,
        json!({"kind": "out", "cents": 2_000, "reason": " "}),
        &associate,
    )
    .await;
    assert_eq!(
        (status, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason"))
    );
    let (status, _) = post(
        &f,
        movements,
        json!({"kind": "out", "cents": 2_000, "reason": "banco"}),
        &associate,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, s1) = post(
        &f,
        "/api/v1/sales",
        cash_sale("SKU-1", 2, "cash"),
        &associate,
    )
    .await;
    let (_, s2) = post(
        &f,
        "/api/v1/sales",
        cash_sale("SKU-2", 2, "card"),
        &associate,
    )
    .await;
    let ticket =
        json!({"lines": [{"sku": "SKU-3", "qty": 1}], "tender": "cash", "ticket_discount_pct": 10});
    let (status, s3) = post(&f, "/api/v1/sales", ticket, &associate).await;
    assert_eq!(status, StatusCode::CREATED, "{s3}");
    let ret = json!({"sale": s1["id"], "lines": [{"sku": "SKU-1", "qty": 1, "restock": true}], "tender": "cash"});
    let (status, r) = post(&f, "/api/v1/returns", ret, &associate).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");

    let (status, _, x) = f
        .call(
            Method::GET,
            "/api/v1/cash/sessions/current/report",
            None,
            Some(&associate),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(x["counted_cents"], Value::Null, "an X report has no count");
    let expected = x["expected_cents"].as_i64().unwrap();
    let (status, z) = post(
        &f,
        "/api/v1/cash/sessions/current/close",
        close(expected - 50),
        &associate,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{z}");

    let log = store_log(&f.node).await;
    let from_log = z_from_log(&log, &session);
    assert_eq!(
        z["expected_cents"].as_i64(),
        from_log.get("expected").copied()
    );
    assert_eq!(
        z["by_tender"]["cash"].as_i64(),
        from_log.get("cash").copied()
    );
    assert_eq!(
        z["by_tender"]["card"].as_i64(),
        from_log.get("card").copied()
    );
    assert_eq!(
        z["returns_cents"].as_i64(),
        from_log.get("returns").copied()
    );
    assert_eq!(
        z["discounts_cents"].as_i64(),
        from_log.get("discounts").copied()
    );
    assert!(
        from_log["discounts"] > 0,
        "the promotion and the ticket discount count"
    );
    assert_eq!(z["difference_cents"], -50);
    assert_eq!(z["counted_cents"], expected - 50);
    let number = |v: &Value| {
        v.as_str()
            .and_then(|s| s.rsplit('-').next()?.parse::<i64>().ok())
    };
    assert_eq!(
        number(&z["first_invoice"]),
        from_log.get("first_invoice").copied()
    );
    assert_eq!(
        number(&z["last_invoice"]),
        from_log.get("last_invoice").copied()
    );
    assert_eq!(
        z["first_invoice"], s1["invoice"],
        "the card sale before the session is not in it"
    );
    assert_ne!(
        z["last_invoice"], s2["invoice"],
        "the return's rectifying invoice is the last"
    );
    let vat_total: i64 = z["vat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["base_cents"].as_i64().unwrap() + v["vat_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(
        vat_total,
        from_log["cash"] + from_log["card"],
        "VAT base + VAT = net takings"
    );
    assert_eq!(
        queued(&f.node, "cash_report").await,
        1,
        "the Z report is printed"
    );

    let (status, _) = post(
        &f,
        "/api/v1/cash/sessions/current/close",
        close(0),
        &associate,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, _, kept) = f
        .call(
            Method::GET,
            &format!("/api/v1/cash/sessions/{session}"),
            None,
            Some(&associate),
        )
        .await;
    assert_eq!(kept, z, "the Z report is kept");
    // HQ applies the store's log in its order and reports the same session.
    for op in &log {
        if !f.hq.version().contains(&op.actor, op.seq) {
            f.hq.apply(op).unwrap();
        }
    }
    let at_hq = f.hq.state().cash.sessions[&session].report();
    assert_eq!(Some(at_hq.expected_cents), z["expected_cents"].as_i64());
    assert_eq!(Some(at_hq.discounts_cents), z["discounts_cents"].as_i64());
}

#[tokio::test]
async fn a_session_left_open_overnight_is_shown_as_such_at_the_next_login() {
    let f = till(true).await;
    let two_days_ago = now_ms() - 2 * 86_400_000;
    f.node
        .submit(vec![Payload::CashOpen {
            store: store(),
            session: CashSessionId::parse("Z-OLD").unwrap(),
            float_cents: 10_000,
            staff: "1001".into(),
            opened_ms: two_days_ago,
        }])
        .await
        .unwrap();
    let (status, _, login) = f
        .call(
            Method::POST,
            "/api/v1/session",
            Some(json!({"staff": "1001", "pin": "1234"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(login["cash_session"]["id"], "Z-OLD");
    assert_eq!(login["cash_session"]["stale"], true);
}

#[tokio::test]
async fn a_parked_ticket_survives_a_restart_and_is_resumed_once() {
    let f = till(false).await;
    let associate = f.login("1001", "1234").await;
    let ticket = json!({"lines": [{"sku": "SKU-1", "qty": 2, "discount_pct": 5}, {"sku": "SKU-2", "qty": 1}],
                        "label": "señora del abrigo rojo"});
    let (status, parked) = post(&f, "/api/v1/sales/parked", ticket, &associate).await;
    assert_eq!(status, StatusCode::CREATED, "{parked}");
    let id = parked["id"].as_str().unwrap().to_string();
    let bad = json!({"lines": [{"sku": "SKU-1", "qty": 0}]});
    let (status, e) = post(&f, "/api/v1/sales/parked", bad, &associate).await;
    assert_eq!(
        (status, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("qty"))
    );
    // Serve someone else meanwhile.
    let other = json!({"lines": [{"sku": "SKU-2", "qty": 1}], "tender": "card"});
    assert_eq!(
        post(&f, "/api/v1/sales", other, &associate).await.0,
        StatusCode::CREATED
    );

    // Restart: a new node and terminal over the same file.
    let terminal_support::Fixture {
        state,
        node,
        dir,
        printer,
        link,
        hq,
    } = f;
    let config = state.config().clone();
    drop(state);
    drop(node);
    let node = Node::open(&dir.path().join("store.db"), store().actor()).unwrap();
    let state = storenode::terminal::TerminalState::new(
        node.clone(),
        link.clone(),
        printer.clone(),
        config,
    );
    let f = Fixture {
        state,
        node,
        dir,
        printer,
        link,
        hq,
    };
    let associate = f.login("1001", "1234").await;
    let (_, _, list) = f
        .call(Method::GET, "/api/v1/sales/parked", None, Some(&associate))
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["label"], "señora del abrigo rojo");
    let resume = format!("/api/v1/sales/parked/{id}/resume");
    let (status, mut resumed) = post(&f, &resume, json!({}), &associate).await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["lines"][0]["discount_pct"], 5.0);
    let (status, _) = post(&f, &resume, json!({}), &associate).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a ticket is resumed once");
    // The resumed ticket sells as it was parked.
    resumed["tender"] = json!("card");
    let (status, sold) = post(&f, "/api/v1/sales", resumed, &associate).await;
    assert_eq!(status, StatusCode::CREATED, "{sold}");
    // SKU-1: 6.98 - 20 % promotion (1.40) = 5.58, - 5 % (0.28) = 5.30; SKU-2: 0.99.
    assert_eq!(sold["total_cents"], 530 + 99);
}
