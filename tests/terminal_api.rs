//! Handler tests of the store JSON API (DESIGN.md section 11) through `tower::ServiceExt::oneshot`.

mod terminal_support;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use storenode::terminal::link::LinkStatus;
use storenode::terminal::print::PrintJob;
use terminal_support::{ean, Fixture, CODE, CUSTOMER, KEY, ORDER};
use tower::ServiceExt;

#[tokio::test]
async fn login_sets_an_http_only_strict_cookie_and_names_the_role() {
    let f = Fixture::new().await;
    let (status, headers, body) = f
        .call(
            Method::POST,
            "/api/v1/session",
            Some(json!({"staff": "9001", "pin": "4321"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["staff"], "9001");
    assert_eq!(body["role"], "manager");
    let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http must not set Secure: {cookie}"
    );
    let cookie = cookie.split(';').next().unwrap();
    let (status, _, me) = f
        .call(Method::GET, "/api/v1/session", None, Some(cookie))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["name"], "Marta Ruiz");
    let (status, _, _) = f
        .call(Method::DELETE, "/api/v1/session", None, Some(cookie))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = f
        .call(Method::GET, "/api/v1/status", None, Some(cookie))
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a logged-out session is gone"
    );
}

#[tokio::test]
async fn wrong_pins_are_refused_and_the_fifth_locks_the_staff_number_out() {
    let f = Fixture::new().await;
    let login = |pin: &'static str| {
        f.call(
            Method::POST,
            "/api/v1/session",
            Some(json!({"staff": "1001", "pin": pin})),
            None,
        )
    };
    for attempt in 1..=4 {
        let (status, _, body) = login("9999").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}: {body}"
        );
        assert_eq!(body["error"], "bad_credentials");
        assert!(body["message"].is_string());
    }
    let (status, headers, body) = login("9999").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "locked_out");
    assert!(headers.contains_key(header::RETRY_AFTER));
    let (status, _, body) = login("1234").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the right PIN is refused while locked: {body}"
    );
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/session",
            Some(json!({"staff": "77", "pin": "1234"})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_credentials"))
    );
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/session",
            Some(json!({"staff": "9001"})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_pin"))
    );
}

#[tokio::test]
async fn every_store_call_but_login_and_healthz_needs_a_session() {
    let f = Fixture::new().await;
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/status".to_string(), None),
        (Method::GET, "/api/v1/events".into(), None),
        (Method::GET, "/api/v1/stock/SKU-1".into(), None),
        (
            Method::POST,
            "/api/v1/stock/SKU-1/count".into(),
            Some(json!({"counted": 1})),
        ),
        (
            Method::POST,
            "/api/v1/sales".into(),
            Some(json!({"lines": [{"sku": "SKU-1", "qty": 1}], "tender": "cash"})),
        ),
        (Method::GET, "/api/v1/pickups?status=placed".into(), None),
        (
            Method::POST,
            format!("/api/v1/pickups/{ORDER}/pick"),
            Some(json!({"scan": "SKU-1"})),
        ),
        (Method::POST, format!("/api/v1/pickups/{ORDER}/ready"), None),
        (
            Method::POST,
            format!("/api/v1/pickups/{ORDER}/handover"),
            Some(json!({"code": CODE})),
        ),
        (Method::GET, "/api/v1/customers?q=lucia".into(), None),
        (
            Method::GET,
            format!("/api/v1/customers/{CUSTOMER}/cart"),
            None,
        ),
    ];
    for (method, uri, body) in calls {
        let (status, _, body) = f
            .call(method.clone(), &uri, body, Some("sn_session=forged"))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}: {body}");
        assert_eq!(body["error"], "unauthorized", "{method} {uri}");
    }
    let (status, _, _) = f.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, page) = f.call(Method::GET, "/", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.as_str().is_some_and(|p| p.contains("<html")),
        "the page is public"
    );
    assert!(
        f.printer.jobs().is_empty(),
        "nothing happened without a session"
    );
}

