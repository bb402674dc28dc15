//! Sync against a real mosquitto, started by each test on its own port.

mod sync_support;

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
