//! Every worker the master kills, and every worker stopped from outside, with real processes:
//! its exit says why, and a stop asked for is not a crash.

use std::time::Duration;

use clustered_testkit::{ClusterProcess, Program, get, is_alive, signal_pid, wait_until};
use rustix::process::Signal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_breaks_the_protocol_is_killed_saying_so_and_replaced() {
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "2")]);
    let reply = get(address, "/forbidden").await;
    let pid: u32 = reply
        .body
        .trim()
        .trim_start_matches("pid ")
        .parse()
        .unwrap();
    let exit = cluster.exit_line(pid);
    assert!(exit.contains("reason=protocol"), "{exit}");
    assert!(
        wait_until(Duration::from_secs(10), || cluster.worker_pids().len() == 2
            && !cluster.worker_pids().contains(&pid)),
        "replaced: {:?}",
        cluster.worker_pids()
    );
    for _ in 0..6 {
        let reply = get(address, "/whoami").await;
        assert_eq!(reply.status, 200);
        assert_ne!(reply.whoami_pid(), pid);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sigtermed_by_hand_is_replaced_at_once_and_is_no_crash() {
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "2")]);
    let victim = cluster.worker_pids()[0];
    signal_pid(victim, Signal::TERM);
    let exit = cluster.exit_line(victim);
    assert!(exit.contains("reason=requested"), "{exit}");
    assert!(!is_alive(victim));
    assert!(
        wait_until(Duration::from_secs(10), || cluster.worker_pids().len() == 2),
        "a successor: {:?}",
        cluster.worker_pids()
    );
    let lines = cluster.stdout_lines();
    assert!(
        !lines
            .iter()
            .any(|line| line.starts_with("event: restarting")),
        "not restarted as a crash: {lines:#?}"
    );
    assert_eq!(get(address, "/").await.status, 200);
}
