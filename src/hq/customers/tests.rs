//! The customer calls of the HQ API, driven through `app(state)` with one SQLite file each.

use crate::hq::tests::{fixture, send, SKU};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};

const LUCIA: &str = "/api/v1/customers/C-LUCIA";

fn profile() -> Value {
    json!({"name": "Lucía Pérez Gómez", "email": "lucia.perez@example.com",
           "phone": "+34600111222", "loyalty_card": "LOY-7700123"})
}

#[tokio::test]
async fn a_customer_is_created_read_and_given_consent_with_its_source() {
    let f = fixture().await;
    let (status, body) = send(&f.state, Method::PUT, LUCIA, Some(profile()), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Lucía Pérez Gómez");
    assert_eq!(body["consent"], json!({}));
    let (status, body) = send(
        &f.state,
        Method::PUT,
        &format!("{LUCIA}/consent/whatsapp"),
        Some(json!({"granted": true, "source": "app"})),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["consent"]["whatsapp"]["granted"], true);
    assert_eq!(body["consent"]["whatsapp"]["source"], "app");
    assert!(body["consent"]["whatsapp"]["at"].as_u64().unwrap() > 0);
    let (status, read) = send(&f.state, Method::GET, LUCIA, None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["email"], "lucia.perez@example.com");
    assert_eq!(read["consent"], body["consent"]);
    assert_eq!(read["stores"], json!([]));
}

#[tokio::test]
async fn bad_input_gets_the_error_that_names_it_and_changes_nothing() {
    let f = fixture().await;
    send(&f.state, Method::PUT, LUCIA, Some(profile()), &[]).await;
    let digest = f.state.node.read(|r| r.digest());
    for (body, code) in [
        (json!({"email": "not-an-email"}), "invalid_email"),
        (json!({"phone": "call me"}), "invalid_phone"),
        (json!({"name": ""}), "invalid_name"),
        (json!({"name": 7}), "invalid_name"),
    ] {
        let (status, answer) = send(&f.state, Method::PUT, LUCIA, Some(body), &[]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"], code);
        assert!(answer["field"].is_string(), "{answer}");
    }
    let (status, answer) = send(
        &f.state,
        Method::PUT,
        &format!("{LUCIA}/consent/pigeon"),
        Some(json!({"granted": true})),
        &[],
    )
    .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_channel"))
    );
    let (status, answer) = send(
        &f.state,
        Method::GET,
        "/api/v1/customers/C-NOBODY",
        None,
        &[],
    )
    .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (StatusCode::NOT_FOUND, json!("unknown_customer"))
    );
    let (status, _) = send(
        &f.state,
        Method::POST,
        "/api/v1/customers/C-NOBODY/contacts",
        Some(json!({"channel": "email", "campaign": "x"})),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &f.state,
        Method::DELETE,
        "/api/v1/customers/C-NOBODY",
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(f.state.node.read(|r| r.digest()), digest);
}

#[tokio::test]
async fn an_erased_customer_is_gone_for_reads_and_refused_for_contacts() {
    let f = fixture().await;
    send(&f.state, Method::PUT, LUCIA, Some(profile()), &[]).await;
    send(
        &f.state,
        Method::PUT,
        &format!("{LUCIA}/consent/email"),
        Some(json!({"granted": true, "source": "shop"})),
        &[],
    )
    .await;
    let (status, body) = send(&f.state, Method::DELETE, LUCIA, None, &[]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"id": "C-LUCIA", "complete": false}));
    let (status, body) = send(&f.state, Method::DELETE, LUCIA, None, &[]).await;
    assert_eq!(
        (status, body["complete"].clone()),
        (StatusCode::ACCEPTED, json!(false))
    );
    let (status, body) = send(&f.state, Method::GET, LUCIA, None, &[]).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::GONE, json!("customer_erased"))
    );
    let (status, _) = send(&f.state, Method::PUT, LUCIA, Some(profile()), &[]).await;
    assert_eq!(status, StatusCode::GONE);
    let (status, body) = send(
        &f.state,
        Method::POST,
        &format!("{LUCIA}/contacts"),
        Some(json!({"channel": "email", "campaign": "spring"})),
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::CONFLICT, json!("customer_erased"))
    );
    // No store held the customer: the erasure is complete at once.
    let (status, body) = send(
        &f.state,
        Method::GET,
        &format!("{LUCIA}/erasure"),
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"id": "C-LUCIA", "complete": true, "stores": []})
    );
    let id = crate::domain::CustomerId::parse("C-LUCIA").unwrap();
    assert!(f
        .state
        .node
        .read(|r| !r.state().customers[&id].has_personal_data()));
}

#[tokio::test]
async fn contacts_need_consent_and_stop_at_the_weekly_limit() {
    let f = fixture().await;
    send(&f.state, Method::PUT, LUCIA, Some(profile()), &[]).await;
    let contact = |channel: &str| json!({"channel": channel, "campaign": "abandoned-cart"});
    let (status, body) = send(
        &f.state,
        Method::POST,
        &format!("{LUCIA}/contacts"),
        Some(contact("sms")),
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::CONFLICT, json!("no_consent"))
    );
    send(
        &f.state,
        Method::PUT,
        &format!("{LUCIA}/consent/sms"),
        Some(json!({"granted": true, "source": "shop"})),
        &[],
    )
    .await;
    for _ in 0..2 {
        let (status, body) = send(
            &f.state,
            Method::POST,
            &format!("{LUCIA}/contacts"),
            Some(contact("sms")),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["customer"], "C-LUCIA");
        assert_eq!(body["channel"], "sms");
        assert!(body["at"].as_u64().is_some());
    }
    let (status, body) = send(
        &f.state,
        Method::POST,
        &format!("{LUCIA}/contacts"),
        Some(contact("sms")),
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::CONFLICT, json!("contact_limit"))
    );
    let (status, body) = send(
        &f.state,
        Method::POST,
        &format!("{LUCIA}/contacts"),
        Some(contact("fax")),
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_channel"))
    );
}

