//! Settings with real processes: the operator's environment overrides the program's builder
//! (`CLUSTER_WORKERS=3` over `Cluster::workers(2)`), the master's start-up line says each
//! value and where it came from, and "one per CPU" counts the CPUs the process may use.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_per_cpu_counts_the_cpus_this_process_may_use_and_says_why() {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").expect("online CPUs");
    // Held to CPU 0, as a container's CPU set holds it: one worker, whatever the machine has.
    let (cluster, address) = ClusterProcess::start_on_cpus(Program::Fixture, &[], "0");
    assert_eq!(cluster.initial_workers().len(), 1, "{}", cluster.stderr());
    assert_eq!(clustered_testkit::get(address, "/").await.status, 200);
    let why = match online.trim() {
        "0" => "workers=1 (one per core, 1)".to_owned(),
        _ => "workers=1 (1 of ".to_owned(),
    };
    assert!(
        cluster.wait_for_stderr(&why, Duration::from_secs(5)),
        "{why:?} in {}",
        cluster.stderr()
    );
    drop(cluster);
    // `max` means the same.
    let env = [("CLUSTER_WORKERS", "max")];
    let (cluster, _address) = ClusterProcess::start_on_cpus(Program::Fixture, &env, "0");
    assert_eq!(cluster.initial_workers().len(), 1, "{}", cluster.stderr());
}
