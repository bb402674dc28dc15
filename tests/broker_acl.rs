//! The shipped broker hardening works: mosquitto runs with deploy/mosquitto/mosquitto.conf
//! (TLS, client certificates required, certificate CN as username) and deploy/mosquitto/acl,
//! with certificates from deploy/make-test-ca.sh, and real rumqttc clients show that a store
//! cannot publish on another store's topics nor read another store's down topic.
//!
//! Absence is shown without waiting for a timeout: after the message that must not arrive,
//! the same publisher sends a marker the subscriber may receive; MQTT keeps one publisher's
//! order, so once the marker is in, the forbidden message would have been in before it.

use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode, TlsConfiguration, Transport,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const CHAIN: &str = "chain-es";
const A: &str = "madrid-centro";
const B: &str = "sevilla-nervion";
const WAIT: Duration = Duration::from_secs(15);

fn topic(store: &str, kind: &str) -> String {
    format!("storenode/v1/{CHAIN}/store/{store}/{kind}")
}

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

fn mosquitto() -> PathBuf {
    for p in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("mosquitto is not installed: run `apt-get update && apt-get install -y mosquitto`");
}

/// A mosquitto child process with the shipped config; killed on drop.
struct Broker {
    child: Child,
    port: u16,
    certs: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self._dir.path().join("mosquitto.log"));
            eprintln!("mosquitto log:\n{}", log.unwrap_or_default());
        }
    }
}

/// The shipped mosquitto.conf with this test's port, certificate paths and no persistence.
fn test_config(port: u16, certs: &Path) -> String {
    let shipped = std::fs::read_to_string(deploy("mosquitto/mosquitto.conf")).unwrap();
    let mut out = Vec::new();
    for line in shipped.lines() {
        let key = line.split_whitespace().next().unwrap_or("");
        let file = |name: &str| certs.join(name).display().to_string();
        out.push(match key {
            "listener" => format!("listener {port} 127.0.0.1"),
            "cafile" => format!("cafile {}", file("ca.crt")),
            "certfile" => format!("certfile {}", file("broker.crt")),
            "keyfile" => format!("keyfile {}", file("broker.key")),
            "acl_file" => format!("acl_file {}", deploy("mosquitto/acl").display()),
            "persistence" => "persistence false".into(),
            "persistence_location" | "autosave_interval" => continue,
            "log_dest" => "log_dest stderr".into(),
            _ => line.to_string(),
        });
    }
    // Running as root in CI: stay root so the broker can read the temp key files.
    out.push("user root".into());
    out.join("\n") + "\n"
}

fn start_broker() -> Broker {
    let bin = mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let made = Command::new("bash")
        .arg(deploy("make-test-ca.sh"))
        .arg(&certs)
        .args([A, B])
        .output()
        .expect("run deploy/make-test-ca.sh (needs openssl)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(&conf, test_config(port, &certs)).unwrap();
    let log = std::fs::File::create(dir.path().join("mosquitto.log")).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start mosquitto");
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "mosquitto did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Broker {
        child,
        port,
        certs,
        _dir: dir,
    }
}

#[derive(Debug)]
enum Ev {
    Connected,
    SubAck(Vec<SubscribeReasonCode>),
    PubAck,
    Publish(String, Vec<u8>),
    Error(String),
}

/// A connected client; `cert` is `hq`, `store-<id>` or `None` (no client certificate).
struct Client {
    mqtt: AsyncClient,
    events: mpsc::UnboundedReceiver<Ev>,
    seen: Vec<(String, Vec<u8>)>,
}

fn connect(broker: &Broker, id: &str, cert: Option<&str>) -> Client {
    let read = |name: &str| std::fs::read(broker.certs.join(name)).unwrap();
    let mut opts = MqttOptions::new(id, "localhost", broker.port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca: read("ca.crt"),
        alpn: None,
        client_auth: cert.map(|c| (read(&format!("{c}.crt")), read(&format!("{c}.key")))),
    }));
    let (mqtt, mut eventloop) = AsyncClient::new(opts, 64);
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let ev = match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => Ev::Connected,
                Ok(Event::Incoming(Packet::SubAck(s))) => Ev::SubAck(s.return_codes),
                Ok(Event::Incoming(Packet::Publish(p))) => Ev::Publish(p.topic, p.payload.to_vec()),
                Ok(Event::Incoming(Packet::PubAck(_))) => Ev::PubAck,
                Ok(_) => continue,
                Err(e) => {
                    let _ = tx.send(Ev::Error(e.to_string()));
                    return;
                }
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    Client {
        mqtt,
        events,
        seen: Vec::new(),
    }
}

impl Client {
    async fn next(&mut self) -> Ev {
        let ev = tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("no MQTT event in time")
            .expect("event loop ended");
        if let Ev::Publish(t, p) = &ev {
            self.seen.push((t.clone(), p.clone()));
        }
        ev
    }

    async fn connected(mut self) -> Client {
        match self.next().await {
            Ev::Connected => self,
            other => panic!("expected a connection, got {other:?}"),
        }
    }

    /// Subscribe and return the broker's verdict per filter.
    async fn subscribe(&mut self, filters: &[&str]) -> Vec<SubscribeReasonCode> {
        for f in filters {
            self.mqtt.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
        }
        let mut codes = Vec::new();
        while codes.len() < filters.len() {
            if let Ev::SubAck(c) = self.next().await {
                codes.extend(c);
            }
        }
        codes
    }

    async fn publish(&self, topic: &str, payload: &str) {
        self.mqtt
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
    }

