//! Workers whose master is SIGKILLed, with real processes: whatever a worker is doing —
//! booting, waiting on a request the master will never answer — its IPC calls fail at once
//! saying the master is gone, and it exits within a second of the master's death.

use std::time::{Duration, Instant};

use clustered_testkit::{ClusterProcess, Program, signal_pid, wait_all_gone, wait_until};
use rustix::process::Signal;

/// Spawns the fixture with `env`, waits until its 2 workers have joined, SIGKILLs the
/// master, and returns the workers' pids and the moment of the kill.
fn kill_the_master_once_joined(env: &[(&str, &str)]) -> (ClusterProcess, Vec<u32>, Instant) {
    let cluster = ClusterProcess::spawn(Program::Fixture, env);
    let online = |cluster: &ClusterProcess| {
        cluster
            .stdout_lines()
            .iter()
            .filter(|line| line.starts_with("event: online"))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(30), || online(&cluster) == 2),
        "{:#?}",
        cluster.stdout_lines()
    );
    let workers = cluster.worker_pids();
    assert_eq!(workers.len(), 2);
    signal_pid(cluster.pid(), Signal::KILL);
    (cluster, workers, Instant::now())
}

#[test]
fn a_booting_worker_outlives_a_sigkilled_master_by_less_than_a_second() {
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("FIXTURE_START_DELAY_MS", "60000"),
    ];
    let (_cluster, workers, killed) = kill_the_master_once_joined(&env);
    assert!(
        wait_all_gone(&workers, Duration::from_secs(1)),
        "the booting workers exit within a second"
    );
    println!(
        "booting workers outlived their SIGKILLed master by {:?}",
        killed.elapsed()
    );
}

#[test]
fn a_request_waiting_on_a_master_that_is_killed_fails_at_once_saying_so() {
    let report = std::env::temp_dir().join(format!("cluster-orphan-{}", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("FIXTURE_FAULT", "ask-at-boot"),
        ("FIXTURE_REPORT_FILE", report.to_str().unwrap()),
    ];
    let (_cluster, workers, killed) = kill_the_master_once_joined(&env);
    let lines = || std::fs::read_to_string(&report).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), || lines().lines().count() == 2),
        "both requests ended: {}",
        lines()
    );
    let failed_after = killed.elapsed();
    for line in lines().lines() {
        assert!(line.ends_with("the master process went away"), "{line}");
    }
    assert!(
        wait_all_gone(&workers, Duration::from_secs(1)),
        "gone within a second"
    );
    println!(
        "requests failed {failed_after:?} after the kill (their timeout is 60 s); workers gone after {:?}",
        killed.elapsed()
    );
    let _ = std::fs::remove_file(&report);
}
