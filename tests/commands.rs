//! Black-box tests of `storenode check-config`, `storenode hq` and `storenode run`: the real
//! binary, temporary files, free ports, SIGINT to stop.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_storenode"))
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
        .display()
        .to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn interrupt_and_wait(mut child: Child) {
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exited with {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not stop within 20 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_health(port: u16, child: &mut Child) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .and_then(|mut s| {
                use std::io::{Read, Write};
                s.write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
                    .ok()?;
                let mut out = String::new();
                s.read_to_string(&mut out).ok()?;
                let body = out.split("\r\n\r\n").nth(1)?.to_string();
                serde_json::from_str(&body).ok()
            });
        if let Some(v) = got {
            return v;
        }
        assert!(child.try_wait().unwrap().is_none(), "exited early");
        assert!(Instant::now() < deadline, "no /healthz in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn check_config_accepts_both_examples() {
    for (file, line) in [
        ("store.example.toml", "ok: store madrid-centro"),
        ("hq.example.toml", "ok: hq chain demo (2 stores)"),
    ] {
        let out = bin()
            .args(["check-config", &example(file)])
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), line);
    }
}

#[test]
fn check_config_names_each_bad_key_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("store.example.toml"))
        .unwrap()
        .replace("expire_after_days = 7", "expire_after_days = 0")
        .replace("hq_share_percent = 30", "hq_share_percent = 101");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let out = bin().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("allocation.hq_share_percent: must be 0-100, got 101"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pickup.expire_after_days: must be 1-365, got 0"),
        "{stdout}"
    );
}

#[test]
fn hq_serves_healthz_and_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = std::fs::read_to_string(example("hq.example.toml"))
        .unwrap()
        .replace(
            "/var/lib/storenode/hq.db",
            &dir.path().join("hq.db").display().to_string(),
        )
        .replace("0.0.0.0:8080", &format!("127.0.0.1:{port}"));
    let path = dir.path().join("hq.toml");
    std::fs::write(&path, text).unwrap();
    let mut child = bin()
        .args(["hq", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let health = wait_for_health(port, &mut child);
    assert_eq!(health["role"], "hq");
    interrupt_and_wait(child);
    assert!(dir.path().join("hq.db").exists());
}

#[test]
fn run_serves_the_store_healthz_and_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = std::fs::read_to_string(example("store.example.toml"))
        .unwrap()
        .replace("/var/lib/storenode", &dir.path().display().to_string())
        .replace("0.0.0.0:8081", &format!("127.0.0.1:{port}"));
    let path = dir.path().join("store.toml");
    std::fs::write(&path, text).unwrap();
    let mut child = bin()
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let health = wait_for_health(port, &mut child);
    assert_eq!(health["store"], "madrid-centro");
    interrupt_and_wait(child);
}

