//! Sync through the embedded broker (rumqttd), each test on its own port.

mod sync_support;

use sync_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_sales_flow_between_hq_and_stores_over_the_embedded_broker() {
    orders_and_sales_flow_within_a_second(embedded_broker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_over_the_embedded_broker_never_oversells_and_converges() {
    a_cut_link_keeps_both_sides_selling_without_oversell(embedded_broker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_over_the_embedded_broker_are_refused_and_counted() {
    bad_payloads_are_refused_counted_and_change_nothing(embedded_broker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_data_follows_the_customer_into_a_stores_scope_over_the_embedded_broker() {
    customer_data_follows_the_customer_into_a_stores_scope(embedded_broker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_and_counts_trigger_reactions_over_the_embedded_broker() {
    cancellations_and_counts_trigger_the_right_reactions(embedded_broker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_every_node_resumes_sync_over_the_embedded_broker() {
    a_restart_of_every_node_resumes_where_sync_stopped(embedded_broker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_added_later_gets_the_whole_catalog_over_the_embedded_broker() {
    a_store_added_later_gets_the_whole_catalog(embedded_broker()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_backlog_drains_in_bounded_batches_over_the_embedded_broker() {
    a_long_outage_backlog_drains_in_bounded_batches(embedded_broker()).await;
}
