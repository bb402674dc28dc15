//! Shared helpers of the browser tests: chromedriver started on a free port and killed at the
//! end, a headless Chromium session, and a page wrapper that waits for elements and text
//! (polling with a deadline, never a fixed sleep) and saves screenshots under
//! `target/screenshots/`.
#![allow(dead_code)]

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const WAIT: Duration = Duration::from_secs(15);
pub const ENTER: &str = "\u{E007}";

/// Kills chromedriver (which we started) when the test ends, passing or not.
pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn start_driver() -> (Driver, String) {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            std::path::Path::new(bin).exists(),
            "{bin} is missing: run `apt-get install chromium chromium-driver` (.ci/run installs them)"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (driver, format!("http://127.0.0.1:{port}"))
}

pub async fn connect(webdriver: &str, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1280,900", "--lang=es-ES", "--autoplay-policy=no-user-gesture-required",
            ]
        }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(webdriver)
        .await
        .expect("chromedriver session")
}

pub struct Page {
    pub c: Client,
    pub lang: &'static str,
    pub shots: PathBuf,
    pub n: u32,
}

impl Page {
    pub async fn shot(&mut self, name: &str) {
        self.n += 1;
        // Let CSS transitions settle before the picture (not synchronisation: state is awaited).
        tokio::time::sleep(Duration::from_millis(350)).await;
        let png = self.c.screenshot().await.unwrap();
        let path = self
            .shots
            .join(format!("{}-{:02}-{name}.png", self.lang, self.n));
        std::fs::write(&path, png).unwrap();
    }

    pub async fn el(&self, css: &str) -> fantoccini::elements::Element {
        self.c
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
    }

    pub async fn click(&self, css: &str) {
        self.el(css).await.click().await.unwrap();
    }

    pub async fn body_text(&self) -> String {
        let v = self
            .c
            .execute("return document.body.innerText", vec![])
            .await
            .unwrap();
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn wait_text(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.body_text().await;
            if text.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never shown; page:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn scan(&self, code: &str) {
        let input = self.el("#scan").await;
        input.send_keys(&format!("{code}{ENTER}")).await.unwrap();
    }
}
