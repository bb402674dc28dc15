//! Console handler tests: `app(state)` driven with `oneshot`, one SQLite file per test, real
//! argon2 accounts. The browser tests (tests/hq_console_browser.rs) drive the same pages in
//! Chromium.

use crate::config::{ConsoleAccount, ConsoleConfig, ConsoleRole};
use crate::domain::count::plan_count;
use crate::domain::Sku;
use crate::hq::tests::{fixture, madrid, settings, Fixture, SKU};
use crate::hq::{app, HqState, NoSync};
use crate::http_security::TERMINAL_CSP;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;

/// argon2id of "1234" (the demo's PIN hash): cheap to reuse, verified for real.
const PASSWORD: &str = "1234";
const PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$mPJcWO0y8M4JmavqsPBudQ$La2MA8lSSOedwNST+u8HnJZbbqunV9omzXvbyeMB1xY";

fn account(user: &str, role: ConsoleRole) -> ConsoleAccount {
    ConsoleAccount {
        user: user.into(),
        name: format!("{user} name"),
        role,
        password_hash: PASSWORD_HASH.into(),
    }
}

async fn console_fixture() -> (Fixture, HqState) {
    let f = fixture().await;
    let mut s = settings();
    s.console = ConsoleConfig {
        accounts: vec![
            account("ana", ConsoleRole::Admin),
            account("luis", ConsoleRole::ReadOnly),
        ],
        ..ConsoleConfig::default()
    };
    let state = HqState::new(f.state.node.clone(), s, Arc::new(NoSync));
    (f, state)
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn call(
    state: &HqState,
    method: Method,
    uri: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ACCEPT_LANGUAGE, "en");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(f.to_string())
        }
        None => Body::empty(),
    };
    let response = app(state.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Log in and return the `Cookie` header value.
async fn login(state: &HqState, user: &str) -> String {
    let a = call(
        state,
        Method::POST,
        "/console/login",
        None,
        Some(&format!("user={user}&password={PASSWORD}")),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let set = a.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn the_console_asks_for_a_login_and_its_pages_carry_no_api_token() {
    let (_f, s) = console_fixture().await;
    let a = call(&s, Method::GET, "/console/stores", None, None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers[header::LOCATION], "/console/login");
    let a = call(&s, Method::GET, "/console/login", None, None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers[header::CONTENT_SECURITY_POLICY], TERMINAL_CSP);
    assert!(a.body.contains("Sign in to the console"), "{}", a.body);
    for (form, status, says) in [
        (
            "user=ana&password=nope",
            StatusCode::UNAUTHORIZED,
            "Wrong user or password",
        ),
        (
            "user=nobody&password=1234",
            StatusCode::UNAUTHORIZED,
            "Wrong user or password",
        ),
        (
            "user=&password=",
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter user and password",
        ),
    ] {
        let a = call(&s, Method::POST, "/console/login", None, Some(form)).await;
        assert_eq!(a.status, status, "{form}");
        assert!(a.body.contains(says), "{form}: {}", a.body);
        assert!(!a.headers.contains_key(header::SET_COOKIE), "{form}");
    }
    let cookie = login(&s, "ana").await;
    let a = call(&s, Method::GET, "/console/stores", Some(&cookie), None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("madrid-centro") && a.body.contains("ana name (admin)"));
    assert!(
        !a.body.contains("test-token-123"),
        "the API token leaked into the page"
    );
    let a = call(&s, Method::POST, "/console/logout", Some(&cookie), None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let a = call(&s, Method::GET, "/console/stores", Some(&cookie), None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "logged out");
}

#[tokio::test]
async fn every_view_renders_and_bad_filters_get_clear_errors() {
    let (_f, s) = console_fixture().await;
    let cookie = login(&s, "luis").await;
    let ok = |a: &Answer, what: &str| {
        assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.body);
        assert!(a.body.contains(what), "{what} missing: {}", a.body);
    };
    for (uri, what) in [
        ("/console/stores", "id=\"stores\""),
        ("/console/stock", "Enter a SKU"),
        ("/console/orders", "No order matches"),
        (
            "/console/orders?store=madrid-centro&status=placed",
            "0 of 0 orders",
        ),
        ("/console/inbox", "No items"),
        ("/console/webhooks", "Nothing pending"),
        ("/console/fiscal", "id=\"fiscal\""),
        ("/console/stores?lang=es", "Último contacto"),
    ] {
        ok(&call(&s, Method::GET, uri, Some(&cookie), None).await, what);
    }
    // Madrid holds 10 units, 3 of them lent to HQ.
    let a = call(
        &s,
        Method::GET,
        &format!("/console/stock?sku={SKU}"),
        Some(&cookie),
        None,
    )
    .await;
    ok(&a, "Leche entera 1 L");
    assert!(
        a.body.contains("<tr data-store=\"madrid-centro\"><td>madrid-centro</td><td class=\"num\">10</td><td class=\"num\">7</td><td class=\"num\">3</td>"),
        "{}",
        a.body
    );
    for (uri, status, says) in [
        (
            "/console/stock?sku=SKU-404",
            StatusCode::NOT_FOUND,
            "Unknown SKU: SKU-404",
        ),
        (
            "/console/stock?sku=%3Cscript%3E",
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid SKU: &lt;script&gt;",
        ),
        (
            "/console/orders?status=lost",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown order status",
        ),
        (
            "/console/orders?store=atlantis",
            StatusCode::NOT_FOUND,
            "atlantis",
        ),
        (
            "/console/inbox?kind=gremlins",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown conflict kind",
        ),
        ("/console/nowhere", StatusCode::NOT_FOUND, "no view"),
    ] {
        let a = call(&s, Method::GET, uri, Some(&cookie), None).await;
        assert_eq!(a.status, status, "{uri}: {}", a.body);
        assert!(a.body.contains(says), "{uri}: {}", a.body);
    }
    let a = call(&s, Method::GET, "/console/events", None, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn only_an_admin_resolves_and_the_resolution_names_the_account() {
    let (mut f, s) = console_fixture().await;
    // Madrid counts an empty shelf: 7 of its units are missing, 3 beyond its rights.
    let count = plan_count(f.madrid.state(), &madrid(), &Sku::parse(SKU).unwrap(), 0);
    f.store_does(count).await;
    let items = crate::hq::conflicts::filtered(&s, &Default::default()).unwrap();
    assert_eq!(items.len(), 1);
    let id = items[0].id.clone();
    let uri = format!("/console/inbox/{}/resolve", super::page::url(&id));

    let viewer = login(&s, "luis").await;
    let a = call(&s, Method::GET, "/console/inbox", Some(&viewer), None).await;
    assert!(
        a.body.contains("Read-only: an admin can resolve it."),
        "{}",
        a.body
    );
    assert!(
        !a.body.contains("class=\"resolve\""),
        "no resolve form for read-only"
    );
    let a = call(
        &s,
        Method::POST,
        &uri,
        Some(&viewer),
        Some("action=accept_loss"),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("read-only"), "{}", a.body);

    let admin = login(&s, "ana").await;
    let a = call(
        &s,
        Method::GET,
        "/console/inbox?store=madrid-centro&kind=shrinkage",
        Some(&admin),
        None,
    )
    .await;
    assert!(a.body.contains("value=\"accept_loss\""), "{}", a.body);
    for (form, status) in [
        ("action=shrug", StatusCode::UNPROCESSABLE_ENTITY),
        ("action=", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let a = call(&s, Method::POST, &uri, Some(&admin), Some(form)).await;
        assert_eq!(a.status, status, "{form}: {}", a.body);
    }
    let still = crate::hq::conflicts::filtered(&s, &Default::default()).unwrap();
    assert!(still[0].resolution.is_none(), "refusals change nothing");

    let a = call(
        &s,
        Method::POST,
        &uri,
        Some(&admin),
        Some("action=accept_loss&note=tarros+rotos"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let done = crate::hq::conflicts::filtered(&s, &Default::default()).unwrap();
    let r = done[0].resolution.clone().expect("resolved");
    assert_eq!(
        (r.action.as_str(), r.by.as_str(), r.note.as_str()),
        ("accept_loss", "ana@hq", "tarros rotos")
    );
    let a = call(
        &s,
        Method::GET,
        "/console/inbox/items?open=false",
        Some(&admin),
        None,
    )
    .await;
    assert!(
        a.body
            .contains("Resolved: Accept the loss by ana@hq · tarros rotos"),
        "{}",
        a.body
    );
}
