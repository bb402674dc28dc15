//! HQ's console for the till (DESIGN.md §18) in real headless Chromium: every store's cash
//! sessions per till (open or closed, expected against counted, the Z totals) as replicated
//! from the store, and the promotions, which an admin creates and ends through the HQ API's
//! rules while a read-only account can only look. Spanish and English; screenshots in
//! `target/screenshots/`.

mod browser_support;

use browser_support::{connect, screenshots_dir, start_driver, Page};
use serde_json::json;
use std::sync::Arc;
use storenode::config::Config;
use storenode::domain::ids::{CashSessionId, PromotionId, TillId};
use storenode::domain::op::{ReceiveReason, SaleLine, Tender};
use storenode::domain::till::TillDoc;
use storenode::domain::{ActorId, Ean13, Payload, Replica, SaleId, Sku, StoreId};
use storenode::hq::{HqSettings, HqState, LinkStatus, SyncView};
use storenode::store::{now_ms, Node};

struct Online;

impl SyncView for Online {
    fn link(&self, _store: &StoreId) -> LinkStatus {
        LinkStatus {
            online: true,
            last_seen_ms: Some(now_ms()),
            outbox: 0,
            lag_ops: 0,
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

/// HQ with one product (in category `basicos`) and console accounts `ana` (admin) and `luis` (read-only).
async fn hq(dir: &std::path::Path) -> HqState {
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
    node.submit(vec![
        Payload::CatalogPut {
            sku: Sku::parse(SKU).unwrap(),
            ean: Ean13::parse("8410234782535").unwrap(),
            name: "Leche entera 1 L".into(),
            price_cents: 99,
            vat_bp: 400,
        },
        Payload::CatalogCategory {
            sku: Sku::parse(SKU).unwrap(),
            category: Some(storenode::domain::ids::Category::parse("basicos").unwrap()),
        },
    ])
    .await
    .unwrap();
    HqState::new(node, HqSettings::from_config(&config), Arc::new(Online))
}

/// madrid-centro's day, as its ops reach HQ: till T2 opened, sold 3 in cash and closed 2
/// cents short; till T1 (the default till's `CashOpen`) still open.
async fn madrid_day(state: &HqState) {
    let hq_ops = state
        .node
        .query(|c| Node::ops_since(c, &ActorId::hq(), 0, 1_000))
        .await
        .unwrap();
    let mut store = Replica::new(madrid().actor());
    for op in &hq_ops {
        store.apply(op).unwrap();
    }
    let (t2, sale) = (TillId::parse("T2").unwrap(), SaleId::parse("S-1").unwrap());
    let day = vec![
        Payload::StockReceive {
            store: madrid(),
            sku: Sku::parse(SKU).unwrap(),
            qty: 10,
            reason: ReceiveReason::Delivery,
        },
        Payload::CashOpenTill {
            store: madrid(),
            till: t2.clone(),
            session: CashSessionId::parse("Z-T2-1").unwrap(),
            float_cents: 10_000,
            staff: "1001".into(),
            opened_ms: now_ms() - 3_600_000,
        },
        Payload::TakenAt {
            store: madrid(),
            till: t2,
            doc: TillDoc::Sale(sale.clone()),
        },
        Payload::Sale {
            store: madrid(),
            sale_id: sale,
            lines: vec![SaleLine {
                sku: Sku::parse(SKU).unwrap(),
                qty: 3,
                unit_cents: 99,
                vat_bp: 400,
            }],
            tender: Tender::Cash,
            customer: None,
        },
        Payload::CashClose {
            store: madrid(),
            session: CashSessionId::parse("Z-T2-1").unwrap(),
            counted_cents: 10_295,
            staff: "9001".into(),
            closed_ms: now_ms(),
        },
        Payload::CashOpen {
            store: madrid(),
            session: CashSessionId::parse("Z-T1-1").unwrap(),
            float_cents: 15_000,
            staff: "1002".into(),
            opened_ms: now_ms(),
        },
    ];
    let ops: Vec<_> = day
        .into_iter()
        .map(|p| store.prepare(now_ms(), p).unwrap().0)
        .collect();
    let ingested = state.node.ingest(ops).await.unwrap();
    assert!(ingested.rejected.is_empty(), "{:?}", ingested.rejected);
}

async fn console_login(page: &Page, base: &str, user: &str, password: &str, lang: &str) {
    page.c
        .goto(&format!("{base}console/login?lang={lang}"))
        .await
        .unwrap();
    page.el("#user").await.send_keys(user).await.unwrap();
    page.el("#password")
        .await
        .send_keys(password)
        .await
        .unwrap();
    page.click("#login-submit").await;
    page.el("#stores").await;
}

async fn count(page: &Page, css: &str) -> serde_json::Value {
    page.c
        .execute(
            &format!("return document.querySelectorAll({css:?}).length"),
            vec![],
        )
        .await
        .unwrap()
}

async fn type_into(page: &Page, css: &str, text: &str) {
    page.el(css).await.send_keys(text).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hq_sees_each_tills_cash_sessions_and_admins_create_and_end_promotions() {
    let dir = tempfile::tempdir().unwrap();
    let state = hq(dir.path()).await;
    madrid_day(&state).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let app = storenode::hq::app(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (_driver, webdriver) = start_driver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = connect(&webdriver, profile.path()).await;
    let mut page = Page {
        c,
        lang: "console-es",
        shots: screenshots_dir(),
        n: 0,
    };
    let now = now_ms();
    let result = async {
        console_login(&page, &base, "ana", "ana-demo", "es").await;
        page.click("nav a[data-view='cash']").await;
        page.el("#cash").await;
        page.el("tr[data-session='Z-T2-1'][data-till='T2']").await;
        page.el("tr[data-session='Z-T1-1'][data-till='T1']").await;
        page.wait_text("cerrada").await;
        page.wait_text("abierta").await;
        // T2: 100.00 + 3 x 0.99 = 102.97 expected, 102.95 counted.
        page.wait_text("102,97 €").await;
        page.wait_text("-0,02 €").await;
        page.shot("cash-sessions").await;
        page.c
            .goto(&format!("{base}console/cash?store=madrid-centro&status=open"))
            .await
            .unwrap();
        page.el("#cash").await;
        assert_eq!(count(&page, "#cash tbody tr").await, json!(1));
        page.el("tr[data-till='T1']").await;
        page.c
            .goto(&format!("{base}console/cash?store=nowhere"))
            .await
            .unwrap();
        page.wait_text("unknown store").await;

        page.click("nav a[data-view='promotions']").await;
        page.shot("promotions-empty").await;
        page.el("#new-promotion").await;
        page.wait_text("Ninguna promoción.").await;
        // Bad input: the range ends before it starts; the refusal says so with Madrid dates
        // (the last minute of the "until" day), never milliseconds.
        let starts = jiff::Timestamp::from_millisecond(now as i64 - 3_600_000).unwrap();
        let ends = jiff::Timestamp::from_millisecond(now as i64 + 86_400_000).unwrap();
        type_into(&page, "#new-promotion input[name='id']", "P-LECHE").await;
        type_into(&page, "#new-promotion input[name='name']", "Leche -15 %").await;
        type_into(&page, "#new-promotion input[name='skus']", SKU).await;
        type_into(&page, "#new-promotion input[name='percent']", "15").await;
        type_into(&page, "#new-promotion input[name='starts']", "2026-12-31").await;
        type_into(&page, "#new-promotion input[name='ends']", "2026-12-01").await;
        page.click("#new-promotion button[type='submit']").await;
        page.wait_text(
            "Las fechas no dejan tiempo a la promoción: empieza el 31/12/2026 00:00 y termina el \
             01/12/2026 23:59.",
        )
        .await;
        let shown = page
            .c
            .execute(
                "return document.querySelector('#error-message').textContent",
                vec![],
            )
            .await
            .unwrap();
        let longest = shown
            .as_str()
            .unwrap_or("")
            .split(|c: char| !c.is_ascii_digit())
            .map(str::len)
            .max();
        assert!(longest < Some(13), "no millisecond counts: {shown}");
        page.shot("promotion-refused").await;
        assert!(
            state.node.read(|r| r.state().promotions.iter().next().is_none()),
            "nothing stored from bad input"
        );
        page.c
            .goto(&format!("{base}console/promotions"))
            .await
            .unwrap();
        // Created by category: every product HQ put in `basicos`.
        type_into(&page, "#new-promotion input[name='id']", "P-LECHE").await;
        type_into(&page, "#new-promotion input[name='name']", "Básicos -15 %").await;
        type_into(&page, "#new-promotion input[name='categories']", "basicos").await;
        type_into(&page, "#new-promotion input[name='percent']", "15").await;
        type_into(&page, "#new-promotion input[name='starts']", &starts.to_string()).await;
        type_into(&page, "#new-promotion input[name='ends']", &ends.to_string()).await;
        page.click("#new-promotion button[type='submit']").await;
        page.el("tr[data-promotion='P-LECHE']").await;
        page.wait_text("activa").await;
        page.wait_text("categoría basicos").await;
        page.shot("promotion-created").await;
        let id = PromotionId::parse("P-LECHE").unwrap();
        let running = state
            .node
            .read(|r| r.state().promotions.get(&id).map(|p| p.active_at(now_ms())));
        assert_eq!(running, Some(true));
        let categories = state.node.read(|r| {
            r.state()
                .promotions
                .get(&id)
                .map(|p| (p.skus.len(), p.categories.len()))
        });
        assert_eq!(categories, Some((0, 1)), "a promotion by category only");
        page.click("tr[data-promotion='P-LECHE'] button.danger").await;
        page.wait_text("terminada").await;
        page.shot("promotion-ended").await;
        let running = state
            .node
            .read(|r| r.state().promotions.get(&id).map(|p| p.active_at(now_ms())));
        assert_eq!(running, Some(false), "ended at HQ, to replicate");
        page.click("#logout").await;
        page.el("#login-submit").await;

        // Read-only, in English: sees both views, has no form, and the server refuses.
        page.lang = "console-en";
        page.n = 0;
        console_login(&page, &base, "luis", "luis-demo", "en").await;
        page.click("nav a[data-view='cash']").await;
        page.wait_text("Cash sessions").await;
        page.wait_text("closed").await;
        page.shot("cash-sessions").await;
        page.click("nav a[data-view='promotions']").await;
        page.el("tr[data-promotion='P-LECHE']").await;
        page.wait_text("ended").await;
        assert_eq!(count(&page, "#new-promotion").await, json!(0));
        assert_eq!(count(&page, "button.danger").await, json!(0));
        page.shot("promotions-read-only").await;
        let status = page
            .c
            .execute(
                "return fetch('/console/promotions/new', {method: 'POST', headers: {'Content-Type': \
                 'application/x-www-form-urlencoded'}, body: 'id=P-X&kind=percent&percent=5&skus=SKU-000001&starts=2026-01-01&ends=2027-01-01'}).then(r => r.status)",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(status, json!(403));
        assert_eq!(
            state.node.read(|r| r.state().promotions.iter().count()),
            1,
            "nothing stored by a read-only account"
        );
    }
    .await;
    let _ = page.c.close().await;
    result
}
