//! The conflict inbox in real headless Chromium: the terminal's manager screen (an item raised
//! while the screen is open appears live, with its count, and is resolved with a note), and
//! HQ's console (login, every view, the inbox live over SSE, resolving as admin, a read-only
//! account that cannot), in Spanish and English, with screenshots in `target/screenshots/`.

mod browser_support;
mod terminal_support;

use browser_support::{connect, screenshots_dir, start_driver, Page, WAIT};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use storenode::config::Config;
use storenode::domain::count::plan_count;
use storenode::domain::op::{OrderLine, ReceiptLine, ReceiveReason};
use storenode::domain::{ActorId, Ean13, MotionId, Payload, Replica, Sku, StoreId};
use storenode::hq::{HqSettings, HqState, LinkStatus, SyncView};
use storenode::store::{now_ms, Node};
use terminal_support::{store, Fixture};

/// Wait until `js` (an expression) is true in the page.
async fn wait_js(page: &Page, js: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = page
            .c
            .execute(&format!("return !!({js})"), vec![])
            .await
            .unwrap();
        if v == json!(true) {
            return;
        }
        assert!(Instant::now() < deadline, "never true: {js}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn watch_csp(page: &Page) {
    page.c
        .execute(
            "window.__csp = []; document.addEventListener('securitypolicyviolation', \
             e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));",
            vec![],
        )
        .await
        .unwrap();
}

async fn assert_no_csp_violation(page: &Page) {
    let v = page.c.execute("return window.__csp", vec![]).await.unwrap();
    assert_eq!(v, json!([]), "CSP violations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_sees_a_short_delivery_appear_live_in_the_terminal_inbox_and_resolves_it() {
    let mut f = Fixture::new().await;
    let (notice, _) =
        f.hq.prepare(
            5_000,
            Payload::ShipmentNotice {
                shipment: MotionId::parse("D-7").unwrap(),
                store: store(),
                reference: "ASN-7".into(),
                lines: vec![OrderLine {
                    sku: Sku::parse("SKU-2").unwrap(),
                    qty: 6,
                }],
            },
        )
        .unwrap();
    f.node.ingest(vec![notice]).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let app = f.app();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (_driver, webdriver) = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = connect(&webdriver, profile.path()).await;
    let mut page = Page {
        c,
        lang: "es",
        shots: screenshots_dir(),
        n: 0,
    };
    let result = async {
        page.c.goto(&base).await.unwrap();
        page.c
            .execute("localStorage.setItem('sn.lang', 'es')", vec![])
            .await
            .unwrap();
        page.c.goto(&base).await.unwrap();
        watch_csp(&page).await;
        page.el("#login:not([hidden])").await;
        page.click("#login-staff").await;
        page.el("#login-staff")
            .await
            .send_keys("9001")
            .await
            .unwrap();
        page.click("#login-pin").await;
        for digit in "4321".chars() {
            page.click(&format!(".key[data-key='{digit}']")).await;
        }
        page.click("#login-submit").await;
        page.el("#nav-inbox:not([hidden])").await;
        page.click("#nav a[data-screen='inbox']").await;
        page.wait_text("No hay incidencias abiertas").await;
        page.shot("terminal-inbox-empty").await;

        // Received 4 of 6 at the back door (another terminal): the item shows here at once.
        let cookie = f.login("9001", "4321").await;
        let (status, _, body) = f
            .call(
                axum::http::Method::POST,
                "/api/v1/shipments/D-7/receive",
                Some(json!({"lines": [{"sku": "SKU-2", "received": 4}]})),
                Some(&cookie),
            )
            .await;
        assert_eq!(status, axum::http::StatusCode::OK, "{body}");
        page.el(".conflict-card[data-id='shipment:D-7']").await;
        page.wait_text("La entrega D-7 llegó con 2 unidad(es) de menos.")
            .await;
        wait_js(
            &page,
            "document.querySelector('#nav-conflicts').textContent === '1'",
        )
        .await;
        page.shot("terminal-inbox-delivery-short").await;

        page.el(".conflict-card[data-id='shipment:D-7'] input[name='note']")
            .await
            .send_keys("caja rota en el camión")
            .await
            .unwrap();
        page.click(".conflict-card[data-id='shipment:D-7'] button[value='confirm_loss']")
            .await;
        page.el(".conflict-card[data-id='shipment:D-7'] [data-resolution]")
            .await;
        page.wait_text("caja rota en el camión").await;
        wait_js(
            &page,
            "document.querySelector('#nav-conflicts').textContent === ''",
        )
        .await;
        page.shot("terminal-inbox-resolved").await;
        assert_no_csp_violation(&page).await;
    }
    .await;
    let item = f
        .node
        .read(|r| storenode::domain::conflict::find(r.state(), "shipment:D-7"));
    let r = item
        .and_then(|c| c.resolution)
        .expect("resolved in the store's state");
    assert_eq!((r.action.as_str(), r.by.as_str()), ("confirm_loss", "9001"));
    let _ = page.c.close().await;
    result
}

/// Madrid online and recently seen, Sevilla offline with a backlog: what the stores view shows.
struct Links;

impl SyncView for Links {
    fn link(&self, store: &StoreId) -> LinkStatus {
        if store.as_str() == "madrid-centro" {
            LinkStatus {
                online: true,
                last_seen_ms: Some(now_ms() - 4_000),
                outbox: 0,
                lag_ops: 0,
            }
        } else {
            LinkStatus {
                online: false,
                last_seen_ms: Some(now_ms() - 40 * 60_000),
                outbox: 12,
                lag_ops: 5,
            }
        }
    }
    fn render_metrics(&self) -> String {
        String::new()
    }
}

const SKU: &str = "SKU-000001";

fn madrid() -> StoreId {
    StoreId::parse("madrid-centro").unwrap()
}

/// HQ with a product, madrid-centro's stock (3 lent to HQ), two orders, and a failing
/// webhook event; console accounts `ana` (admin) and `luis` (read-only).
async fn hq(dir: &std::path::Path) -> (HqState, Replica) {
    let mut accounts = String::new();
    for (user, name, role, password) in [
        ("ana", "Ana Torres", "admin", "ana-demo"),
        ("luis", "Luis Romero", "read_only", "luis-demo"),
    ] {
        let hash = storenode::hq::console::hash_password(password).unwrap();
        accounts.push_str(&format!(
            "[[console.accounts]]\nuser = \"{user}\"\nname = \"{name}\"\nrole = \"{role}\"\npassword_hash = \"{hash}\"\n"
        ));
    }
    let text = format!(
        "role = \"hq\"\nchain = \"demo\"\ndb = \"unused.db\"\nstores = [\"madrid-centro\", \"sevilla-nervion\"]\n\
         api_tokens = [\"browser-test-token\"]\n[mqtt]\nhost = \"127.0.0.1\"\nport = 1\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[pickup]\nqr_keys = [\"{}\"]\n{accounts}",
        "ab".repeat(32)
    );
    let Config::Hq(config) = Config::parse(&text).unwrap() else {
        panic!("not an hq config")
    };
    let node = Node::open(&dir.join("hq.db"), ActorId::hq()).unwrap();
    let catalog = node
        .submit(vec![Payload::CatalogPut {
            sku: Sku::parse(SKU).unwrap(),
            ean: Ean13::parse("8410234782535").unwrap(),
            name: "Leche entera 1 L".into(),
            price_cents: 99,
            vat_bp: 400,
        }])
        .await
        .unwrap();
    let mut store = Replica::new(madrid().actor());
    for op in &catalog.ops {
        store.apply(op).unwrap();
    }
    let mut ops = Vec::new();
    for p in [
        Payload::StockReceive {
            store: madrid(),
            sku: Sku::parse(SKU).unwrap(),
            qty: 10,
            reason: ReceiveReason::Delivery,
        },
        Payload::StockTransfer {
            store: madrid(),
            sku: Sku::parse(SKU).unwrap(),
            to: ActorId::hq(),
            qty: 3,
        },
    ] {
        ops.push(store.prepare(now_ms(), p).unwrap().0);
    }
    node.ingest(ops).await.unwrap();
    let state = HqState::new(node, HqSettings::from_config(&config), Arc::new(Links));
    for (key, customer) in [("k-1", "C-0001"), ("k-2", "C-0002")] {
        let body = json!({"store": "madrid-centro", "customer": {"id": customer}, "lines": [{"sku": SKU, "qty": 1}]});
        let req = axum::http::Request::post("/api/v1/orders")
            .header("authorization", "Bearer browser-test-token")
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        let res = tower::ServiceExt::oneshot(storenode::hq::app(state.clone()), req)
            .await
            .unwrap();
        assert_eq!(res.status(), axum::http::StatusCode::CREATED);
    }
    state
        .node
        .write(|tx| {
            let event = storenode::hq::webhook::Event {
                kind: "order.ready",
                dedup: "order.ready:O-test".into(),
                fields: serde_json::Map::new(),
            };
            storenode::hq::webhook::enqueue(tx, &event, now_ms() - 90_000)?;
            tx.execute(
                "UPDATE hq_webhook_events SET attempts = 3, last_error = 'HTTP 503 from https://shop.example.com/hooks'",
                [],
            )
            .map(|_| ())
        })
        .await
        .unwrap();
    (state, store)
}

/// Bring HQ's ops to the store replica, then feed HQ what the store does.
async fn store_does(state: &HqState, store: &mut Replica, payloads: Vec<Payload>) {
    let hq_ops = state
        .node
        .query(|conn| Node::ops_since(conn, &ActorId::hq(), 0, 10_000))
        .await
        .unwrap();
    for op in hq_ops {
        store.apply(&op).unwrap();
    }
    let ops: Vec<_> = payloads
        .into_iter()
        .map(|p| store.prepare(now_ms(), p).unwrap().0)
        .collect();
    let ingested = state.node.ingest(ops).await.unwrap();
    assert!(ingested.rejected.is_empty(), "{:?}", ingested.rejected);
}

async fn console_login(page: &Page, base: &str, user: &str, password: &str) {
    page.c.goto(&format!("{base}console/login")).await.unwrap();
    page.el("#user").await.send_keys(user).await.unwrap();
    page.el("#password")
        .await
        .send_keys(password)
        .await
        .unwrap();
    page.click("#login-submit").await;
    page.el("#stores").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_staff_run_the_chain_from_the_console_and_only_admins_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let (state, mut store) = hq(dir.path()).await;
    // An empty shelf at madrid: shrinkage naming the open orders at risk.
    let count = plan_count(store.state(), &madrid(), &Sku::parse(SKU).unwrap(), 0);
    store_does(&state, &mut store, count).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let app = storenode::hq::app(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (_driver, webdriver) = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = connect(&webdriver, profile.path()).await;
    let mut page = Page {
        c,
        lang: "console-en",
        shots: screenshots_dir(),
        n: 0,
    };
    let result = async {
        // Not logged in: the login page, in English once asked.
        page.c.goto(&format!("{base}console/stores")).await.unwrap();
        page.el("#login-submit").await;
        page.c
            .goto(&format!("{base}console/login?lang=en"))
            .await
            .unwrap();
        page.el("#user").await.send_keys("ana").await.unwrap();
        page.el("#password")
            .await
            .send_keys("wrong-password")
            .await
            .unwrap();
        page.click("#login-submit").await;
        page.el("#login-error").await;
        page.wait_text("Wrong user or password").await;
        page.shot("login-wrong-password").await;

        // Read-only: sees the inbox, cannot resolve.
        console_login(&page, &base, "luis", "luis-demo").await;
        page.c.goto(&format!("{base}console/inbox")).await.unwrap();
        page.el("article.item[data-kind='shrinkage']").await;
        page.wait_text("Read-only: an admin can resolve it.").await;
        let forms = page
            .c
            .execute(
                "return document.querySelectorAll('form.resolve').length",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(forms, json!(0));
        page.shot("inbox-read-only").await;
        page.click("#logout").await;
        page.el("#login-submit").await;

        // Admin: every view.
        console_login(&page, &base, "ana", "ana-demo").await;
        // The stylesheet loaded under the CSP (the script's load shows as the live mark).
        wait_js(&page, "getComputedStyle(document.querySelector('header')).backgroundColor === 'rgb(29, 35, 48)'").await;
        page.wait_text("online").await;
        page.wait_text("offline").await;
        page.shot("stores").await;
        page.click("nav a[data-view='stock']").await;
        page.el("#f-sku").await.send_keys(SKU).await.unwrap();
        page.click("form.filters button[type='submit']").await;
        page.el("#stock").await;
        page.wait_text("Leche entera 1 L").await;
        page.shot("stock").await;
        page.c
            .goto(&format!("{base}console/stock?sku=NOPE-1"))
            .await
            .unwrap();
        page.wait_text("Unknown SKU: NOPE-1").await;
        page.shot("stock-unknown-sku").await;
        page.click("nav a[data-view='orders']").await;
        page.el("#orders").await;
        page.wait_text("2 of 2 orders").await;
        page.shot("orders").await;
        page.c
            .goto(&format!("{base}console/orders?status=ready"))
            .await
            .unwrap();
        page.wait_text("No order matches.").await;
        page.click("nav a[data-view='webhooks']").await;
        page.el("#wh-last-error").await;
        page.wait_text("HTTP 503").await;
        page.shot("webhooks").await;
        page.click("nav a[data-view='fiscal']").await;
        page.el("#fiscal").await;
        page.shot("fiscal").await;

        // The inbox, live: a short delivery received while the page is open shows up.
        page.click("nav a[data-view='inbox']").await;
        page.el("article.item[data-kind='shrinkage']").await;
        wait_js(&page, "!document.querySelector('#live').hidden").await;
        watch_csp(&page).await;
        wait_js(
            &page,
            "document.querySelector('#inbox-count').textContent === '1'",
        )
        .await;
        state
            .node
            .submit(vec![Payload::ShipmentNotice {
                shipment: MotionId::parse("D-9").unwrap(),
                store: madrid(),
                reference: "ASN-9".into(),
                lines: vec![OrderLine {
                    sku: Sku::parse(SKU).unwrap(),
                    qty: 5,
                }],
            }])
            .await
            .unwrap();
        store_does(
            &state,
            &mut store,
            vec![Payload::ShipmentReceive {
                shipment: MotionId::parse("D-9").unwrap(),
                store: madrid(),
                lines: vec![ReceiptLine {
                    sku: Sku::parse(SKU).unwrap(),
                    received: 3,
                    damaged: 0,
                }],
                over_delivery: false,
            }],
        )
        .await;
        page.el("article.item[data-id='shipment:D-9']").await;
        wait_js(
            &page,
            "document.querySelector('#inbox-count').textContent === '2'",
        )
        .await;
        page.wait_text("Delivery D-9 arrived 2 unit(s) short.")
            .await;
        page.shot("inbox-live").await;
        assert_no_csp_violation(&page).await;

        // Resolve the delivery with a note.
        page.el("article.item[data-id='shipment:D-9'] input[name='note']")
            .await
            .send_keys("found 1 in the back room, 1 lost")
            .await
            .unwrap();
        page.click("article.item[data-id='shipment:D-9'] button[value='confirm_loss']")
            .await;
        page.el("article.item.resolved[data-id='shipment:D-9']")
            .await;
        page.wait_text("Resolved: Confirm the loss by ana@hq").await;
        wait_js(
            &page,
            "document.querySelector('#inbox-count').textContent === '1'",
        )
        .await;
        page.shot("inbox-resolved").await;

        // The same console in Spanish.
        page.lang = "console-es";
        page.n = 0;
        page.c
            .goto(&format!("{base}console/stores?lang=es"))
            .await
            .unwrap();
        page.wait_text("Último contacto").await;
        page.shot("tiendas").await;
        page.click("nav a[data-view='inbox']").await;
        page.wait_text("Un recuento de SKU-000001").await;
        page.shot("incidencias").await;
        page.c
            .goto(&format!("{base}console/stock?sku={SKU}"))
            .await
            .unwrap();
        page.wait_text("Derechos de central").await;
        page.shot("stock").await;
    }
    .await;
    let item = state
        .node
        .read(|r| storenode::domain::conflict::find(r.state(), "shipment:D-9"));
    let r = item
        .and_then(|c| c.resolution)
        .expect("resolved in HQ's state");
    assert_eq!(
        (r.action.as_str(), r.by.as_str()),
        ("confirm_loss", "ana@hq")
    );
    assert_eq!(r.note, "found 1 in the back room, 1 lost");
    let _ = page.c.close().await;
    result
}
