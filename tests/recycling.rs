//! Recycling with real processes: `CLUSTER_MAX_REQUESTS=300` under 3,000 requests over new
//! connections — no request fails, every original worker is replaced (its exit says
//! `max-requests`), and never are two slots replaced at once; `CLUSTER_MAX_MEMORY=48M`: the
//! worker that grows past it is replaced, saying `max-memory`, while the cluster serves; and
//! `CLUSTER_MAX_MEMORY=1M`, below any fresh worker, stops the master saying so.

use std::collections::BTreeSet;
use std::time::Duration;

use clustered_testkit::{ClusterProcess, Connections, Load, Program};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_past_max_requests_are_replaced_one_at_a_time_with_no_failed_request() {
    let env = [("CLUSTER_WORKERS", "2"), ("CLUSTER_MAX_REQUESTS", "300")];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let original: Vec<u32> = cluster.initial_workers().to_vec();
    assert_eq!(original.len(), 2);

    let load = Load::start(address, "/", 8, Connections::PerRequest);
    assert!(
        load.wait_for(3_000, Duration::from_secs(120)).await,
        "the load runs"
    );
    let report = load.stop().await;
    report.assert_all_2xx("recycling under load");

    // The last replacement may still be draining its predecessor: wait for its exit line.
    cluster.wait_for_line("reason=max-requests", Duration::from_secs(10));
    let events: Vec<String> = cluster
        .stdout_lines()
        .into_iter()
        .filter_map(|line| line.strip_prefix("event: ").map(str::to_owned))
        .collect();
    let mut replacing: Option<String> = None;
    let mut recycled_pids = BTreeSet::new();
    for event in &events {
        let field = |name: &str| {
            event
                .split_whitespace()
                .find_map(|word| word.strip_prefix(name))
                .unwrap_or_default()
                .to_owned()
        };
        if event.starts_with("recycling ") {
            assert_eq!(replacing, None, "two slots replaced at once: {events:#?}");
            assert!(event.ends_with("reason=max-requests"), "{event}");
            replacing = Some(field("worker="));
            recycled_pids.insert(field("pid=").parse::<u32>().expect("a pid"));
        } else if event.starts_with("reloaded ") {
            assert_eq!(replacing.take(), Some(field("worker=")), "{events:#?}");
        } else if event.starts_with("reload-started") {
            panic!("recycling is not a reload: {events:#?}");
        }
    }
    for pid in &original {
        assert!(
            recycled_pids.contains(pid),
            "worker {pid} not recycled: {events:#?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|event| event.starts_with("exit ") && event.contains("reason=max-requests")),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_past_max_memory_is_replaced_and_says_why() {
    // A fresh worker holds far less than 48 MiB; the one asked to grow by 64 MiB is replaced.
    let env = [("CLUSTER_WORKERS", "2"), ("CLUSTER_MAX_MEMORY", "48M")];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let grown = clustered_testkit::get(address, "/grow?mib=64").await;
    assert_eq!(grown.status, 200);
    let exit = cluster.wait_for_line(
        "reason=max-memory after_disconnect",
        Duration::from_secs(10),
    );
    let lines = exit.expect("a worker's exit says max-memory within 10 s");
    let recycling: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("event: recycling "))
        .collect();
    assert_eq!(recycling.len(), 1, "only the grown worker: {lines:#?}");
    assert!(recycling[0].ends_with("reason=max-memory"), "{lines:#?}");
    // Meanwhile the cluster serves.
    for _ in 0..20 {
        assert_eq!(clustered_testkit::get(address, "/").await.status, 200);
    }
}

#[test]
fn a_max_memory_below_a_fresh_worker_stops_the_master_naming_both_figures() {
    // Every worker holds more than 1 MiB from its start: recycling them would never end.
    let env = [("CLUSTER_WORKERS", "1"), ("CLUSTER_MAX_MEMORY", "1M")];
    let stderr = ClusterProcess::expect_failure(Program::Fixture, &env);
    assert!(
        stderr.contains(
            "max-memory of 1.0 MiB (CLUSTER_MAX_MEMORY) is below a fresh worker's resident memory ("
        ) && stderr.contains("): set it above that, or to 0 to turn memory recycling off"),
        "{stderr}"
    );
    assert!(!stderr.contains("recycling worker"), "{stderr}");
}