#[tokio::test]
async fn status_shows_the_link_outbox_digest_and_devices() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    f.link.set(LinkStatus {
        online: false,
        since_ms: Some(1_700_000_000_000),
        outbox: 17,
        last_sync_ms: Some(1_699_999_999_000),
    });
    let (status, _, body) = f
        .call(Method::GET, "/api/v1/status", None, Some(&cookie))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["store"], "madrid-centro");
    assert_eq!(body["online"], false);
    assert_eq!(body["outbox"], 17);
    assert_eq!(body["since"], 1_700_000_000_000u64);
    assert_eq!(body["last_sync"], 1_699_999_999_000u64);
    assert!(body["digest"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(body["devices"].as_array().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn stock_lookup_by_sku_or_ean_shows_total_and_each_replicas_rights() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let (status, _, by_sku) = f
        .call(Method::GET, "/api/v1/stock/SKU-1", None, Some(&cookie))
        .await;
    assert_eq!(status, StatusCode::OK, "{by_sku}");
    // 10 received, 3 allocated to HQ, HQ reserved 2 for the pickup order.
    assert_eq!(by_sku["available"], 8);
    assert_eq!(by_sku["store_rights"], 7);
    assert_eq!(by_sku["hq_rights"], 1);
    assert_eq!(by_sku["name"], "Café molido natural 250 g");
    let (status, _, by_ean) = f
        .call(
            Method::GET,
            &format!("/api/v1/stock/{}", ean("841000000001")),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_ean, by_sku);
    let (status, _, body) = f
        .call(Method::GET, "/api/v1/stock/NOPE-9", None, Some(&cookie))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_sku"))
    );
    let good = ean("841000000001");
    let last = good.as_bytes()[12] - b'0';
    let bad = format!("{}{}", &good[..12], (last + 1) % 10);
    let (status, _, body) = f
        .call(
            Method::GET,
            &format!("/api/v1/stock/{bad}"),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_ean")),
        "{body}"
    );
}

#[tokio::test]
async fn associates_may_not_adjust_counts_and_managers_may() {
    let f = Fixture::new().await;
    let associate = f.login("1001", "1234").await;
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/stock/SKU-1/count",
            Some(json!({"counted": 4})),
            Some(&associate),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let manager = f.login("9001", "4321").await;
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/stock/SKU-1/count",
            Some(json!({"counted": -1})),
            Some(&manager),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_qty"))
    );
    // On hand: 8 available + 2 reserved = 10; counting 12 creates 2 at the store.
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/stock/SKU-1/count",
            Some(json!({"counted": 12})),
            Some(&manager),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sku"], "SKU-1");
    assert_eq!(body["available"], 10);
    // Counting 3 takes 7 from the store's 9 rights.
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/stock/SKU-1/count",
            Some(json!({"counted": 3})),
            Some(&manager),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["available"], 1);
    assert_eq!(body["shrinkage"], 0);
}

