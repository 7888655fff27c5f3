//! Readiness with real processes (`CLUSTER_WAIT_READY=1`): workers that take 2 s to warm up
//! after they listen get no request before they say ready — the fixture answers 503 until
//! then, and no client sees one — the cluster is announced ready only after them, and a
//! rolling reload waits for each replacement's warm-up.

use std::time::{Duration, Instant};

use clustered_testkit::{ClusterProcess, Connections, Load, Program};
use rustix::process::Signal;

const WARMUP: Duration = Duration::from_secs(2);

async fn no_request_reaches_a_worker_before_it_is_ready(policy: &str) {
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_SCHED_POLICY", policy),
        ("CLUSTER_WAIT_READY", "1"),
        ("FIXTURE_WARMUP_MS", "2000"),
    ];
    let started = Instant::now();
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    assert!(
        started.elapsed() >= WARMUP,
        "ready before the warm-up ended"
    );

    let load = Load::start(address, "/", 4, Connections::PerRequest);
    assert!(
        load.wait_for(200, Duration::from_secs(30)).await,
        "load runs"
    );
    let reload_began = Instant::now();
    cluster.signal(Signal::HUP);
    let finished = cluster.wait_for_line("event: reload-finished", Duration::from_secs(30));
    let reload_took = reload_began.elapsed();
    let served = load.completed();
    assert!(
        load.wait_for(served + 200, Duration::from_secs(30)).await,
        "load goes on"
    );
    let report = load.stop().await;

    assert!(finished.is_some(), "the reload finishes");
    assert!(
        reload_took >= WARMUP * 2,
        "each of the 2 replacements warms up 2 s first; the reload took {reload_took:?}"
    );
    // The fixture answers 503 while it warms up: a 2xx only means no request reached one.
    report.assert_all_2xx(policy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_by_the_master() {
    no_request_reaches_a_worker_before_it_is_ready("rr").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_by_the_workers_themselves() {
    no_request_reaches_a_worker_before_it_is_ready("shared").await;
}