/// One raw HTTP/1.0 GET: (status, header block, body).
fn http_get(port: u16, path: &str, token: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn hq_limits_wrong_tokens_per_client_address_from_its_config_and_sends_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = std::fs::read_to_string(example("hq.example.toml"))
        .unwrap()
        .replace(
            "/var/lib/storenode/hq.db",
            &dir.path().join("hq.db").display().to_string(),
        )
        .replace("0.0.0.0:8080", &format!("127.0.0.1:{port}"))
        .replace("unauthenticated_burst = 20", "unauthenticated_burst = 2");
    let path = dir.path().join("hq.toml");
    std::fs::write(&path, text).unwrap();
    let mut child = bin()
        .args(["hq", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_health(port, &mut child);
    for _ in 0..2 {
        let (status, head, body) = http_get(port, "/api/v1/stores", "wrong-token-xyz");
        assert_eq!(status, 401, "{body}");
        assert!(head.contains("x-frame-options: deny"), "{head}");
        assert!(head.contains("cache-control: no-store"), "{head}");
    }
    let (status, head, body) = http_get(port, "/api/v1/stores", "wrong-token-xyz");
    assert_eq!(status, 429, "{body}");
    assert!(head.contains("retry-after: "), "{head}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "rate_limited");
    // The shop's token has its own budget.
    let (status, head, _) = http_get(port, "/api/v1/stores", "change-me-long-random-token");
    assert_eq!(status, 200);
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    interrupt_and_wait(child);
}

/// One raw HTTP/1.0 POST of a JSON body: (status, header block, body).
fn http_post_json(port: u16, path: &str, body: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn run_sets_a_secure_cookie_when_configured_limits_logins_per_address_and_sends_headers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = std::fs::read_to_string(example("store.example.toml"))
        .unwrap()
        .replace("/var/lib/storenode", &dir.path().display().to_string())
        .replace("0.0.0.0:8081", &format!("127.0.0.1:{port}"))
        .replace("login_burst = 20", "login_burst = 2")
        .replace("secure_cookie = false", "secure_cookie = true");
    let path = dir.path().join("store.toml");
    std::fs::write(&path, text).unwrap();
    let mut child = bin()
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_health(port, &mut child);
    // The store's own endpoints and the terminal page carry the security headers.
    for page in ["/healthz", "/"] {
        let (status, head, _) = http_get(port, page, "");
        assert_eq!(status, 200, "{page}");
        assert!(head.contains("x-frame-options: deny"), "{page}: {head}");
        assert!(
            head.contains("x-content-type-options: nosniff"),
            "{page}: {head}"
        );
        assert!(head.contains("content-security-policy: "), "{page}: {head}");
    }
    let (status, head, body) = http_post_json(
        port,
        "/api/v1/session",
        r#"{"staff": "1001", "pin": "1234"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie: "))
        .unwrap_or_default()
        .to_string();
    for attr in ["httponly", "samesite=strict", "path=/", "secure"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(head.contains("cache-control: no-store"), "{head}");
    let (status, _, _) = http_post_json(
        port,
        "/api/v1/session",
        r#"{"staff": "1001", "pin": "0000"}"#,
    );
    assert_eq!(status, 401);
    let (status, head, body) = http_post_json(
        port,
        "/api/v1/session",
        r#"{"staff": "1001", "pin": "1234"}"#,
    );
    assert_eq!(status, 429, "{body}");
    assert!(head.contains("retry-after: "), "{head}");
    assert!(body.contains("\"rate_limited\""), "{body}");
    interrupt_and_wait(child);
}

#[test]
fn migrate_without_actor_on_a_new_file_says_so_in_help_and_in_the_error() {
    let help = bin().args(["migrate", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Required for a new file"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let out = bin().args(["migrate", "--db"]).arg(&db).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a new database"), "{err}");
    assert!(err.contains("--actor hq or --actor store:<id>"), "{err}");
    assert!(!db.exists(), "nothing is created");
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "soak",
            "--ops",
            "2",
            "--writers",
            "1",
            "--actor",
            "store:norte",
        ])
        .arg("--unsafe-synchronous-off")
        .arg("--db")
        .arg(dir.path().join("soak.db"))
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("synchronous=OFF"), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");
}

#[test]
fn hash_password_prints_an_argon2_hash_the_console_accepts_and_refuses_an_empty_line() {
    use std::io::Write as _;
    let run = |input: &str| {
        let mut child = bin()
            .arg("hash-password")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run("correct horse battery\n");
    assert!(out.status.success(), "{out:?}");
    let hash = String::from_utf8(out.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let auth = storenode::hq::console::ConsoleAuth::new(storenode::config::ConsoleConfig {
        accounts: vec![storenode::config::ConsoleAccount {
            user: "ana".into(),
            name: "Ana".into(),
            role: storenode::config::ConsoleRole::Admin,
            password_hash: hash.to_string(),
        }],
        ..Default::default()
    });
    assert!(auth.login("ana", "correct horse battery", 0).is_ok());
    let empty = run("\n");
    assert_eq!(empty.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no password given"));
}