#[tokio::test]
async fn a_cash_sale_takes_store_rights_prints_a_receipt_and_kicks_the_drawer() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/sales",
            Some(json!({"lines": [{"sku": "SKU-1", "qty": 2}, {"sku": ean("841000000002"), "qty": 1}], "tender": "cash"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["total_cents"], 2 * 349 + 99);
    assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));
    let jobs = f.printer.jobs();
    assert!(
        matches!(&jobs[0], PrintJob::Receipt { total_cents: 797, tender, .. } if tender == "cash"),
        "{jobs:?}"
    );
    assert_eq!(jobs[1], PrintJob::DrawerKick);
    let (_, _, stock) = f
        .call(Method::GET, "/api/v1/stock/SKU-1", None, Some(&cookie))
        .await;
    assert_eq!(stock["store_rights"], 5);
    let (status, _, _) = f
        .call(
            Method::POST,
            "/api/v1/sales",
            Some(json!({"lines": [{"sku": "SKU-2", "qty": 1}], "tender": "card"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        f.printer.jobs().len(),
        3,
        "card sales do not open the drawer"
    );
    assert_eq!(terminal_support::queued(&f.node, "receipt").await, 2);
    assert_eq!(terminal_support::queued(&f.node, "drawer").await, 1);
}

#[tokio::test]
async fn a_sale_and_its_receipt_commit_together_or_not_at_all() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    // A print queue that refuses every row: the sale must not commit without its receipt.
    f.node
        .write(|tx| {
            tx.execute_batch(
                "CREATE TRIGGER refuse_jobs BEFORE INSERT ON print_job
                 BEGIN SELECT RAISE(ABORT, 'print queue refuses'); END;",
            )
        })
        .await
        .unwrap();
    let sell = || {
        f.call(
            Method::POST,
            "/api/v1/sales",
            Some(json!({"lines": [{"sku": "SKU-1", "qty": 1}], "tender": "card"})),
            Some(&cookie),
        )
    };
    let (status, _, body) = sell().await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let (_, _, stock) = f
        .call(Method::GET, "/api/v1/stock/SKU-1", None, Some(&cookie))
        .await;
    assert_eq!(stock["store_rights"], 7, "no sale without its receipt");
    assert!(f.printer.jobs().is_empty());

    f.node
        .write(|tx| tx.execute_batch("DROP TRIGGER refuse_jobs"))
        .await
        .unwrap();
    let (status, _, body) = sell().await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(terminal_support::queued(&f.node, "receipt").await, 1);
}

#[tokio::test]
async fn selling_more_than_the_store_can_sell_is_refused_naming_what_it_can() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/sales",
            Some(json!({"lines": [{"sku": "SKU-1", "qty": 8}], "tender": "card"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "insufficient_stock");
    assert_eq!(body["sku"], "SKU-1");
    assert_eq!(body["available"], 7, "the store's own rights, not HQ's");
    assert!(f.printer.jobs().is_empty());
    let bad = [
        (json!({"lines": [], "tender": "cash"}), "invalid_lines"),
        (
            json!({"lines": [{"sku": "SKU-1", "qty": 0}], "tender": "cash"}),
            "invalid_qty",
        ),
        (
            json!({"lines": [{"sku": "SKU-1", "qty": 1}], "tender": "bitcoin"}),
            "invalid_tender",
        ),
        (
            json!({"lines": [{"sku": "NOPE", "qty": 1}], "tender": "cash"}),
            "unknown_sku",
        ),
        (
            json!({"lines": [{"sku": "SKU 1", "qty": 1}], "tender": "cash"}),
            "invalid_sku",
        ),
    ];
    for (body, code) in bad {
        let (status, _, answer) = f
            .call(
                Method::POST,
                "/api/v1/sales",
                Some(body.clone()),
                Some(&cookie),
            )
            .await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{body}"
        );
    }
    let (_, _, stock) = f
        .call(Method::GET, "/api/v1/stock/SKU-1", None, Some(&cookie))
        .await;
    assert_eq!(stock["store_rights"], 7, "nothing changed");
}

#[tokio::test]
async fn picking_by_scan_starts_the_order_and_refuses_wrong_or_extra_items() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let (status, _, list) = f
        .call(
            Method::GET,
            "/api/v1/pickups?status=placed",
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], ORDER);
    assert_eq!(list[0]["customer"]["name"], "Lucía Pérez Gómez");
    assert_eq!(list[0]["lines"].as_array().unwrap().len(), 2);
    let uri = format!("/api/v1/pickups/{ORDER}/pick");
    let pick = |scan: String| {
        f.call(
            Method::POST,
            &uri,
            Some(json!({ "scan": scan })),
            Some(&cookie),
        )
    };
    let (status, _, order) = pick(ean("841000000001")).await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "picking");
    let (status, _, body) = pick(ean("841000000003")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_in_order"))
    );
    let (status, _, body) = pick("4006381333931".into()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_in_order")),
        "unknown barcodes are not in the order"
    );
    let (status, _, _) = pick("SKU-1".into()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = pick(ean("841000000001")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("already_picked")),
        "{body}"
    );
    let (_, _, list) = f
        .call(
            Method::GET,
            "/api/v1/pickups?status=picking",
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(list[0]["picked"], 2);
    let (status, _, body) = f
        .call(
            Method::GET,
            "/api/v1/pickups?status=bogus",
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_status"))
    );
}

