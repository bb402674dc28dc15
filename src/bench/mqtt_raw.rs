//! The transport limit: plain rumqttc publish -> broker -> rumqttc subscriber on the same
//! broker, QoS 1, no storage and no sync protocol.

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const TOPIC: &str = "bench/raw";
/// Longest wait for one message before the measurement is abandoned.
const RECEIVE_TIMEOUT_MS: u64 = 5_000;

/// A connected client whose event loop runs on its own task; publishes arrive on `incoming`.
struct Client {
    client: AsyncClient,
    incoming: mpsc::UnboundedReceiver<Instant>,
}

async fn connect(port: u16, id: &str, subscribe: bool) -> anyhow::Result<Client> {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let (tx, incoming) = mpsc::unbounded_channel();
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(_))) => {
                    if tx.send(Instant::now()).is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_)))
                | Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    if subscribe {
        client.subscribe(TOPIC, QoS::AtLeastOnce).await?;
    }
    let expect = if subscribe { 2 } else { 1 };
    for _ in 0..expect {
        tokio::time::timeout(Duration::from_millis(RECEIVE_TIMEOUT_MS), ready.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("mqtt client {id} disconnected"))?;
    }
    Ok(Client { client, incoming })
}

/// Publish -> receive times of `count` messages of `bytes`, one at a time (sorted, ms).
pub async fn round_trips_ms(port: u16, bytes: usize, count: usize) -> anyhow::Result<Vec<f64>> {
    round_trips_paced_ms(port, bytes, count, Duration::ZERO).await
}

/// Like `round_trips_ms`, one message every `every` (a run's rate, for its length): a broker
/// and a scheduler woken hundreds of times a second have a tail that a burst of back-to-back
/// trips does not show.
pub async fn round_trips_paced_ms(
    port: u16,
    bytes: usize,
    count: usize,
    every: Duration,
) -> anyhow::Result<Vec<f64>> {
    let mut sub = connect(port, "bench-raw-sub", true).await?;
    let publisher = connect(port, "bench-raw-pub", false).await?;
    let payload = vec![0x5au8; bytes];
    let mut samples = Vec::with_capacity(count);
    let first = Instant::now();
    for i in 0..count {
        tokio::time::sleep_until((first + every * i as u32).into()).await;
        let sent = Instant::now();
        publisher
            .client
            .publish(TOPIC, QoS::AtLeastOnce, false, payload.clone())
            .await?;
        let got = tokio::time::timeout(
            Duration::from_millis(RECEIVE_TIMEOUT_MS),
            sub.incoming.recv(),
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("subscriber disconnected"))?;
        samples.push(got.duration_since(sent).as_secs_f64() * 1e3);
    }
    let _ = publisher.client.disconnect().await;
    let _ = sub.client.disconnect().await;
    samples.sort_by(f64::total_cmp);
    Ok(samples)
}

/// Time to move `messages` messages of `bytes` each, pipelined, until all are received.
pub async fn pipelined(port: u16, bytes: usize, messages: usize) -> anyhow::Result<Duration> {
    let mut sub = connect(port, "bench-bulk-sub", true).await?;
    let publisher = connect(port, "bench-bulk-pub", false).await?;
    let payload = vec![0x5au8; bytes];
    let started = Instant::now();
    let sender = {
        let client = publisher.client.clone();
        tokio::spawn(async move {
            for _ in 0..messages {
                client
                    .publish(TOPIC, QoS::AtLeastOnce, false, payload.clone())
                    .await?;
            }
            anyhow::Ok(())
        })
    };
    for _ in 0..messages {
        tokio::time::timeout(
            Duration::from_millis(RECEIVE_TIMEOUT_MS),
            sub.incoming.recv(),
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("subscriber disconnected"))?;
    }
    let elapsed = started.elapsed();
    sender.await??;
    let _ = publisher.client.disconnect().await;
    let _ = sub.client.disconnect().await;
    Ok(elapsed)
}