#[tokio::test]
async fn abandoned_carts_list_the_channels_each_customer_may_be_contacted_on_now() {
    use crate::domain::{ActorId, Hlc, Op, Payload, Sku, StoreId};
    let f = fixture().await;
    send(&f.state, Method::PUT, LUCIA, Some(profile()), &[]).await;
    send(
        &f.state,
        Method::PUT,
        &format!("{LUCIA}/consent/email"),
        Some(json!({"granted": true, "source": "shop"})),
        &[],
    )
    .await;
    // A cart line added at a counter two hours ago (an op with that clock).
    let sevilla: ActorId = StoreId::parse("sevilla-nervion").unwrap().actor();
    let two_hours_ago = crate::store::now_ms() - 2 * 3_600_000;
    let cart = Op {
        actor: sevilla,
        seq: 1,
        hlc: Hlc::new(two_hours_ago, 0),
        payload: Payload::CartSet {
            customer: crate::domain::CustomerId::parse("C-LUCIA").unwrap(),
            sku: Sku::parse(SKU).unwrap(),
            qty: 3,
        },
    };
    f.state.node.ingest(vec![cart]).await.unwrap();
    let (status, body) = send(
        &f.state,
        Method::GET,
        "/api/v1/carts/abandoned?idle_hours=3",
        None,
        &[],
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    let (status, body) = send(
        &f.state,
        Method::GET,
        "/api/v1/carts/abandoned?idle_hours=1",
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let row = &body[0];
    assert_eq!(row["customer"], "C-LUCIA");
    assert_eq!(row["idle_hours"], 2);
    assert_eq!(row["total_cents"], 3 * 99);
    assert_eq!(row["lines"], json!([{"sku": SKU, "qty": 3}]));
    assert_eq!(row["channels"], json!(["email"]));
    let (_, only_sms) = send(
        &f.state,
        Method::GET,
        "/api/v1/carts/abandoned?idle_hours=1&channel=sms",
        None,
        &[],
    )
    .await;
    assert_eq!(only_sms, json!([]));
    // The card shows the badge.
    let (_, card) = send(&f.state, Method::GET, LUCIA, None, &[]).await;
    assert_eq!(
        card["abandoned_since"],
        json!(null),
        "24 h by default: {card}"
    );
    // Two contacts use up the week: no channel is open any more.
    for _ in 0..2 {
        let (status, _) = send(
            &f.state,
            Method::POST,
            &format!("{LUCIA}/contacts"),
            Some(json!({"channel": "email", "campaign": "cart"})),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (_, body) = send(
        &f.state,
        Method::GET,
        "/api/v1/carts/abandoned?idle_hours=1",
        None,
        &[],
    )
    .await;
    assert_eq!(body[0]["channels"], json!([]));
    for bad in ["0", "x", "100000"] {
        let (status, body) = send(
            &f.state,
            Method::GET,
            &format!("/api/v1/carts/abandoned?idle_hours={bad}"),
            None,
            &[],
        )
        .await;
        assert_eq!(
            (status, body["error"].clone()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!("invalid_idle_hours")
            )
        );
    }
    let (status, body) = send(
        &f.state,
        Method::GET,
        "/api/v1/carts/abandoned?channel=fax",
        None,
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_channel"))
    );
}

/// A `Write` that appends to a shared buffer, for capturing log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_personal_data_reaches_the_log_at_info_level() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let f = fixture().await;
    send(&f.state, Method::PUT, LUCIA, Some(profile()), &[]).await;
    send(
        &f.state,
        Method::PUT,
        LUCIA,
        Some(json!({"email": "lucia.perez@bad"})),
        &[],
    )
    .await;
    send(
        &f.state,
        Method::PUT,
        LUCIA,
        Some(json!({"phone": "+34 600 111 222 ext"})),
        &[],
    )
    .await;
    send(
        &f.state,
        Method::PUT,
        &format!("{LUCIA}/consent/email"),
        Some(json!({"granted": true, "source": "shop"})),
        &[],
    )
    .await;
    send(
        &f.state,
        Method::POST,
        &format!("{LUCIA}/contacts"),
        Some(json!({"channel": "email", "campaign": "c"})),
        &[],
    )
    .await;
    send(&f.state, Method::DELETE, LUCIA, None, &[]).await;
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("customer erased at hq"),
        "the capture works: {text}"
    );
    assert!(text.contains("C-LUCIA"), "ids are logged: {text}");
    for datum in [
        "Lucía",
        "Pérez",
        "lucia.perez",
        "600111222",
        "600 111 222",
        "LOY-7700123",
    ] {
        assert!(!text.contains(datum), "{datum} in the log:\n{text}");
    }
}