async fn pick_all(f: &Fixture, cookie: &str) {
    for scan in ["SKU-1", "SKU-1", "SKU-2"] {
        let (status, _, body) = f
            .call(
                Method::POST,
                &format!("/api/v1/pickups/{ORDER}/pick"),
                Some(json!({ "scan": scan })),
                Some(cookie),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn ready_needs_every_line_picked_and_prints_a_bag_label_with_the_qr() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let uri = format!("/api/v1/pickups/{ORDER}/ready");
    let ready = || f.call(Method::POST, &uri, None, Some(&cookie));
    let (status, _, body) = ready().await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("not_picked"))
    );
    pick_all(&f, &cookie).await;
    let (status, _, order) = ready().await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "ready");
    let jobs = f.printer.jobs();
    let Some(PrintJob::BagLabel {
        qr, pickup_code, ..
    }) = jobs.first()
    else {
        panic!("{jobs:?}")
    };
    assert_eq!(pickup_code, CODE);
    assert!(qr.starts_with(&format!("PU1:{ORDER}:{CODE}:")), "{qr}");
}

#[tokio::test]
async fn handover_needs_the_right_code_or_signed_qr_and_prints_a_receipt() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let uri = format!("/api/v1/pickups/{ORDER}/handover");
    let handover = |body: Value| f.call(Method::POST, &uri, Some(body), Some(&cookie));
    let (status, _, body) = handover(json!({"code": CODE})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("not_ready")),
        "{body}"
    );
    pick_all(&f, &cookie).await;
    let (status, _, _) = f
        .call(
            Method::POST,
            &format!("/api/v1/pickups/{ORDER}/ready"),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = handover(json!({"code": "ZZZ999"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("wrong_code"))
    );
    let forged = format!("PU1:{ORDER}:{CODE}:{}", "0".repeat(32));
    let (status, _, body) = handover(json!({ "qr": forged })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("wrong_code"))
    );
    let (status, _, body) = handover(json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_code"))
    );
    let Some(PrintJob::BagLabel { qr, .. }) = f.printer.jobs().first().cloned() else {
        panic!()
    };
    let (status, _, order) = handover(json!({ "qr": qr })).await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "handed_over");
    let jobs = f.printer.jobs();
    assert!(
        matches!(jobs.last(), Some(PrintJob::Receipt { reference, tender, .. }) if reference == ORDER && tender == "pickup"),
        "{jobs:?}"
    );
    let (status, _, body) = handover(json!({"code": CODE.to_lowercase()})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_handed_over"))
    );
    let _ = KEY;
}

