//! The master's metrics, for tests that wait on what the cluster is doing (a request in
//! flight, a handoff made) rather than on a fixed sleep. The cluster must run with
//! `CLUSTER_METRICS_ADDR=127.0.0.1:0`.

use std::net::SocketAddr;
use std::time::Duration;

use clustered_core::shared_metrics::{Sample, parse_exposition};

use crate::http::get;
use crate::process::ClusterProcess;

/// How long [`wait_for_metric`] waits at most.
const METRIC_WAIT: Duration = Duration::from_secs(20);

impl ClusterProcess {
    /// The master's metrics address, from its `metrics on http://ADDR/metrics` line (as text,
    /// or inside a JSON line's `msg`).
    pub fn metrics_address(&self) -> SocketAddr {
        let lines = self.stdout_lines();
        let address = lines
            .iter()
            .find_map(|line| {
                let (_, after) = line.split_once("metrics on http://")?;
                after
                    .split_once("/metrics")
                    .map(|(address, _)| address.to_owned())
            })
            .unwrap_or_else(|| panic!("no `metrics on` line (CLUSTER_METRICS_ADDR?) in {lines:?}"));
        address.parse().expect("an address")
    }
}

/// The samples the master serves at `/metrics`, parsed strictly.
pub async fn scrape(address: SocketAddr) -> Vec<Sample> {
    let reply = get(address, "/metrics").await;
    assert_eq!(reply.status, 200);
    parse_exposition(&reply.body).unwrap_or_else(|error| panic!("{error} in:\n{}", reply.body))
}

/// The value of the samples `name` with (at least) `labels`, summed.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|sample| sample.name == name)
        .filter(|sample| {
            labels
                .iter()
                .all(|(label, value)| sample.labels.iter().any(|(l, v)| l == label && v == value))
        })
        .map(|sample| sample.value)
        .sum()
}

/// Waits (at most 20 s) until the master's `name` (summed over its samples) is at least
/// `at_least`; returns the value seen last.
pub async fn wait_for_metric(address: SocketAddr, name: &str, at_least: f64) -> f64 {
    let samples = wait_for_samples(address, name, &[], at_least).await;
    value(&samples, name, &[])
}

/// Waits (at most 20 s) until the master's `name` with `labels` (summed) is at least
/// `at_least`; returns every sample of the last scrape, to read that one and others from.
pub async fn wait_for_samples(
    address: SocketAddr,
    name: &str,
    labels: &[(&str, &str)],
    at_least: f64,
) -> Vec<Sample> {
    let deadline = tokio::time::Instant::now() + METRIC_WAIT;
    loop {
        let samples = scrape(address).await;
        if value(&samples, name, labels) >= at_least || tokio::time::Instant::now() >= deadline {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `count` requests are in flight in the workers (from their heartbeats, sent
/// within 10 ms of a change); panics after 20 s.
pub async fn wait_in_flight(cluster: &ClusterProcess, count: usize) {
    let wanted = count as f64;
    let seen = wait_for_metric(
        cluster.metrics_address(),
        "cluster_worker_inflight_requests",
        wanted,
    )
    .await;
    assert!(seen >= wanted, "{seen} requests in flight, not {count}");
}