    /// Wait until `payload` arrives; everything received until then stays in `seen`.
    async fn wait_for(&mut self, payload: &str) {
        while !self.seen.iter().any(|(_, p)| p == payload.as_bytes()) {
            if let Ev::Error(e) = self.next().await {
                panic!("connection failed while waiting for {payload}: {e}");
            }
        }
    }

    /// Publish and wait until the broker has processed it (its PUBACK arrived). mosquitto
    /// 2.0.11 answers a denied publish with a PUBACK carrying reason code 135 even on MQTT
    /// 3.1.1, which rumqttc's v4 parser refuses, dropping the connection: that error is
    /// also proof the broker processed (and denied) the publish.
    async fn publish_processed(&mut self, topic: &str, payload: &str) {
        self.publish(topic, payload).await;
        loop {
            match self.next().await {
                Ev::PubAck | Ev::Error(_) => return,
                _ => {}
            }
        }
    }

    fn got(&self, payload: &str) -> bool {
        self.seen.iter().any(|(_, p)| p == payload.as_bytes())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_cannot_publish_on_another_stores_topics() {
    let broker = start_broker();
    let mut hq = connect(&broker, "hq-1", Some("hq")).connected().await;
    let a = connect(&broker, "store-a", Some(&format!("store-{A}")))
        .connected()
        .await;
    let mut b = connect(&broker, "store-b", Some(&format!("store-{B}")))
        .connected()
        .await;
    hq.subscribe(&[
        "storenode/v1/+/store/+/up",
        "storenode/v1/+/store/+/status",
        "storenode/v1/+/store/+/lookup",
    ])
    .await;
    b.subscribe(&[&topic(B, "down")]).await;

    // A forges B's uplink, B's status and B's customer lookup (each on its own connection, see
    // `publish_processed`), then sends its own batch as a marker.
    for (t, payload) in [
        (topic(B, "up"), "forged-up"),
        (topic(B, "status"), "forged-status"),
        (topic(B, "lookup"), "forged-lookup"),
    ] {
        let mut forger = connect(&broker, "store-a-forger", Some(&format!("store-{A}")))
            .connected()
            .await;
        forger.publish_processed(&t, payload).await;
    }
    a.publish(&topic(A, "up"), "a-batch").await;
    hq.wait_for("a-batch").await;
    assert!(
        !hq.got("forged-up") && !hq.got("forged-status") && !hq.got("forged-lookup"),
        "{:?}",
        hq.seen
    );

    // B's own uplink and lookups still work.
    b.publish(&topic(B, "up"), "b-batch").await;
    hq.wait_for("b-batch").await;
    b.publish(&topic(B, "lookup"), "b-lookup").await;
    hq.wait_for("b-lookup").await;

    // A forges HQ's downlink to B; HQ's genuine message is the marker.
    let mut forger = connect(&broker, "store-a-forger", Some(&format!("store-{A}")))
        .connected()
        .await;
    forger
        .publish_processed(&topic(B, "down"), "forged-down")
        .await;
    hq.publish(&topic(B, "down"), "hq-down").await;
    b.wait_for("hq-down").await;
    assert!(!b.got("forged-down"), "{:?}", b.seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_cannot_read_another_stores_down_topic() {
    let broker = start_broker();
    let hq = connect(&broker, "hq-1", Some("hq")).connected().await;
    let mut a = connect(&broker, "store-a", Some(&format!("store-{A}")))
        .connected()
        .await;
    let mut b = connect(&broker, "store-b", Some(&format!("store-{B}")))
        .connected()
        .await;
    let codes = a
        .subscribe(&[&topic(B, "down"), "storenode/v1/#", &topic(A, "down")])
        .await;
    assert_eq!(codes[2], SubscribeReasonCode::Success(QoS::AtLeastOnce));
    b.subscribe(&[&topic(B, "down")]).await;

    hq.publish(&topic(B, "down"), "b-customer-data").await;
    hq.publish(&topic(A, "down"), "a-marker").await;
    b.wait_for("b-customer-data").await;
    a.wait_for("a-marker").await;
    assert!(
        !a.got("b-customer-data"),
        "A read B's down topic: {:?}",
        a.seen
    );
    // Nor B's uplink through the wildcard.
    b.publish(&topic(B, "up"), "b-sales").await;
    hq.publish(&topic(A, "down"), "a-marker-2").await;
    a.wait_for("a-marker-2").await;
    assert!(!a.got("b-sales"), "{:?}", a.seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_from_our_ca_is_refused() {
    let broker = start_broker();
    let mut anonymous = connect(&broker, "nobody", None);
    match anonymous.next().await {
        Ev::Error(_) => {}
        other => panic!("connected without a client certificate: {other:?}"),
    }
    // A certificate from another CA is refused too.
    let other = tempfile::tempdir().unwrap();
    let made = Command::new("bash")
        .arg(deploy("make-test-ca.sh"))
        .arg(other.path())
        .arg(A)
        .output()
        .unwrap();
    assert!(made.status.success());
    let mut opts = MqttOptions::new("impostor", "localhost", broker.port);
    let read = |name: &str| std::fs::read(other.path().join(name)).unwrap();
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
        ca: std::fs::read(broker.certs.join("ca.crt")).unwrap(),
        alpn: None,
        client_auth: Some((
            read(&format!("store-{A}.crt")),
            read(&format!("store-{A}.key")),
        )),
    }));
    let (_client, mut eventloop) = AsyncClient::new(opts, 8);
    let first = tokio::time::timeout(WAIT, eventloop.poll()).await.unwrap();
    assert!(
        !matches!(first, Ok(Event::Incoming(Packet::ConnAck(_)))),
        "a foreign CA's certificate was accepted"
    );
}
