//! The MQTT connection of a sync engine: one task that owns rumqttc's event loop.
//!
//! It connects, subscribes, forwards incoming publishes to the engine, and reconnects with a
//! bounded exponential backoff. Each connection gets a fresh client and event loop, so no stale
//! request from a dead session is replayed (anti-entropy resends what matters). The engine only
//! ever calls `try_publish`, so this task is never blocked by a full request queue. Cutting the
//! link (`wanted = false`) drops the socket without a DISCONNECT, so the broker publishes the
//! Last Will exactly as it would for a real outage.
//!
//! The task polls rumqttc without pause, whatever the engine's pace: a link that waited for
//! room in the engine's queue would stop sending the engine's own publishes (HQ's acks) and
//! answering keep-alives, so a busy HQ would see every store resend its window and then lose
//! its connection. Incoming publishes wait in the task until the engine takes them and are
//! acknowledged to the broker only then (manual acks): the broker's in-flight limit bounds
//! what waits here, and the rest stays queued at the broker.

use super::broker::BROKER_PAYLOAD_BYTES_MAX;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, LastWill, MqttOptions, Packet, Publish, QoS};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Requests the engine may queue before `try_publish` reports a full queue.
pub const REQUEST_QUEUE_CAP: usize = 256;
/// First reconnect delay; doubles up to `RECONNECT_BACKOFF_MS_MAX`.
pub const RECONNECT_BACKOFF_MS_MIN: u64 = 100;
pub const RECONNECT_BACKOFF_MS_MAX: u64 = 5_000;
/// QoS 1 publishes in flight per connection.
const INFLIGHT_MAX: u16 = 100;

/// How to reach the broker and what to subscribe to.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub keepalive_s: u64,
    /// Retained Last Will (topic, payload).
    pub will: Option<(String, Vec<u8>)>,
    /// Filters subscribed at QoS 1 on every connection.
    pub subscriptions: Vec<String>,
}

/// What the link tells its engine.
#[derive(Debug)]
pub enum LinkEvent {
    /// Connected and subscribed; publish through this client until `Disconnected`.
    Connected(AsyncClient),
    /// The connection is gone (error, cut or shutdown).
    Disconnected,
    /// A message arrived.
    Publish { topic: String, payload: Vec<u8> },
}

fn options(cfg: &LinkConfig) -> MqttOptions {
    let mut opts = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    opts.set_keep_alive(Duration::from_secs(cfg.keepalive_s.max(5)));
    opts.set_clean_session(true);
    opts.set_inflight(INFLIGHT_MAX);
    opts.set_manual_acks(true);
    let packet_max = BROKER_PAYLOAD_BYTES_MAX + 4_096;
    opts.set_max_packet_size(packet_max, packet_max);
    if let Some((topic, payload)) = &cfg.will {
        opts.set_last_will(LastWill::new(
            topic.clone(),
            payload.clone(),
            QoS::AtLeastOnce,
            true,
        ));
    }
    opts
}

enum End {
    Shutdown,
    Cut,
    Failed,
}

/// Run the link until `shutdown` turns true. `wanted` false keeps it disconnected.
pub async fn run_link(
    cfg: LinkConfig,
    mut wanted: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
    events: mpsc::Sender<LinkEvent>,
) {
    let opts = options(&cfg);
    let mut backoff_ms = RECONNECT_BACKOFF_MS_MIN;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if !*wanted.borrow() {
            tokio::select! {
                r = shutdown.changed() => if r.is_err() { return },
                r = wanted.changed() => if r.is_err() { return },
            }
            continue;
        }
        let (client, mut eventloop) = AsyncClient::new(opts.clone(), REQUEST_QUEUE_CAP);
        // Small messages go out at once, not held back by Nagle behind an unacked segment.
        let mut net = eventloop.network_options();
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        // The engine was told `Connected`, so it must be told `Disconnected`.
        let mut connected = false;
        // Events the engine has not taken yet, each with the publish to acknowledge once it
        // has. Dropped with the connection: the broker forgets them too (clean session), and
        // the protocol resends what was not acknowledged.
        let mut waiting: VecDeque<(LinkEvent, Option<Publish>)> = VecDeque::new();
        // Publishes the engine took whose acknowledgement did not fit in rumqttc's request
        // queue yet (the engine's publishes share it); retried after every event.
        let mut unacked: VecDeque<Publish> = VecDeque::new();
        let end = loop {
            while let Some(publish) = unacked.front() {
                if client.try_ack(publish).is_err() {
                    break;
                }
                unacked.pop_front();
            }
            tokio::select! {
                _ = shutdown.changed() => break End::Shutdown,
                r = wanted.changed() => {
                    if r.is_err() { break End::Shutdown }
                    if !*wanted.borrow() { break End::Cut }
                }
                permit = events.reserve(), if !waiting.is_empty() => {
                    let Ok(permit) = permit else { return };
                    if let Some((ev, publish)) = waiting.pop_front() {
                        connected |= matches!(ev, LinkEvent::Connected(_));
                        permit.send(ev);
                        unacked.extend(publish);
                    }
                }
                ev = eventloop.poll() => match ev {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        if ack.code != ConnectReturnCode::Success {
                            tracing::warn!(code = ?ack.code, "broker refused the connection");
                            break End::Failed;
                        }
                        for filter in &cfg.subscriptions {
                            if let Err(e) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                                tracing::warn!(error = %e, filter, "cannot queue a subscription");
                            }
                        }
                        backoff_ms = RECONNECT_BACKOFF_MS_MIN;
                        waiting.push_back((LinkEvent::Connected(client.clone()), None));
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let ev = LinkEvent::Publish {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                        };
                        waiting.push_back((ev, Some(p)));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, broker = %format!("{}:{}", cfg.host, cfg.port), "mqtt connection lost");
                        break End::Failed;
                    }
                }
            }
        };
        drop(eventloop);
        drop(client);
        if connected && events.send(LinkEvent::Disconnected).await.is_err() {
            return;
        }
        match end {
            End::Shutdown => return,
            End::Cut => continue,
            End::Failed => {}
        }
        {
            tokio::select! {
                r = shutdown.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(Duration::from_millis(backoff_ms)) => {}
            }
            backoff_ms = (backoff_ms * 2).min(RECONNECT_BACKOFF_MS_MAX);
        }
    }
}
