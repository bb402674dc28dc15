//! The store's receiving and transfer calls (DESIGN.md section 19) on the real router over a
//! real SQLite file: deliveries by scan, damaged units, receiving twice, transfers by a
//! manager with a printed note, and every bad input refused with nothing changed.

mod terminal_support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use storenode::domain::op::OrderLine;
use storenode::domain::{Hlc, MotionId, Op, Payload, Sku, StoreId};
use storenode::terminal::print::PrintJob;
use terminal_support::*;

fn sevilla() -> StoreId {
    StoreId::parse("sevilla-nervion").unwrap()
}

async fn available(f: &Fixture, cookie: &str, sku: &str) -> i64 {
    let (_, _, body) = f
        .call(
            Method::GET,
            &format!("/api/v1/stock/{sku}"),
            None,
            Some(cookie),
        )
        .await;
    body["available"].as_i64().unwrap()
}

/// HQ announces a shipment of 4 x SKU-1 and 2 x SKU-2 to madrid-centro.
async fn announce(f: &mut Fixture, id: &str) {
    let (op, _) =
        f.hq.prepare(
            5_000,
            Payload::ShipmentNotice {
                shipment: MotionId::parse(id).unwrap(),
                store: store(),
                reference: "ASN-2026-1".into(),
                lines: vec![
                    OrderLine {
                        sku: Sku::parse("SKU-1").unwrap(),
                        qty: 4,
                    },
                    OrderLine {
                        sku: Sku::parse("SKU-2").unwrap(),
                        qty: 2,
                    },
                ],
            },
        )
        .unwrap();
    f.node.ingest(vec![op]).await.unwrap();
}

