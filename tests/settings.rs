//! Settings with real processes: the operator's environment overrides the program's builder
//! (`CLUSTER_WORKERS=3` over `Cluster::workers(2)`), and the master's start-up line says each
//! value and where it came from.

use std::time::Duration;

use clustered_testkit::{ClusterProcess, Program};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_overrides_the_builder_and_the_start_up_line_says_so() {
    let env = [("FIXTURE_WORKERS", "2"), ("CLUSTER_WORKERS", "3")];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    assert_eq!(cluster.initial_workers().len(), 3, "{}", cluster.stderr());
    assert_eq!(clustered_testkit::get(address, "/").await.status, 200);
    let stderr = cluster.stderr();
    let line = stderr
        .lines()
        .find(|line| line.contains("master starting: "))
        .unwrap_or_else(|| panic!("a start-up line: {stderr}"));
    for said in [
        "workers=3 (CLUSTER_WORKERS)",
        "policy=rr (default)",
        "shutdown_timeout=5s (Cluster::shutdown_timeout)",
        "hang_timeout=30s (default)",
        "max_requests=off (default)",
    ] {
        assert!(line.contains(said), "{said:?} in {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_variable_the_builder_s_count_stands() {
    let (cluster, _address) = ClusterProcess::start(Program::Fixture, &[("FIXTURE_WORKERS", "2")]);
    assert_eq!(cluster.initial_workers().len(), 2, "{}", cluster.stderr());
    assert!(
        cluster.wait_for_stderr("workers=2 (Cluster::workers)", Duration::from_secs(5)),
        "{}",
        cluster.stderr()
    );
}
