//! `[mqtt]` and `[http]`: where a node's broker is and where its HTTP server listens.

use super::{push, ConfigError};
use serde::Deserialize;
use std::net::SocketAddr;

/// MQTT broker connection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    /// Defaults to `storenode-<store>` or `storenode-hq`.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default = "default_keepalive_s")]
    pub keepalive_s: u16,
}

fn default_keepalive_s() -> u16 {
    30
}

/// Where the HTTP server listens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

pub(super) fn check_mqtt(mqtt: &MqttConfig, errs: &mut Vec<ConfigError>) {
    if mqtt.host.trim().is_empty() {
        push(errs, "mqtt.host", "must not be empty");
    }
    if mqtt.port == 0 {
        push(errs, "mqtt.port", "must be 1-65535, got 0");
    }
    if !(5..=3600).contains(&mqtt.keepalive_s) {
        push(
            errs,
            "mqtt.keepalive_s",
            format!("must be 5-3600, got {}", mqtt.keepalive_s),
        );
    }
    if let Some(id) = &mqtt.client_id {
        if id.is_empty() || id.len() > 64 {
            push(errs, "mqtt.client_id", "must be 1-64 characters");
        }
    }
}
