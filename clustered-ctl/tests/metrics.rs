//! The cluster's aggregated metrics against real processes: `count` records `visits_total`
//! in its workers; the master's `/metrics` (and `clusterctl metrics`) sum them over every
//! worker, live and dead, through a SIGKILL, a scale-up and a rolling reload; the exposition
//! parses as Prometheus text; a taken metrics address stops the master naming it.

use std::net::SocketAddr;
use std::time::Duration;

use clustered::shared_metrics::parse_exposition;
use clustered_testkit::http::get;
use clustered_testkit::{ClusterProcess, Program, is_alive, scrape, signal_pid, value, wait_until};
use rustix::process::Signal;

mod common;
use common::{SocketPath, clusterctl, json, text};

/// `GET /` `count` times, 8 at a time, each over a new connection; every one must succeed.
async fn visit(address: SocketAddr, count: usize) {
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let share = count / 8 + usize::from(task < count % 8);
            tokio::spawn(async move {
                for _ in 0..share {
                    let reply = get(address, "/").await;
                    assert_eq!(reply.status, 200, "{}", reply.body);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a visiting task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visits_total_counts_every_visit_through_a_kill_a_scale_and_a_reload() {
    let socket = SocketPath::new("metrics");
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
        ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Example("count"), &env);
    let metrics = cluster.metrics_address();

    visit(address, 1000).await;
    assert_eq!(value(&scrape(metrics).await, "visits_total", &[]), 1000.0);

    // A worker SIGKILLed: what it counted stays counted.
    let victim = cluster.worker_pids()[0];
    signal_pid(victim, Signal::KILL);
    assert!(wait_until(Duration::from_secs(5), || !is_alive(victim)));
    let samples = scrape(metrics).await;
    assert_eq!(value(&samples, "visits_total", &[]), 1000.0);
    assert!(
        wait_until(Duration::from_secs(10), || cluster.worker_pids().len() == 2),
        "a replacement starts"
    );
    visit(address, 500).await;

    let output = clusterctl(&socket.0, &["scale", "3"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = clusterctl(&socket.0, &["reload"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    visit(address, 500).await;

    let samples = scrape(metrics).await;
    assert_eq!(value(&samples, "visits_total", &[]), 2000.0);
    let answered = [("method", "GET"), ("status", "2xx")];
    assert_eq!(
        value(&samples, "cluster_http_requests_total", &answered),
        2000.0
    );
    let timed = "cluster_http_request_duration_seconds_count";
    assert_eq!(value(&samples, timed, &answered), 2000.0);
    assert_eq!(value(&samples, "cluster_workers", &[]), 3.0);
    assert!(value(&samples, "cluster_worker_restarts_total", &[]) >= 1.0);
    assert_eq!(value(&samples, "cluster_handoffs_total", &[]), 2000.0);
    for slot in ["1", "2", "3"] {
        let rss = value(&samples, "cluster_worker_rss_bytes", &[("worker", slot)]);
        assert!(rss > 0.0, "worker {slot}'s memory");
    }

    // clusterctl prints the same.
    let output = clusterctl(&socket.0, &["metrics"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed = parse_exposition(&text(&output.stdout)).expect("Prometheus text");
    assert_eq!(value(&printed, "visits_total", &[]), 2000.0);
    let output = clusterctl(&socket.0, &["metrics", "--json"], None);
    let reply = json(&output);
    assert_eq!(reply["ok"], true, "{reply}");
    let visits = reply["metrics"]
        .as_array()
        .expect("an array of samples")
        .iter()
        .find(|sample| sample["name"] == "visits_total")
        .expect("visits_total");
    assert_eq!(visits["value"], "2000");

    // Only /metrics is served there.
    assert_eq!(get(metrics, "/").await.status, 404);
}

#[test]
fn a_taken_metrics_address_stops_the_master_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("its address").to_string();
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_METRICS_ADDR", address.as_str()),
    ];
    let stderr = ClusterProcess::expect_failure(Program::Fixture, &env);
    assert!(
        stderr.contains(&format!("cannot serve metrics on {address}")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_neither_blocks_a_scrape_nor_loses_its_counts() {
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Example("count"), &env);
    let metrics = cluster.metrics_address();
    visit(address, 100).await;
    let stopped = cluster.worker_pids()[0];
    signal_pid(stopped, Signal::STOP);
    // prom-client's cluster mode asks every worker at each scrape, and waits for a stopped
    // one; the master reads the workers' memory instead.
    let samples = tokio::time::timeout(Duration::from_secs(5), scrape(metrics))
        .await
        .expect("a scrape answered while a worker is stopped");
    signal_pid(stopped, Signal::CONT);
    assert_eq!(value(&samples, "visits_total", &[]), 100.0);
    assert_eq!(value(&samples, "cluster_workers", &[]), 2.0);
}
