//! An embedded MQTT 3.1.1 broker (rumqttd) for `storenode demo` and tests.
//!
//! rumqttd's `start()` blocks forever and has no shutdown, so it runs on its own thread for the
//! life of the process. It keeps everything in memory: retained messages and sessions vanish
//! with the process, which the sync protocol's anti-entropy does not mind.

use super::wire::PAYLOAD_BYTES_MAX;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Largest MQTT payload the embedded broker accepts: above `PAYLOAD_BYTES_MAX`, so that an
/// oversized payload reaches the node and is refused (and counted) there.
pub const BROKER_PAYLOAD_BYTES_MAX: usize = 4 * PAYLOAD_BYTES_MAX;
/// How long `start_embedded_broker` waits for the port to accept (generous: a loaded machine
/// can starve the broker's threads for seconds).
const START_TIMEOUT_MS: u64 = 15_000;
/// Fresh ports tried when the caller let us pick one: a reserved port can be taken by another
/// process between the reservation and the broker's own bind.
const PICKED_PORT_ATTEMPTS: u32 = 3;

/// Why the embedded broker did not start.
#[derive(Debug, Error)]
pub enum BrokerError {
    /// Port 0 was asked for and no free port could be reserved.
    #[error("no free port on {0}: {1}")]
    NoPort(SocketAddr, std::io::Error),
    /// The broker thread could not be spawned.
    #[error("cannot spawn the broker thread: {0}")]
    Thread(std::io::Error),
    /// The port did not accept connections in time (taken, or the broker failed).
    #[error("embedded broker did not accept on {addr} within {ms} ms")]
    NotListening { addr: SocketAddr, ms: u64 },
}

fn config(addr: SocketAddr) -> Config {
    let server = ServerSettings {
        name: "v4-embedded".to_string(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: BROKER_PAYLOAD_BYTES_MAX,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_000,
            max_outgoing_packet_count: 200,
            max_segment_size: 104_857_600,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Config::default()
    }
}

/// Start a broker on `addr` (port 0 picks a free port) and return the address once it accepts.
pub fn start_embedded_broker(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    if addr.port() != 0 {
        return start_on(addr);
    }
    let mut last = None;
    for _ in 0..PICKED_PORT_ATTEMPTS {
        // rumqttd cannot report the port it bound, so reserve one and hand it over.
        let probe = TcpListener::bind(addr).map_err(|e| BrokerError::NoPort(addr, e))?;
        let picked = probe
            .local_addr()
            .map_err(|e| BrokerError::NoPort(addr, e))?;
        drop(probe);
        match start_on(picked) {
            Ok(addr) => return Ok(addr),
            Err(e @ BrokerError::NotListening { .. }) => {
                tracing::warn!(error = %e, "embedded broker did not come up; trying another port");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(BrokerError::NotListening {
        addr,
        ms: START_TIMEOUT_MS,
    }))
}

/// Start a broker bound to exactly `addr` and wait until it answers MQTT.
fn start_on(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let cfg = config(addr);
    std::thread::Builder::new()
        .name(format!("mqtt-broker-{}", addr.port()))
        .spawn(move || {
            let mut broker = Broker::new(cfg);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, %addr, "embedded broker stopped");
            }
        })
        .map_err(BrokerError::Thread)?;
    let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
    while Instant::now() < deadline {
        if answers_mqtt(addr) {
            return Ok(addr);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotListening {
        addr,
        ms: START_TIMEOUT_MS,
    })
}

/// MQTT 3.1.1 CONNECT of the readiness probe: clean session, keep-alive 10 s, client id
/// `storenode-probe`.
const PROBE_CONNECT: &[u8] = &[
    0x10, 27, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10, 0, 15, b's', b't', b'o', b'r', b'e',
    b'n', b'o', b'd', b'e', b'-', b'p', b'r', b'o', b'b', b'e',
];
/// Whether the broker at `addr` accepts an MQTT session. The probe completes CONNECT/CONNACK and
/// then just closes: a bare TCP connect makes rumqttd log an ERROR ("connect packet"), and so
/// does a DISCONNECT before the close (it handles the disconnection twice).
fn answers_mqtt(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let timeout = Some(Duration::from_millis(500));
    let mut connack = [0u8; 4];
    s.set_read_timeout(timeout).is_ok()
        && s.write_all(PROBE_CONNECT).is_ok()
        && s.read_exact(&mut connack).is_ok()
        && connack[0] == 0x20
}
