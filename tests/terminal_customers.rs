//! Customers at the counter (DESIGN.md sections 14 and 17): the card shows consent per channel
//! and the abandoned badge; consent given at the counter is recorded with the store as its
//! source; a new customer is created here without HQ; bad input is refused naming the field.

mod terminal_support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use storenode::domain::op::Channel;
use storenode::domain::{CustomerId, Payload};
use terminal_support::{store, Fixture, CUSTOMER};

#[tokio::test]
async fn the_card_shows_consent_and_the_abandoned_badge_and_records_consent_from_the_counter() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let cart = format!("/api/v1/customers/{CUSTOMER}/cart");
    let (status, _, card) = f.call(Method::GET, &cart, None, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{card}");
    assert_eq!(card["consent"], json!({}));
    // The fixture's cart was last changed at t = 1 s: long abandoned.
    assert_eq!(card["abandoned_since"], 1_000);

    let (status, _, customer) = f
        .call(
            Method::PUT,
            &format!("/api/v1/customers/{CUSTOMER}/consent/sms"),
            Some(json!({"granted": true})),
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{customer}");
    assert_eq!(customer["id"], CUSTOMER);
    assert_eq!(customer["consent"]["sms"]["granted"], true);
    assert_eq!(customer["consent"]["sms"]["source"], "madrid-centro");
    let (_, _, card) = f.call(Method::GET, &cart, None, Some(&cookie)).await;
    assert_eq!(card["consent"]["sms"]["source"], "madrid-centro");
    // Withdrawn at the counter: the latest decision wins.
    f.call(
        Method::PUT,
        &format!("/api/v1/customers/{CUSTOMER}/consent/sms"),
        Some(json!({"granted": false})),
        Some(&cookie),
    )
    .await;
    let id = CustomerId::parse(CUSTOMER).unwrap();
    let sms = f
        .node
        .read(|r| r.state().customers[&id].consent(Channel::Sms).cloned());
    assert_eq!(
        sms.map(|k| (k.granted, k.source)),
        Some((false, "madrid-centro".to_string()))
    );
}

#[tokio::test]
async fn a_new_customer_is_created_at_the_counter_without_hq() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let (status, _, created) = f
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(json!({"name": "Marta Sanz", "phone": "+34 611 222 333", "email": "marta@example.org"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = CustomerId::parse(created["id"].as_str().unwrap()).unwrap();
    assert!(id.as_str().starts_with("C-"));
    assert_eq!(created["name"], "Marta Sanz");
    assert_eq!(created["consent"], json!({}));
    // Committed here, followed by this store (so HQ keeps them supplied once it hears of it).
    assert!(f
        .node
        .read(|r| r.state().follows.contains(&(store(), id.clone()))));
    let (status, _, found) = f
        .call(
            Method::GET,
            "/api/v1/customers?q=611222333",
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found[0]["id"], id.as_str());

    let (status, _, again) = f
        .call(
            Method::POST,
            "/api/v1/customers",
            Some(json!({"id": id.as_str(), "name": "Otra"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        (status, again["error"].clone()),
        (StatusCode::CONFLICT, json!("customer_exists"))
    );
}

#[tokio::test]
async fn bad_customer_input_at_the_counter_names_the_field_and_changes_nothing() {
    let f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let digest = f.node.read(|r| r.digest());
    for (body, code) in [
        (json!({"name": "Eva", "phone": "llámame"}), "invalid_phone"),
        (json!({"name": "Eva", "email": "eva@"}), "invalid_email"),
        (json!({"name": " "}), "invalid_name"),
    ] {
        let (status, _, answer) = f
            .call(Method::POST, "/api/v1/customers", Some(body), Some(&cookie))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"], code);
        assert!(answer["field"].is_string());
    }
    let consent = |channel: &str, who: &str| format!("/api/v1/customers/{who}/consent/{channel}");
    let (status, _, answer) = f
        .call(
            Method::PUT,
            &consent("fax", CUSTOMER),
            Some(json!({"granted": true})),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_channel"))
    );
    let (status, _, answer) = f
        .call(
            Method::PUT,
            &consent("sms", CUSTOMER),
            Some(json!({"granted": "yes"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (status, _, answer) = f
        .call(
            Method::PUT,
            &consent("sms", "C-NOBODY"),
            Some(json!({"granted": true})),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (StatusCode::NOT_FOUND, json!("unknown_customer"))
    );
    assert_eq!(f.node.read(|r| r.digest()), digest);
}

#[tokio::test]
async fn an_erased_customer_cannot_be_given_consent_at_the_counter() {
    let mut f = Fixture::new().await;
    let cookie = f.login("1001", "1234").await;
    let erase =
        f.hq.prepare(
            2_000,
            Payload::CustomerErase {
                customer: CustomerId::parse(CUSTOMER).unwrap(),
            },
        )
        .unwrap()
        .0;
    f.node.ingest(vec![erase]).await.unwrap();
    let (status, _, answer) = f
        .call(
            Method::PUT,
            &format!("/api/v1/customers/{CUSTOMER}/consent/email"),
            Some(json!({"granted": true})),
            Some(&cookie),
        )
        .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (StatusCode::GONE, json!("customer_erased"))
    );
    let (status, _, _) = f
        .call(
            Method::GET,
            &format!("/api/v1/customers/{CUSTOMER}/cart"),
            None,
            Some(&cookie),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