#[tokio::test]
async fn a_delivery_is_received_by_scan_once_and_bad_receipts_change_nothing() {
    let mut f = Fixture::new().await;
    announce(&mut f, "S-1").await;
    let cookie = f.login("1001", "1234").await;
    let (status, _, list) = f
        .call(
            Method::GET,
            "/api/v1/shipments?status=expected",
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["id"], "S-1");
    assert_eq!(list[0]["status"], "expected");
    assert_eq!(list[0]["reference"], "ASN-2026-1");
    let before = available(&f, &cookie, "SKU-1").await;

    let receive = |body: Value| {
        let f = &f;
        let cookie = cookie.clone();
        async move {
            f.call(
                Method::POST,
                "/api/v1/shipments/S-1/receive",
                Some(body),
                Some(&cookie),
            )
            .await
        }
    };
    let refusals = [
        (
            json!({"lines": [{"sku": "SKU-1", "received": 5}]}),
            422,
            "over_delivery",
        ),
        (
            json!({"lines": [{"sku": "SKU-3", "received": 1}]}),
            422,
            "over_delivery",
        ),
        (
            json!({"lines": [{"sku": "SKU-1", "received": -1}]}),
            422,
            "invalid_qty",
        ),
        (
            json!({"lines": [{"sku": "SKU-1", "received": 1, "damaged": 2}]}),
            422,
            "invalid_qty",
        ),
        (
            json!({"lines": [{"sku": "NOPE", "received": 1}]}),
            422,
            "unknown_sku",
        ),
    ];
    for (body, code, error) in refusals {
        let (status, _, answer) = receive(body.clone()).await;
        assert_eq!(
            (status.as_u16(), answer["error"].as_str()),
            (code, Some(error)),
            "{body}"
        );
    }
    let (status, _, answer) = f
        .call(
            Method::POST,
            "/api/v1/shipments/S-404/receive",
            Some(json!({"lines": []})),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_shipment"))
    );
    assert_eq!(
        available(&f, &cookie, "SKU-1").await,
        before,
        "nothing changed"
    );

    // Scanned by barcode: 4 of SKU-1 (one damaged), SKU-2 never arrived.
    let barcode = ean("841000000001");
    let (status, _, shipment) =
        receive(json!({"lines": [{"sku": barcode, "received": 4, "damaged": 1}]})).await;
    assert_eq!(status, StatusCode::OK, "{shipment}");
    assert_eq!(shipment["status"], "received");
    assert_eq!(shipment["discrepancies"], 1);
    let lines = shipment["lines"].as_array().unwrap();
    assert_eq!(
        (lines[0]["received"].as_u64(), lines[0]["damaged"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(
        (lines[1]["received"].as_u64(), lines[1]["short"].as_i64()),
        (Some(0), Some(2))
    );
    assert_eq!(available(&f, &cookie, "SKU-1").await, before + 3);

    let (status, _, again) = receive(json!({"lines": [{"sku": "SKU-1", "received": 4}]})).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_received"))
    );
    assert_eq!(available(&f, &cookie, "SKU-1").await, before + 3);
}

#[tokio::test]
async fn a_manager_sends_a_transfer_with_a_note_and_receives_one_by_its_qr() {
    let f = Fixture::with_config(|c| c.transfer_to = vec![sevilla()]).await;
    let associate = f.login("1001", "1234").await;
    let manager = f.login("9001", "4321").await;
    let send = |body: Value, cookie: String| {
        let f = &f;
        async move {
            f.call(Method::POST, "/api/v1/transfers", Some(body), Some(&cookie))
                .await
        }
    };
    let good = json!({"to": "sevilla-nervion", "lines": [{"sku": "SKU-1", "qty": 2}]});
    let (status, _, _) = send(good.clone(), associate.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let before = available(&f, &manager, "SKU-1").await;
    let refusals = [
        (
            json!({"to": "bilbao", "lines": [{"sku": "SKU-1", "qty": 1}]}),
            404,
            "unknown_store",
        ),
        (
            json!({"to": "madrid-centro", "lines": [{"sku": "SKU-1", "qty": 1}]}),
            422,
            "same_store",
        ),
        (
            json!({"to": "sevilla-nervion", "lines": [{"sku": "SKU-1", "qty": 0}]}),
            422,
            "invalid_qty",
        ),
        (
            json!({"to": "sevilla-nervion", "lines": [{"sku": "SKU-1", "qty": -3}]}),
            422,
            "invalid_qty",
        ),
        (
            json!({"to": "sevilla-nervion", "lines": [{"sku": "SKU-1", "qty": 99}]}),
            409,
            "insufficient_stock",
        ),
        (
            json!({"to": "sevilla-nervion", "lines": [{"sku": "NOPE", "qty": 1}]}),
            422,
            "unknown_sku",
        ),
    ];
    for (body, code, error) in refusals {
        let (status, _, answer) = send(body.clone(), manager.clone()).await;
        assert_eq!(
            (status.as_u16(), answer["error"].as_str()),
            (code, Some(error)),
            "{body}"
        );
    }
    assert_eq!(
        available(&f, &manager, "SKU-1").await,
        before,
        "nothing changed"
    );

    let (status, _, transfer) = send(good, manager.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{transfer}");
    assert_eq!(transfer["status"], "in_transit");
    assert_eq!(transfer["from"], "madrid-centro");
    assert_eq!(transfer["to"], "sevilla-nervion");
    assert_eq!(available(&f, &manager, "SKU-1").await, before - 2);
    let id = transfer["id"].as_str().unwrap().to_string();
    let qr = format!("TR1:{id}");
    assert!(f.printer.jobs().iter().any(|j| matches!(
        j,
        PrintJob::TransferNote { qr: q, lines, .. } if *q == qr && lines == &vec![("SKU-1".to_string(), 2)]
    )));
    // The sender cannot receive its own transfer.
    let (status, _, answer) = f
        .call(
            Method::POST,
            &format!("/api/v1/transfers/{id}/receive"),
            Some(json!({"lines": [{"sku": "SKU-1", "received": 2}]})),
            Some(&manager),
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (422, Some("wrong_store"))
    );

    // A transfer from sevilla arrives over sync; the associate scans the note's QR.
    let incoming = Op {
        actor: sevilla().actor(),
        seq: 1,
        hlc: Hlc::new(9_000, 0),
        payload: Payload::TransferDispatch {
            transfer: MotionId::parse("T-SEV1").unwrap(),
            store: sevilla(),
            to: store(),
            lines: vec![OrderLine {
                sku: Sku::parse("SKU-2").unwrap(),
                qty: 3,
            }],
        },
    };
    f.node.ingest(vec![incoming]).await.unwrap();
    let (_, _, both) = f
        .call(
            Method::GET,
            "/api/v1/transfers?status=in_transit",
            None,
            Some(&associate),
        )
        .await;
    assert_eq!(both.as_array().unwrap().len(), 2, "both directions: {both}");
    let (status, _, scanned) = f
        .call(
            Method::GET,
            "/api/v1/transfers/TR1:T-SEV1",
            None,
            Some(&associate),
        )
        .await;
    assert_eq!(
        (status, scanned["from"].as_str()),
        (StatusCode::OK, Some("sevilla-nervion"))
    );
    let before2 = available(&f, &associate, "SKU-2").await;
    let (status, _, received) = f
        .call(
            Method::POST,
            "/api/v1/transfers/T-SEV1/receive",
            Some(json!({"lines": [{"sku": "SKU-2", "received": 2}]})),
            Some(&associate),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{received}");
    assert_eq!(received["status"], "received");
    assert_eq!(received["lines"][0]["short"], 1, "the short is recorded");
    assert_eq!(available(&f, &associate, "SKU-2").await, before2 + 2);
}

/// A ship-to-store order for this store (HQ shipped it from sevilla): the queue says it awaits
/// its transfer, picking is refused until the transfer is received, the received units are
/// the order's (not for sale here), and then it is picked and made ready.
#[tokio::test]
async fn a_ship_to_store_order_is_picked_only_after_its_transfer_is_received() {
    let mut f = Fixture::with_config(|c| c.transfer_to = vec![sevilla()]).await;
    let ship = Op {
        actor: storenode::domain::ActorId::hq(),
        seq: f.hq.next_seq(),
        hlc: Hlc::new(9_000, 1),
        payload: Payload::OrderShipToStore {
            order_id: storenode::domain::OrderId::parse("O-S2S").unwrap(),
            store: store(),
            from: sevilla(),
            transfer: MotionId::parse("T-S2S").unwrap(),
            customer: storenode::domain::CustomerId::parse(CUSTOMER).unwrap(),
            lines: vec![OrderLine {
                sku: Sku::parse("SKU-2").unwrap(),
                qty: 2,
            }],
            pickup_code: "QRS456".into(),
            placed_at_ms: 9_000,
            ready_by_ms: 9_000 + 2 * 86_400_000,
        },
    };
    f.hq.apply(&ship).unwrap();
    f.node.ingest(vec![ship]).await.unwrap();
    let associate = f.login("1001", "1234").await;
    let manager = f.login("9001", "4321").await;
    let call = |method: Method, uri: &'static str, body: Option<Value>, cookie: &str| {
        let (f, cookie) = (&f, cookie.to_string());
        async move { f.call(method, uri, body, Some(&cookie)).await }
    };

    let (_, _, queue) = call(
        Method::GET,
        "/api/v1/pickups?status=placed",
        None,
        &associate,
    )
    .await;
    let row = queue
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "O-S2S")
        .cloned()
        .unwrap();
    assert_eq!(row["awaiting_transfer"], true);
    assert_eq!(row["transfer"], "T-S2S");
    let scan = json!({"scan": ean("841000000002")});
    let (status, _, refused) = call(
        Method::POST,
        "/api/v1/pickups/O-S2S/pick",
        Some(scan.clone()),
        &associate,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"], "not_arrived");

    let before = available(&f, &associate, "SKU-2").await;
    let (status, _, received) = call(
        Method::POST,
        "/api/v1/transfers/T-S2S/receive",
        Some(json!({"lines": [{"sku": "SKU-2", "received": 2}]})),
        &associate,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{received}");
    assert_eq!(received["order"], "O-S2S");
    assert_eq!(received["lines"][0]["name"], "Leche entera 1 L");
    assert_eq!(
        available(&f, &associate, "SKU-2").await,
        before,
        "the order's units"
    );
    for _ in 0..2 {
        let (status, _, body) = call(
            Method::POST,
            "/api/v1/pickups/O-S2S/pick",
            Some(scan.clone()),
            &associate,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _, ready) = call(
        Method::POST,
        "/api/v1/pickups/O-S2S/ready",
        None,
        &associate,
    )
    .await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );

    // The sending screen's calls: destinations from transfer_to; a note only for a transfer
    // this store sends, and only by a manager.
    let (_, _, dests) = call(
        Method::GET,
        "/api/v1/transfers/destinations",
        None,
        &associate,
    )
    .await;
    assert_eq!(
        dests,
        json!({"from": "madrid-centro", "to": ["sevilla-nervion"]})
    );
    let (status, _, _) = call(
        Method::POST,
        "/api/v1/transfers/T-S2S/note",
        None,
        &associate,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) =
        call(Method::POST, "/api/v1/transfers/T-S2S/note", None, &manager).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_transfer"))
    );
    let jobs = f.printer.jobs();
    assert!(!jobs
        .iter()
        .any(|j| matches!(j, PrintJob::TransferNote { .. })));
}

/// A ship-to-store order this store sends (HQ took it for sevilla from its rights here): the
/// units stay on this shelf, set aside, until a manager dispatches them from the sending
/// screen; a count meanwhile re-adds nothing; the dispatch checks what was scanned, prints the
/// note, and happens once.
#[tokio::test]
async fn a_ship_to_store_transfer_is_dispatched_once_by_a_manager_with_its_note() {
    let mut f = Fixture::with_config(|c| c.transfer_to = vec![sevilla()]).await;
    let associate = f.login("1001", "1234").await;
    let manager = f.login("9001", "4321").await;
    let (_, _, stock) = f
        .call(Method::GET, "/api/v1/stock/SKU-2", None, Some(&manager))
        .await;
    let shelf = stock["on_hand"].as_i64().unwrap();
    let ship = Op {
        actor: storenode::domain::ActorId::hq(),
        seq: f.hq.next_seq(),
        hlc: Hlc::new(9_000, 1),
        payload: Payload::OrderShipToStore {
            order_id: storenode::domain::OrderId::parse("O-OUT").unwrap(),
            store: sevilla(),
            from: store(),
            transfer: MotionId::parse("T-OUT").unwrap(),
            customer: storenode::domain::CustomerId::parse(CUSTOMER).unwrap(),
            lines: vec![OrderLine {
                sku: Sku::parse("SKU-2").unwrap(),
                qty: 2,
            }],
            pickup_code: "QRS456".into(),
            placed_at_ms: 9_000,
            ready_by_ms: 9_000 + 2 * 86_400_000,
        },
    };
    f.hq.apply(&ship).unwrap();
    f.node.ingest(vec![ship]).await.unwrap();
    let call = |method: Method, uri: &'static str, body: Option<Value>, cookie: &str| {
        let (f, cookie) = (&f, cookie.to_string());
        async move { f.call(method, uri, body, Some(&cookie)).await }
    };

    let (_, _, waiting) = call(
        Method::GET,
        "/api/v1/transfers?status=awaiting_dispatch",
        None,
        &manager,
    )
    .await;
    assert_eq!(waiting[0]["id"], "T-OUT");
    assert_eq!(waiting[0]["order"], "O-OUT");
    assert_eq!(waiting[0]["lines"][0]["name"], "Leche entera 1 L");
    let (_, _, stock) = call(Method::GET, "/api/v1/stock/SKU-2", None, &manager).await;
    assert_eq!(stock["on_hand"], shelf, "the order's units are still here");
    let sellable = stock["available"].as_i64().unwrap();
    let (status, _, counted) = call(
        Method::POST,
        "/api/v1/stock/SKU-2/count",
        Some(json!({ "counted": shelf })),
        &manager,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{counted}");
    assert_eq!(counted["available"], sellable, "the count re-added nothing");

    let (status, _, _) = call(
        Method::POST,
        "/api/v1/transfers/T-OUT/dispatch",
        Some(json!({})),
        &associate,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, wrong) = call(
        Method::POST,
        "/api/v1/transfers/T-OUT/dispatch",
        Some(json!({"lines": [{"sku": "SKU-2", "qty": 1}]})),
        &manager,
    )
    .await;
    assert_eq!(
        (status, wrong["error"].as_str(), wrong["expected"].as_i64()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("lines_mismatch"),
            Some(2)
        )
    );
    let (status, _, sent) = call(
        Method::POST,
        "/api/v1/transfers/T-OUT/dispatch",
        Some(json!({"lines": [{"sku": "SKU-2", "qty": 2}]})),
        &manager,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["status"], "in_transit");
    let (_, _, stock) = call(Method::GET, "/api/v1/stock/SKU-2", None, &manager).await;
    assert_eq!(stock["on_hand"], shelf - 2, "the units left");
    assert!(f
        .printer
        .jobs()
        .iter()
        .any(|j| matches!(j, PrintJob::TransferNote { transfer, .. } if transfer == "T-OUT")));
    let (status, _, twice) = call(
        Method::POST,
        "/api/v1/transfers/T-OUT/dispatch",
        Some(json!({})),
        &manager,
    )
    .await;
    assert_eq!(
        (status, twice["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_dispatched"))
    );
}
