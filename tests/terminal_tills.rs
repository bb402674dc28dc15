//! Several tills in one store (DESIGN.md §18), through the terminal's HTTP API on a real
//! SQLite file: a terminal names its till at login, each till opens and closes its own drawer,
//! a cash sale needs the open session of its till, and each Z report counts only what was
//! taken at its till — the same at HQ, which applies the store's op log.

mod terminal_support;

use axum::http::{header, Method, StatusCode};
use serde_json::{json, Value};
use storenode::domain::ids::{CashSessionId, TillId};
use storenode::domain::till::TillDoc;
use storenode::domain::{Op, Payload};
use storenode::store::Node;
use terminal_support::{store, Fixture};

/// A store with tills T1 and T2, cash sales needing an open drawer.
async fn two_tills() -> Fixture {
    Fixture::with_config(|c| {
        c.till.cash_session_required = true;
        c.till.tills = vec![TillId::parse("T1").unwrap(), TillId::parse("T2").unwrap()];
    })
    .await
}

/// Log in at `till` (none: the store's first); the cookie and the answer.
async fn login_at(f: &Fixture, staff: &str, pin: &str, till: Option<&str>) -> (String, Value) {
    let mut body = json!({"staff": staff, "pin": pin});
    if let Some(t) = till {
        body["till"] = json!(t);
    }
    let (status, headers, v) = f
        .call(Method::POST, "/api/v1/session", Some(body), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    (cookie.split(';').next().unwrap().to_string(), v)
}

async fn post(f: &Fixture, uri: &str, body: Value, cookie: &str) -> (StatusCode, Value) {
    let (status, _, v) = f.call(Method::POST, uri, Some(body), Some(cookie)).await;
    (status, v)
}

async fn get(f: &Fixture, uri: &str, cookie: &str) -> Value {
    let (status, _, v) = f.call(Method::GET, uri, None, Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {v}");
    v
}

fn sale(sku: &str, qty: u32, tender: &str) -> Value {
    json!({"lines": [{"sku": sku, "qty": qty}], "tender": tender})
}

async fn store_log(node: &Node) -> Vec<Op> {
    let actor = store().actor();
    node.query(move |c| Node::ops_since(c, &actor, 0, 100_000))
        .await
        .unwrap()
}

#[tokio::test]
async fn each_till_opens_sells_and_closes_its_own_drawer() {
    let mut f = two_tills().await;
    let (t1, who) = login_at(&f, "1001", "1234", None).await;
    assert_eq!(who["till"], "T1", "no till named: the store's first");
    assert_eq!(who["tills"], json!(["T1", "T2"]));
    let (t2, who) = login_at(&f, "9001", "4321", Some("T2")).await;
    assert_eq!(who["till"], "T2");
    assert_eq!(who["cash_session"], Value::Null);

    let (status, z1) = post(
        &f,
        "/api/v1/cash/sessions",
        json!({"float_cents": 10_000}),
        &t1,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{z1}");
    assert_eq!(z1["till"], "T1");
    // T1's drawer is open, T2's is not: a cash sale at T2 is refused, naming its till.
    let (status, e) = post(&f, "/api/v1/sales", sale("SKU-2", 1, "cash"), &t2).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(
        (e["error"].as_str(), e["till"].as_str()),
        (Some("no_cash_session"), Some("T2"))
    );
    let (status, z2) = post(
        &f,
        "/api/v1/cash/sessions",
        json!({"float_cents": 5_000}),
        &t2,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{z2}");
    let (status, e) = post(&f, "/api/v1/cash/sessions", json!({"float_cents": 1}), &t2).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::CONFLICT, Some("session_open"))
    );

    // SKU-2 is 0.99, SKU-1 3.49 (terminal_support::products).
    let (status, s1) = post(&f, "/api/v1/sales", sale("SKU-2", 2, "cash"), &t1).await;
    assert_eq!(status, StatusCode::CREATED, "{s1}");
    let (status, s2) = post(&f, "/api/v1/sales", sale("SKU-1", 1, "cash"), &t2).await;
    assert_eq!(status, StatusCode::CREATED, "{s2}");
    let (status, s3) = post(&f, "/api/v1/sales", sale("SKU-2", 1, "card"), &t2).await;
    assert_eq!(status, StatusCode::CREATED, "{s3}");
    let back = json!({
        "sale": s2["id"], "lines": [{"sku": "SKU-1", "qty": 1, "restock": true}], "tender": "cash",
    });
    let (status, r) = post(&f, "/api/v1/returns", back, &t2).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");

    let x1 = get(&f, "/api/v1/cash/sessions/current/report", &t1).await;
    assert_eq!(
        (x1["till"].as_str(), x1["sales"].as_i64()),
        (Some("T1"), Some(1))
    );
    assert_eq!(x1["expected_cents"], 10_000 + 198);
    let (status, z) = post(
        &f,
        "/api/v1/cash/sessions/current/close",
        json!({"counted_cents": 5_000}),
        &t2,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{z}");
    assert_eq!(z["till"], "T2");
    assert_eq!(
        (z["sales"].as_i64(), z["returns"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(z["by_tender"], json!({"cash": 0, "card": 99}));
    assert_eq!(z["expected_cents"], 5_000);
    assert_eq!(z["difference_cents"], 0);

    // T1's drawer stays open after T2 closed; the manager sees both tills.
    let tills = get(&f, "/api/v1/cash/tills", &t2).await;
    assert_eq!(tills[0]["till"], "T1");
    assert_eq!(tills[0]["session"]["id"], z1["id"]);
    assert_eq!(tills[1]["session"], Value::Null);
    let (status, e) = post(&f, "/api/v1/sales", sale("SKU-2", 1, "cash"), &t2).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::CONFLICT, Some("no_cash_session"))
    );
    let (status, s4) = post(&f, "/api/v1/sales", sale("SKU-1", 1, "cash"), &t1).await;
    assert_eq!(status, StatusCode::CREATED, "{s4}");

    // The log says where each document was taken: T2's sales and return carry `TakenAt`,
    // T1's (the default till's) carry none, and T1 opened with the op it always had.
    let log = store_log(&f.node).await;
    let taken: Vec<&TillDoc> = log
        .iter()
        .filter_map(|op| match &op.payload {
            Payload::TakenAt { till, doc, .. } if till.as_str() == "T2" => Some(doc),
            _ => None,
        })
        .collect();
    assert_eq!(taken.len(), 3, "{taken:?}");
    assert!(log
        .iter()
        .any(|op| matches!(op.payload, Payload::CashOpen { .. })));
    assert!(log
        .iter()
        .any(|op| matches!(op.payload, Payload::CashOpenTill { .. })));
    // HQ applies the same log and derives the same report for each till.
    for op in &log {
        f.hq.apply(op).unwrap();
    }
    for id in [&z1["id"], &z2["id"]] {
        let id = CashSessionId::parse(id.as_str().unwrap()).unwrap();
        let here = f.node.read(|r| r.state().cash.sessions[&id].report());
        assert_eq!(f.hq.state().cash.sessions[&id].report(), here, "{id}");
    }
}

#[tokio::test]
async fn a_terminal_names_only_a_till_of_its_store_and_can_move_to_another() {
    let f = two_tills().await;
    let (status, _, e) = f
        .call(
            Method::POST,
            "/api/v1/session",
            Some(json!({"staff": "1001", "pin": "1234", "till": "T9"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        (e["error"].as_str(), e["field"].as_str()),
        (Some("unknown_till"), Some("till"))
    );
    assert_eq!(e["tills"], json!(["T1", "T2"]));
    let (cookie, _) = login_at(&f, "1001", "1234", None).await;
    let (status, _, e) = f
        .call(
            Method::PUT,
            "/api/v1/session/till",
            Some(json!({"till": "caja 3"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_till"))
    );
    assert_eq!(
        get(&f, "/api/v1/session", &cookie).await["till"],
        "T1",
        "nothing changed"
    );
    let (status, _, moved) = f
        .call(
            Method::PUT,
            "/api/v1/session/till",
            Some(json!({"till": "T2"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["till"], "T2");
    let (status, z) = post(
        &f,
        "/api/v1/cash/sessions",
        json!({"float_cents": 100}),
        &cookie,
    )
    .await;
    assert_eq!(
        (status, z["till"].as_str()),
        (StatusCode::CREATED, Some("T2"))
    );
    assert_eq!(
        get(&f, "/api/v1/cash/sessions/current", &cookie).await["session"]["till"],
        "T2"
    );
}

/// The queued cash reports (`kind = 'cash_report'`), oldest first, decoded as the printer
/// emulator does: (text, PNG path under target/screenshots).
async fn printed_reports(f: &Fixture) -> Vec<(String, std::path::PathBuf)> {
    use storenode::devices::printer_sim::decoder::{Decoder, Output};
    use storenode::devices::printer_sim::render;
    let blobs: Vec<Vec<u8>> = f
        .node
        .query(|c| {
            let mut st =
                c.prepare("SELECT payload FROM print_job WHERE kind = 'cash_report' ORDER BY id")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect()
        })
        .await
        .unwrap();
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    blobs
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let mut d = Decoder::new();
            let mut items: Vec<_> = d
                .feed(bytes)
                .into_iter()
                .filter_map(|o| match o {
                    Output::Job(items) => Some(items),
                    Output::Status(_) => None,
                })
                .flatten()
                .collect();
            items.extend(d.finish().unwrap_or_default());
            let png = dir.join(format!("printer-cash-report-{i}.png"));
            render::to_png_image(&items).save(&png).unwrap();
            (render::to_text(&items), png)
        })
        .collect()
}

#[tokio::test]
async fn the_x_report_prints_at_any_time_and_the_z_report_prints_at_close() {
    let f = two_tills().await;
    let (t2, _) = login_at(&f, "1001", "1234", Some("T2")).await;
    let (status, e) = post(
        &f,
        "/api/v1/cash/sessions/current/report/print",
        json!({}),
        &t2,
    )
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::CONFLICT, Some("no_cash_session"))
    );
    assert!(
        printed_reports(&f).await.is_empty(),
        "nothing printed without a session"
    );
    let (status, _) = post(
        &f,
        "/api/v1/cash/sessions",
        json!({"float_cents": 15_000}),
        &t2,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, s) = post(&f, "/api/v1/sales", sale("SKU-1", 2, "cash"), &t2).await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    let (status, _, x) = f
        .call(
            Method::POST,
            "/api/v1/cash/sessions/current/report/print",
            None,
            Some(&t2),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{x}");
    assert_eq!(
        (x["printed"].as_bool(), x["till"].as_str()),
        (Some(true), Some("T2"))
    );
    assert_eq!(x["expected_cents"], 15_000 + 698);
    assert_eq!(x["counted_cents"], Value::Null);
    let (status, z) = post(
        &f,
        "/api/v1/cash/sessions/current/close",
        json!({"counted_cents": 15_700}),
        &t2,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{z}");
    let printed = printed_reports(&f).await;
    assert_eq!(printed.len(), 2, "the X report, then the Z report");
    let (x_text, x_png) = &printed[0];
    assert!(x_text.contains("INFORME X"), "{x_text}");
    assert!(x_text.contains("madrid-centro / T2"), "{x_text}");
    assert!(
        x_text.contains("Esperado") && x_text.contains("156,98"),
        "{x_text}"
    );
    assert!(
        !x_text.contains("Contado"),
        "an X report has no count: {x_text}"
    );
    let (z_text, z_png) = &printed[1];
    assert!(z_text.contains("INFORME Z"), "{z_text}");
    assert!(
        z_text.contains("Contado") && z_text.contains("157,00"),
        "{z_text}"
    );
    assert!(
        z_text.contains("Diferencia") && z_text.contains("0,02"),
        "{z_text}"
    );
    for png in [x_png, z_png] {
        let img = image::open(png).unwrap().to_luma8();
        assert!(img.height() > 200, "{} is a whole report", png.display());
    }
}
