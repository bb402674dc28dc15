//! Black-box test of `storenode demo`: the real binary on free ports with a temporary data
//! directory. An order placed through HQ's API reaches the store, Ctrl-C stops it cleanly,
//! and a second start reuses the data without seeding again. A till sale is a VERI*FACTU
//! invoice: its QR is decoded from the printer emulator's PNG and HQ journals it.

use serde_json::{json, Value};

/// The benchmarks' terminal client (login, live events), shared as a source file: the
/// benchmarks are not in a default build of the library.
#[path = "../src/bench/terminal_client.rs"]
#[allow(dead_code)] // only part of the client is used here
mod terminal_client;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "demo-hq-token";

/// A base port with the three following ports free too, and the demo's scanner ports
/// (base + 11 and base + 12).
fn free_ports() -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = first.local_addr().unwrap().port();
        if base > 65_000 {
            continue;
        }
        let rest: Vec<_> = [1, 2, 3, 11, 12]
            .into_iter()
            .map(|i| TcpListener::bind(("127.0.0.1", base + i)))
            .collect();
        if rest.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no four consecutive free ports");
}

fn start(dir: &Path, base: u16) -> Child {
    let log = std::fs::File::create(
        dir.join(format!("demo-{}.log", Instant::now().elapsed().as_nanos())),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_storenode"))
        .args(["demo", "--data-dir"])
        .arg(dir.join("data"))
        .args([
            "--base-port",
            &base.to_string(),
            "--broker-port",
            &(base + 3).to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn interrupt_and_wait(mut child: Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "demo exited with {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("demo did not stop within 30 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Api {
    client: reqwest::Client,
    base: u16,
}

impl Api {
    async fn get(&self, port_offset: u16, path: &str) -> Option<(u16, Value)> {
        let url = format!("http://127.0.0.1:{}{path}", self.base + port_offset);
        let r = self.client.get(url).bearer_auth(TOKEN).send().await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().await.ok()?))
    }

    async fn wait_healthy(&self, child: &mut Child, dir: &Path) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some((200, _)) = self.get(0, "/healthz").await {
                if let Some((200, _)) = self.get(1, "/healthz").await {
                    return;
                }
            }
            if child.try_wait().unwrap().is_some() {
                let log = std::fs::read_to_string(dir.join("demo.log")).unwrap_or_default();
                panic!("demo exited early:\n{log}");
            }
            assert!(Instant::now() < deadline, "demo not healthy in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Poll until `check` holds, for up to `secs` seconds.
    async fn eventually(&self, secs: u64, what: &str, mut check: impl AsyncFnMut(&Api) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !check(self).await {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// madrid-centro's TCP scanner source (from the demo's config) reaches a logged-in page.
async fn a_network_scanner_line_shows_parsed_on_the_terminal_page(base: u16) {
    use terminal_client::TerminalClient;
    use tokio::io::AsyncWriteExt;
    let page = TerminalClient::login(&format!("http://127.0.0.1:{}", base + 1), "1001", "1234")
        .await
        .unwrap();
    let mut events = page.events().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut scanner = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", base + 11)).await {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "scanner port not listening: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    scanner.write_all(b"8410234782535\r\n").await.unwrap();
    let scan = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events.next().await.unwrap().expect("stream open");
            if event.event == "scan" {
                break serde_json::from_str::<Value>(&event.data).unwrap();
            }
        }
    })
    .await
    .expect("the scan reaches the page");
    assert_eq!(scan["code"], "8410234782535");
    assert_eq!(scan["kind"], "ean13");
    assert_eq!(scan["source"], format!("tcp:127.0.0.1:{}", base + 11));
}

/// The QR codes of every PNG the demo's printer emulator saved for `store`.
fn printed_qrs(dir: &Path, store: &str) -> Vec<String> {
    let folder = dir.join("data").join("printers").join(store);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "png") {
            let Ok(img) = image::open(&path) else {
                continue;
            };
            let mut prepared = rqrr::PreparedImage::prepare(img.to_luma8());
            for grid in prepared.detect_grids() {
                if let Ok((_, content)) = grid.decode() {
                    out.push(content);
                }
            }
        }
    }
    out
}

/// A sale at madrid-centro's terminal is invoice `MC-<n>` of the AEAT test NIF; its receipt,
/// printed by the emulator, carries the AEAT QR; HQ holds the record in an intact chain; the
/// store's journal verifies while the demo runs.
async fn a_till_sale_is_an_invoice_printed_with_its_qr_and_journaled_at_hq(api: &Api, dir: &Path) {
    let store = format!("http://127.0.0.1:{}", api.base + 1);
    let login = api
        .client
        .post(format!("{store}/api/v1/session"))
        .json(&json!({"staff": "1001", "pin": "1234"}))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let mut sale = None;
    for n in 1..=80 {
        let r = api
            .client
            .post(format!("{store}/api/v1/sales"))
            .header("cookie", &cookie)
            .json(&json!({"lines": [{"sku": format!("SKU-{n:06}"), "qty": 1}], "tender": "card"}))
            .send()
            .await
            .unwrap();
        if r.status() == 201 {
            sale = Some(r.json::<Value>().await.unwrap());
            break;
        }
    }
    let sale = sale.expect("madrid-centro sells something");
    let invoice = sale["invoice"].as_str().unwrap().to_string();
    assert!(invoice.starts_with("MC-"), "{sale}");
    let wanted = format!("numserie={invoice}&");
    api.eventually(20, "the receipt's QR on the emulator's PNG", async |_| {
        printed_qrs(dir, "madrid-centro").iter().any(|qr| {
            qr.starts_with("https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR?nif=89890001K&")
                && qr.contains(&wanted)
        })
    })
    .await;
    api.eventually(20, "HQ journals the invoice", async |a| {
        match a.get(0, "/api/v1/journal/madrid-centro").await {
            Some((200, j)) => j["last_invoice"] == invoice.as_str() && j["chain"] == "intact",
            _ => false,
        }
    })
    .await;
    let out = Command::new(env!("CARGO_BIN_EXE_storenode"))
        .args(["journal", "verify", "--db"])
        .arg(dir.join("data").join("madrid-centro").join("store.db"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Logs in at madrid-centro's terminal (till T1); the session cookie.
async fn store_login(api: &Api) -> String {
    let store = format!("http://127.0.0.1:{}", api.base + 1);
    let login = api
        .client
        .post(format!("{store}/api/v1/session"))
        .json(&json!({"staff": "1001", "pin": "1234"}))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// madrid-centro's open cash session on T1 as its terminal shows it: (id, expected cents).
async fn open_session(api: &Api, cookie: &str) -> (String, i64) {
    let url = format!(
        "http://127.0.0.1:{}/api/v1/cash/sessions/current",
        api.base + 1
    );
    let r = api.client.get(url).header("cookie", cookie).send().await;
    let cur: Value = r.unwrap().json().await.unwrap();
    let session = &cur["session"];
    (
        session["id"]
            .as_str()
            .expect("the demo opened T1")
            .to_string(),
        session["expected_cents"].as_i64().unwrap(),
    )
}

/// In the middle of the demo's cash session on T1: a cash sale of fruit (the seed's 10 % off
/// the `fruteria` category applies) and a cash movement, both acknowledged. Returns the
/// session and the cash it then expects.
async fn cash_in_the_middle_of_a_session(api: &Api) -> (String, i64) {
    let cookie = store_login(api).await;
    let (id, before) = open_session(api, &cookie).await;
    let store = format!("http://127.0.0.1:{}", api.base + 1);
    let mut sold = None;
    for n in 31..=45 {
        let r = api
            .client
            .post(format!("{store}/api/v1/sales"))
            .header("cookie", &cookie)
            .json(&json!({"lines": [{"sku": format!("SKU-{n:06}"), "qty": 1}], "tender": "cash"}))
            .send()
            .await
            .unwrap();
        if r.status() == 201 {
            sold = Some(r.json::<Value>().await.unwrap());
            break;
        }
    }
    let sold = sold.expect("madrid-centro sells some fruit");
    assert_eq!(sold["lines"][0]["promotion"], "DEMO-FRUTA-10", "{sold}");
    let r = api
        .client
        .post(format!("{store}/api/v1/cash/sessions/current/movements"))
        .header("cookie", &cookie)
        .json(&json!({"kind": "out", "cents": 1_000, "reason": "cambio"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let (same, expected) = open_session(api, &cookie).await;
    assert_eq!(same, id);
    assert_eq!(
        expected,
        before + sold["total_cents"].as_i64().unwrap() - 1_000
    );
    (id, expected)
}

/// The demo's log has no ERROR line, and madrid-centro took HQ's down-batches (signed) and
/// refused none of them.
async fn a_clean_start_logs_no_error_and_runs_signed_both_ways(api: &Api, dir: &Path) {
    let mut log = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "log") {
            log.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    assert!(log.contains("down-batches are signed"), "{log}");
    assert!(!log.contains(" ERROR "), "{log}");
    let metrics = api
        .client
        .get(format!("http://127.0.0.1:{}/metrics", api.base + 1))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counter = |series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(
        counter("storenode_sync_batches_received_total") >= 1,
        "{metrics}"
    );
    for reason in [
        "down_unsigned",
        "down_bad_signature",
        "reply_unsigned",
        "reply_bad_signature",
    ] {
        let series = format!("storenode_sync_batches_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(counter(&series), 0, "{metrics}");
    }
}

async fn store_orders(api: &Api) -> u64 {
    api.get(1, "/healthz")
        .await
        .map_or(0, |(_, h)| h["orders"].as_u64().unwrap_or(0))
}

async fn converged(api: &Api) -> bool {
    let Some((_, stores)) = api.get(0, "/api/v1/stores").await else {
        return false;
    };
    let Some((_, health)) = api.get(1, "/healthz").await else {
        return false;
    };
    stores[0]["store"] == "madrid-centro" && stores[0]["digest"] == health["digest"]
}

/// The console logins the demo prints work: the admin signs in and sees both stores.
async fn the_demo_console_admin_signs_in_and_sees_both_stores(base: u16) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(format!("http://127.0.0.1:{base}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=ana&password=ana-demo")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "demo console login");
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let page = client
        .get(format!("http://127.0.0.1:{base}/console/stores"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("madrid-centro") && html.contains("sevilla-nervion"),
        "{html}"
    );
    assert!(
        !html.contains(TOKEN),
        "the console page carries no API token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_placed_at_hq_reach_the_store_across_a_cut_link_and_the_demo_restarts_on_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_ports();
    let api = Api {
        client: reqwest::Client::new(),
        base,
    };
    let mut child = start(dir.path(), base);
    api.wait_healthy(&mut child, dir.path()).await;
    api.eventually(20, "first convergence", async |a| converged(a).await)
        .await;
    a_clean_start_logs_no_error_and_runs_signed_both_ways(&api, dir.path()).await;
    let before = store_orders(&api).await;
    assert!(before >= 1, "the demo starts with pickup orders");
    a_network_scanner_line_shows_parsed_on_the_terminal_page(base).await;
    the_demo_console_admin_signs_in_and_sees_both_stores(base).await;
    a_till_sale_is_an_invoice_printed_with_its_qr_and_journaled_at_hq(&api, dir.path()).await;

    let mut sku = None;
    for n in 1..=80 {
        let s = format!("SKU-{n:06}");
        if let Some((200, a)) = api
            .get(
                0,
                &format!("/api/v1/availability?sku={s}&store=madrid-centro"),
            )
            .await
        {
            if a["stores"][0]["hq_can_sell"].as_u64().unwrap_or(0) >= 1 {
                sku = Some(s);
                break;
            }
        }
    }
    let sku = sku.expect("hq can sell something at madrid-centro");
    let order = json!({"store": "madrid-centro", "customer": {"id": "C-0042", "name": "Test"}, "lines": [{"sku": sku, "qty": 1}]});
    let r = api
        .client
        .post(format!("http://127.0.0.1:{base}/api/v1/orders"))
        .bearer_auth(TOKEN)
        .header("idempotency-key", "it-1")
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let placed: Value = r.json().await.unwrap();
    let id = placed["id"].as_str().unwrap().to_string();

    api.eventually(10, "the order at the store", async |a| {
        store_orders(a).await == before + 1
    })
    .await;
    api.eventually(10, "equal digests", async |a| converged(a).await)
        .await;

    // Cut madrid-centro's link: HQ sees it offline, still sells from its rights, and both
    // sides converge again once the link is restored.
    let link = format!("http://127.0.0.1:{base}/api/v1/demo/stores/madrid-centro/link");
    let r = api
        .client
        .post(&link)
        .bearer_auth(TOKEN)
        .json(&json!({"online": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    api.eventually(10, "madrid offline at hq", async |a| {
        a.get(0, "/api/v1/stores")
            .await
            .is_some_and(|(_, s)| s[0]["online"] == false)
    })
    .await;
    let r = api
        .client
        .post(format!("http://127.0.0.1:{base}/api/v1/orders"))
        .bearer_auth(TOKEN)
        .header("idempotency-key", "it-offline")
        .json(&order)
        .send()
        .await
        .unwrap();
    let offline_status = r.status().as_u16();
    assert!(
        offline_status == 201 || offline_status == 409,
        "{offline_status}"
    );
    let r = api
        .client
        .post(&link)
        .bearer_auth(TOKEN)
        .json(&json!({"online": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let expected = before + 1 + u64::from(offline_status == 201);
    api.eventually(15, "the offline order at the store", async |a| {
        store_orders(a).await == expected
    })
    .await;
    api.eventually(15, "equal digests after the outage", async |a| {
        converged(a).await
    })
    .await;
    interrupt_and_wait(child);

    let mut child = start(dir.path(), base);
    api.wait_healthy(&mut child, dir.path()).await;
    let (status, again) = api.get(0, &format!("/api/v1/orders/{id}")).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(again["status"], "placed");
    api.eventually(10, "convergence after restart", async |a| {
        converged(a).await
    })
    .await;
    assert_eq!(store_orders(&api).await, expected, "no seeding twice");

    // A crash (SIGKILL) in the middle of a cash session loses nothing acknowledged.
    let (session, cash) = cash_in_the_middle_of_a_session(&api).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = start(dir.path(), base);
    api.wait_healthy(&mut child, dir.path()).await;
    let cookie = store_login(&api).await;
    assert_eq!(
        open_session(&api, &cookie).await,
        (session, cash),
        "the same session, expecting the same cash"
    );
    interrupt_and_wait(child);
}
