//! The master's health checks on its admin address, with real processes: `/livez` answers
//! while the master runs, `/readyz` is 200 once a worker serves and 503 saying why from the
//! moment a stop begins, while the workers still drain (so a load balancer stops sending before
//! the port closes).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clustered_testkit::http::{Reply, get};
use clustered_testkit::{ClusterProcess, Program, is_alive, wait_in_flight};
use rustix::process::Signal;

/// `path` on the admin address until `wanted` says yes, for at most 10 s; the last reply.
async fn until(admin: SocketAddr, path: &str, wanted: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(admin, path).await;
        if wanted(&reply) || Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_200_while_a_worker_serves_and_503_from_the_moment_a_stop_begins() {
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
        // Long enough that the drain is still under way when the test looks.
        ("FIXTURE_SHUTDOWN_MS", "30000"),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let admin = cluster.metrics_address();

    let live = get(admin, "/livez").await;
    assert_eq!(
        (live.status, live.body.as_str()),
        (200, "ok: the master runs\n")
    );
    let ready = until(admin, "/readyz", |reply| reply.status == 200).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(get(admin, "/nowhere").await.status, 404);

    // A request that holds its worker's drain, then a stop.
    let held = tokio::spawn(get(address, "/hang"));
    wait_in_flight(&cluster, 1).await;
    cluster.signal(Signal::TERM);
    let unready = until(admin, "/readyz", |reply| reply.status == 503).await;
    assert_eq!(
        (unready.status, unready.body.as_str()),
        (
            503,
            "not ready: stopping: the workers drain, then the master exits\n"
        )
    );
    assert!(
        is_alive(cluster.pid()),
        "the master still drains its worker"
    );
    assert_eq!(get(admin, "/livez").await.status, 200, "and still answers");
    held.abort();
}
