//! The store's conflict inbox over HTTP (DESIGN.md section 17): managers only, items derived
//! from the replica, resolutions recorded as ops naming the manager; a shrinkage resolution
//! that cancels an order at risk cancels it in the same commit.

mod terminal_support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use terminal_support::{Fixture, ORDER};

#[tokio::test]
async fn a_count_short_of_rights_shows_in_the_managers_inbox_and_resolving_cancels_the_order() {
    let f = Fixture::new().await;
    let manager = f.login("9001", "4321").await;
    let associate = f.login("1001", "1234").await;
    // On hand 10 (8 available + 2 reserved), 3 of the available held by HQ: counting 0
    // leaves 3 units of shrinkage the store's rights cannot cover, the pickup order at risk.
    let (status, _, body) = f
        .call(
            Method::POST,
            "/api/v1/stock/SKU-1/count",
            Some(json!({"counted": 0})),
            Some(&manager),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["shrinkage"], 3);

    let (status, _, body) = f
        .call(Method::GET, "/api/v1/conflicts", None, Some(&associate))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );

    let (status, _, items) = f
        .call(Method::GET, "/api/v1/conflicts", None, Some(&manager))
        .await;
    assert_eq!(status, StatusCode::OK, "{items}");
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(item["kind"], "shrinkage");
    assert_eq!(item["resolved"], false);
    assert_eq!(item["facts"]["orders_at_risk"], json!([ORDER]));
    let cancel = format!("cancel_order:{ORDER}");
    assert_eq!(item["actions"], json!([cancel, "accept_loss"]));
    assert!(item["summary"]
        .as_str()
        .unwrap()
        .contains("3 unit(s) missing"));
    assert!(item["summary_es"].as_str().unwrap().contains("de menos"));
    let id = item["id"].as_str().unwrap().to_string();
    let (_, _, status_body) = f
        .call(Method::GET, "/api/v1/status", None, Some(&manager))
        .await;
    assert_eq!(status_body["open_conflicts"], 1);

    let resolve = format!("/api/v1/conflicts/{id}/resolve");
    for (body, code, want) in [
        (
            json!({"action": "shrug"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"note": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_action",
        ),
        (
            json!({"action": "accept_loss", "note": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_note",
        ),
    ] {
        let (status, _, answer) = f
            .call(Method::POST, &resolve, Some(body), Some(&manager))
            .await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (code, Some(want)),
            "{answer}"
        );
    }
    let (status, _, answer) = f
        .call(
            Method::POST,
            "/api/v1/conflicts/count:nobody:1/resolve",
            Some(json!({"action": "accept_loss"})),
            Some(&manager),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_conflict"))
    );
    assert!(
        f.node.read(|r| r.state().resolutions.is_empty()),
        "bad input changed nothing"
    );

    let (status, _, answer) = f
        .call(
            Method::POST,
            &resolve,
            Some(json!({"action": cancel, "note": "no stock left; customer called"})),
            Some(&manager),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["resolved"], true);
    assert_eq!(answer["resolution"]["by"], "9001");
    assert_eq!(answer["resolution"]["action"], cancel);
    assert_eq!(
        answer["resolution"]["note"],
        "no stock left; customer called"
    );
    let (_, _, order) = f
        .call(
            Method::GET,
            &format!("/api/v1/pickups/{ORDER}"),
            None,
            Some(&manager),
        )
        .await;
    assert_eq!(order["status"], "cancelled", "{order}");
    let (_, _, status_body) = f
        .call(Method::GET, "/api/v1/status", None, Some(&manager))
        .await;
    assert_eq!(status_body["open_conflicts"], 0);
}