#[tokio::test]
async fn a_cancelled_order_is_refused_at_the_counter_with_a_clear_reason() {
    let mut f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let (cancel, _) =
        f.hq.prepare(
            3_000,
            storenode::domain::Payload::OrderCancel {
                order_id: storenode::domain::OrderId::parse(ORDER).unwrap(),
                store: terminal_support::store(),
                kind: storenode::domain::op::CancelKind::Cancelled,
            },
        )
        .unwrap();
    f.node.ingest(vec![cancel]).await.unwrap();
    let (status, _, body) = f
        .call(
            Method::POST,
            &format!("/api/v1/pickups/{ORDER}/handover"),
            Some(json!({"code": CODE})),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("order_cancelled")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("cancelled"));
    let (status, _, body) = f
        .call(
            Method::POST,
            &format!("/api/v1/pickups/{ORDER}/pick"),
            Some(json!({"scan": "SKU-1"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("order_cancelled"))
    );
}

#[tokio::test]
async fn customer_lookup_follows_the_customer_and_the_cart_shows_what_is_here() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    for q in [
        "600111222",
        "lucia.perez@example.com",
        "2100000000017",
        "lucía",
    ] {
        let (status, _, found) = f
            .call(
                Method::GET,
                &format!("/api/v1/customers?q={}", urlencode(q)),
                None,
                Some(&cookie),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{q}: {found}");
        assert_eq!(found.as_array().map(Vec::len), Some(1), "{q}: {found}");
        assert_eq!(found[0]["id"], CUSTOMER);
    }
    let follows = f.state_follows();
    assert_eq!(
        follows, 1,
        "one CustomerFollow, issued on the first lookup only"
    );
    let (status, _, body) = f
        .call(Method::GET, "/api/v1/customers?q=ab", None, Some(&cookie))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_query"))
    );
    let (status, _, cart) = f
        .call(
            Method::GET,
            &format!("/api/v1/customers/{CUSTOMER}/cart"),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    let line = |sku: &str| {
        cart["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["sku"] == sku)
            .cloned()
            .unwrap()
    };
    assert_eq!(line("SKU-1")["available_here"], 7);
    assert_eq!(line("SKU-3")["available_here"], 1);
    assert_eq!(line("SKU-4")["available_here"], 0);
    let (status, _, sale) = f
        .call(
            Method::POST,
            "/api/v1/sales",
            Some(json!({"lines": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-3", "qty": 1}], "customer": CUSTOMER, "tender": "card"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    let (_, _, cart) = f
        .call(
            Method::GET,
            &format!("/api/v1/customers/{CUSTOMER}/cart"),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(
        cart["lines"].as_array().unwrap().len(),
        1,
        "sold lines leave the cart: {cart}"
    );
    let (status, _, body) = f
        .call(
            Method::GET,
            "/api/v1/customers/C-404/cart",
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_customer"))
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

trait Follows {
    fn state_follows(&self) -> usize;
}

impl Follows for Fixture {
    fn state_follows(&self) -> usize {
        self.node.read(|r| r.state().follows.len())
    }
}

#[tokio::test]
async fn bad_bodies_get_invalid_json_and_payload_too_large() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let req = Request::post("/api/v1/sales")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"lines\": [}"))
        .unwrap();
    let (status, _, body) = f.send(req).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    assert!(body["message"].is_string());
    let big = format!("{{\"scan\": \"{}\"}}", "1".repeat(1 << 20));
    let req = Request::post(format!("/api/v1/pickups/{ORDER}/pick"))
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(big))
        .unwrap();
    let (status, _, body) = f.send(req).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/session",
            Some(json!(["staff", "pin"])),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _, body) = f
        .call(Method::GET, "/api/v1/nope", None, Some(&cookie))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn scans_and_order_changes_reach_the_event_stream_at_once() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let req = Request::get("/api/v1/events")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let res = f.app().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = res.into_body();
    let mut seen = String::new();
    let mut next_until = async |needle: &str, seen: &mut String| {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !seen.contains(needle) {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .expect("event in time");
            let frame = frame.unwrap().unwrap();
            if let Ok(data) = frame.into_data() {
                seen.push_str(&String::from_utf8_lossy(&data));
            }
        }
    };
    next_until("event: link", &mut seen).await;
    f.state
        .scan_sender()
        .send("8410000000017\r\n", "tcp")
        .unwrap();
    next_until("8410000000017", &mut seen).await;
    assert!(seen.contains("event: scan"), "{seen}");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    f.state.scan_sender().forward(rx);
    tx.send(storenode::devices::scanner::ScanEvent::new(
        "serial:/dev/ttyACM0",
        "8410000000018".into(),
    ))
    .await
    .unwrap();
    next_until("serial:/dev/ttyACM0", &mut seen).await;
    assert!(
        seen.contains("check digit"),
        "a bad reading arrives with its reason: {seen}"
    );
    let (status, _, _) = f
        .call(
            Method::POST,
            &format!("/api/v1/pickups/{ORDER}/pick"),
            Some(json!({"scan": "SKU-1"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    next_until("\"status\":\"picking\"", &mut seen).await;
    assert!(seen.contains("event: order"), "{seen}");
    f.link.set(LinkStatus {
        online: false,
        since_ms: Some(5),
        outbox: 3,
        last_sync_ms: None,
    });
    next_until("\"outbox\":3", &mut seen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_sent_in_parallel_all_count_towards_the_lockout() {
    let f = Fixture::new().await;
    let body = json!({"staff": "1001", "pin": "0000"});
    let tries = (0..6).map(|_| f.call(Method::POST, "/api/v1/session", Some(body.clone()), None));
    let answers = futures_util::future::join_all(tries).await;
    assert!(answers
        .iter()
        .all(|(s, _, _)| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS));
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/session",
            Some(json!({"staff": "1001", "pin": "1234"})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("locked_out"))
    );
}

/// A login request from `ip` (as `serve` records the client's address).
fn login_from(ip: &str, staff: &str, pin: &str) -> axum::http::Request<axum::body::Body> {
    let mut req = axum::http::Request::post("/api/v1/session")
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(
            json!({"staff": staff, "pin": pin}).to_string(),
        ))
        .unwrap();
    let addr: std::net::SocketAddr = format!("{ip}:50000").parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    req
}

#[tokio::test]
async fn logins_from_one_address_beyond_the_limit_get_429_with_retry_after() {
    let f = Fixture::with_config(|c| {
        c.login_rate = storenode::http_security::RateLimit {
            per_minute: 2,
            burst: 3,
        };
    })
    .await;
    // Spraying PINs across staff numbers from one device: the per-staff lockout never trips.
    for staff in ["11", "12", "13"] {
        let (status, _, body) = f.send(login_from("10.1.1.1", staff, "0000")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (status, headers, body) = f.send(login_from("10.1.1.1", "1001", "1234")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "rate_limited");
    assert!(body["message"].is_string());
    // One attempt comes back every 30 s.
    let wait = body["retry_after_s"].as_u64().unwrap();
    assert!((1..=30).contains(&wait), "{body}");
    assert_eq!(headers[header::RETRY_AFTER], wait.to_string().as_str());
    // Another terminal logs in as usual, and so does the right PIN once the wait is over
    // (not waited for here: the limiter's clock is covered by its unit tests).
    let (status, _, body) = f.send(login_from("10.1.1.2", "1001", "1234")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn pages_and_api_answers_carry_the_security_headers() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let page = f
        .send(
            axum::http::Request::get("/")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .1;
    let (_, api, _) = f
        .call(Method::GET, "/api/v1/status", None, Some(&cookie))
        .await;
    let (_, refused, _) = f.call(Method::GET, "/api/v1/status", None, None).await;
    for h in [&page, &api, &refused] {
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
    assert_eq!(
        page["content-security-policy"],
        storenode::http_security::TERMINAL_CSP
    );
    for h in [&api, &refused] {
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(
            h["content-security-policy"],
            storenode::http_security::API_CSP
        );
    }
}

#[tokio::test]
async fn after_a_qr_key_rotation_codes_issued_before_still_open_and_retired_keys_do_not() {
    use storenode::domain::pickup::{qr_payload, verify_qr, PickupCode};
    // Rotation: the new key signs, the previous one (KEY, which signed this order's QR when
    // HQ placed it) still verifies; an older, retired key is gone from the ring.
    const NEW: &[u8] = b"chain-key-after-rotation";
    const RETIRED: &[u8] = b"chain-key-retired-long-ago";
    let f = Fixture::with_config(|c| c.pickup_keys = vec![NEW.to_vec(), KEY.to_vec()]).await;
    let cookie = f.login("1001", "1234").await;
    pick_all(&f, &cookie).await;
    let (status, _, _) = f
        .call(
            Method::POST,
            &format!("/api/v1/pickups/{ORDER}/ready"),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The bag label printed now carries a QR signed with the new key.
    let Some(PrintJob::BagLabel { qr: label, .. }) = f.printer.jobs().first().cloned() else {
        panic!("no bag label")
    };
    assert!(verify_qr(&label, &[NEW]).is_ok(), "{label}");
    assert!(verify_qr(&label, &[KEY]).is_err(), "{label}");
    let code = PickupCode::parse(CODE).unwrap();
    let uri = format!("/api/v1/pickups/{ORDER}/handover");
    let handover =
        |qr: String| f.call(Method::POST, &uri, Some(json!({ "qr": qr })), Some(&cookie));
    let (status, _, body) = handover(qr_payload(ORDER, &code, RETIRED)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("wrong_code")),
        "a retired key's QR is refused: {body}"
    );
    let (status, _, order) = handover(qr_payload(ORDER, &code, KEY)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "issued before the rotation: {order}"
    );
    assert_eq!(order["status"], "handed_over");
}
