//! Sync against a real mosquitto, started by each test on its own port.

mod sync_support;

use std::time::Duration;
use sync_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_sales_flow_between_hq_and_stores_over_mosquitto() {
    let broker = Mosquitto::start();
    orders_and_sales_flow_within_a_second(broker.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_over_mosquitto_never_oversells_and_converges() {
    let broker = Mosquitto::start();
    a_cut_link_keeps_both_sides_selling_without_oversell(broker.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_killed_mid_stream_loses_nothing() {
    let mut broker = Mosquitto::start();
    a_broker_killed_mid_stream_loses_nothing(&mut broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_over_mosquitto_are_refused_and_counted() {
    let broker = Mosquitto::start();
    bad_payloads_are_refused_counted_and_change_nothing(broker.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_data_follows_the_customer_into_a_stores_scope_over_mosquitto() {
    let broker = Mosquitto::start();
    customer_data_follows_the_customer_into_a_stores_scope(broker.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_and_counts_trigger_reactions_over_mosquitto() {
    let broker = Mosquitto::start();
    cancellations_and_counts_trigger_the_right_reactions(broker.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_every_node_resumes_sync_over_mosquitto() {
    let broker = Mosquitto::start();
    a_restart_of_every_node_resumes_where_sync_stopped(broker.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_backlog_drains_in_bounded_batches_over_mosquitto() {
    let broker = Mosquitto::start();
    a_long_outage_backlog_drains_in_bounded_batches(broker.port).await;
}

/// A raw client on `port` that forwards every message of `filter` it receives.
async fn observer(port: u16, filter: &str) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let (client, mut eventloop) = AsyncClient::new(
        MqttOptions::new(format!("observer-{filter}"), "127.0.0.1", port),
        64,
    );
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let mut subscribed_tx = Some(subscribed_tx);
    tokio::spawn(async move {
        let _client = client;
        while let Ok(ev) = eventloop.poll().await {
            match ev {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let _ = tx.send(p.payload.to_vec());
                }
                _ => {}
            }
        }
    });
    subscribed.await.unwrap();
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_engine_is_busy_still_sends_its_publishes_and_later_hands_over_every_message()
{
    use rumqttc::{AsyncClient, MqttOptions, QoS};
    use storenode::sync::link::{run_link, LinkConfig, LinkEvent};
    const MESSAGES: u32 = 300;
    const PROBE: &[u8] = b"probe";
    let broker = Mosquitto::start();
    let mut sent_out = observer(broker.port, "t/out").await;
    // An engine that takes one event and then stops reading: the link's queue holds one more.
    let (events_tx, mut events) = tokio::sync::mpsc::channel(1);
    let (_wanted_tx, wanted) = tokio::sync::watch::channel(true);
    let (shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    let cfg = LinkConfig {
        host: "127.0.0.1".into(),
        port: broker.port,
        client_id: "busy-engine".into(),
        keepalive_s: 5,
        will: None,
        subscriptions: vec!["t/in".into()],
    };
    let link = tokio::spawn(run_link(cfg, wanted, shutdown, events_tx));
    let Some(LinkEvent::Connected(client)) = events.recv().await else {
        panic!("the link's first event is Connected");
    };
    let mut inbound = observer(broker.port, "t/in").await;
    let (publisher, mut publisher_loop) =
        AsyncClient::new(MqttOptions::new("publisher", "127.0.0.1", broker.port), 512);
    tokio::spawn(async move { while publisher_loop.poll().await.is_ok() {} });
    // The link's subscription is in place once a probe reaches the engine.
    loop {
        publisher
            .publish("t/in", QoS::AtLeastOnce, false, PROBE.to_vec())
            .await
            .unwrap();
        if let Ok(ev) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            assert!(matches!(ev, Some(LinkEvent::Publish { .. })), "{ev:?}");
            break;
        }
    }
    for i in 0..MESSAGES {
        publisher
            .publish("t/in", QoS::AtLeastOnce, false, i.to_be_bytes().to_vec())
            .await
            .unwrap();
    }
    let mut delivered = 0;
    while delivered < MESSAGES {
        let m = tokio::time::timeout(Duration::from_secs(10), inbound.recv())
            .await
            .expect("the broker delivers the burst")
            .unwrap();
        delivered += u32::from(m != PROBE);
    }
    wait_for(Duration::from_secs(10), "the link's queue to fill", || {
        events.len() == events.max_capacity()
    })
    .await;

    // The engine, still not reading, publishes: the link sends it at once.
    client
        .try_publish("t/out", QoS::AtLeastOnce, false, b"ack".to_vec())
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(5), sent_out.recv())
        .await
        .expect("a link whose engine is behind still sends the engine's publishes");
    assert_eq!(out.unwrap(), b"ack".to_vec());

    // When the engine reads again, every message is there, once, in order (after any
    // probes that were still on their way).
    let mut next = 0;
    while next < MESSAGES {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("every message reaches the engine")
            .unwrap();
        let LinkEvent::Publish { topic, payload } = ev else {
            panic!("message {next}: expected a publish, got {ev:?}");
        };
        assert_eq!(topic, "t/in");
        if payload != PROBE {
            assert_eq!(payload, next.to_be_bytes().to_vec(), "message {next}");
            next += 1;
        }
    }
    shutdown_tx.send(true).unwrap();
    link.await.unwrap();
}
