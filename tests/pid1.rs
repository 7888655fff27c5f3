//! The master as PID 1 of its PID namespace, as a container's entry point, with real processes
//! under `unshare --pid --fork --mount-proc` (which needs root, as CI runs): it reaps the
//! orphans its workers leave, so no zombie stays, without taking its workers' exit statuses
//! (a SIGKILLed worker is seen killed and is restarted), and SIGTERM and SIGINT still stop it
//! cleanly.

use std::time::Duration;

use clustered_testkit::{
    ClusterProcess, Program, children_of, get, signal_pid, wait_all_gone, wait_for_metric,
    wait_until, zombie_children_of,
};
use rustix::process::Signal;

/// Two workers, and the master's metrics (for its restart count).
const TWO_WORKERS: &[(&str, &str)] = &[
    ("CLUSTER_WORKERS", "2"),
    ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
];

/// The number the innermost PID namespace of process `pid` knows it by (`NSpid` in
/// `/proc/PID/status`, read from the host).
fn namespace_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let numbers = status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))?;
    numbers.split_whitespace().last()?.parse().ok()
}

/// Asks a worker to leave an orphan that lives `millis`; its pid in the namespace.
async fn leave_an_orphan(address: std::net::SocketAddr, millis: u64) -> u32 {
    let reply = get(address, &format!("/orphan?ms={millis}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
        .body
        .trim()
        .strip_prefix("orphan pid ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("not an orphan's pid: {}", reply.body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_pid1_the_master_reaps_orphans_keeps_its_workers_exits_and_stops_on_sigterm() {
    let (mut cluster, address) = ClusterProcess::start_as_pid1(Program::Fixture, TWO_WORKERS);
    let master = cluster.pid();
    assert_eq!(namespace_pid(master), Some(1), "the master is PID 1");
    assert!(
        cluster.wait_for_stderr(
            "running as PID 1: reaping orphaned processes",
            Duration::from_secs(10)
        ),
        "{}",
        cluster.stderr()
    );
    let workers = cluster.initial_workers().to_vec();
    assert_eq!(workers.len(), 2);

    // Orphans that would live a minute are re-parented to the master; the test ends them.
    let mut long_lived = Vec::new();
    for _ in 0..3 {
        long_lived.push(leave_an_orphan(address, 60_000).await);
    }
    let adopted: Vec<u32> = children_of(master)
        .into_iter()
        .filter(|pid| namespace_pid(*pid).is_some_and(|pid| long_lived.contains(&pid)))
        .collect();
    assert_eq!(
        adopted.len(),
        3,
        "the orphans {long_lived:?} are the master's children: {:?}",
        children_of(master)
    );
    for orphan in &adopted {
        signal_pid(*orphan, Signal::KILL);
    }
    // And orphans that end on their own.
    for _ in 0..3 {
        leave_an_orphan(address, 100).await;
    }
    let only_workers = wait_until(Duration::from_secs(10), || {
        zombie_children_of(master).is_empty() && children_of(master) == workers
    });
    assert!(
        only_workers,
        "the master's children are its workers {workers:?}, no zombie: live {:?}, zombies {:?}",
        children_of(master),
        zombie_children_of(master)
    );

    // A worker's exit is still its reaper's: seen as a SIGKILL, and the worker restarted.
    let victim = workers[0];
    // Events name workers as the namespace does.
    let victim_inside = namespace_pid(victim).expect("the worker runs");
    signal_pid(victim, Signal::KILL);
    let exit = cluster.exit_line(victim_inside);
    assert!(exit.contains("signal=9 reason=unexpected"), "{exit}");
    let replaced = wait_until(Duration::from_secs(10), || {
        let now = children_of(master);
        now.len() == 2 && !now.contains(&victim)
    });
    assert!(replaced, "a successor: {:?}", children_of(master));
    let restarts = wait_for_metric(
        cluster.metrics_address(),
        "cluster_worker_restarts_total",
        1.0,
    )
    .await;
    assert_eq!(restarts, 1.0);
    for _ in 0..4 {
        assert_eq!(get(address, "/whoami").await.status, 200);
    }
    assert!(zombie_children_of(master).is_empty());

    let workers = cluster.worker_pids();
    cluster.signal(Signal::TERM);
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the master exits");
    assert!(status.success(), "a stop exits 0, got {status}");
    assert!(wait_all_gone(&workers, Duration::from_secs(5)));
}

#[test]
fn as_pid1_the_master_refuses_to_upgrade_itself_and_stops_cleanly_on_sigint() {
    let (mut cluster, _address) = ClusterProcess::start_as_pid1(Program::Fixture, TWO_WORKERS);
    let workers = cluster.worker_pids();
    assert_eq!(workers.len(), 2);
    // Its exit would end the container: an upgrade is refused, saying so, and it serves on.
    cluster.signal(Signal::USR2);
    assert!(
        cluster.wait_for_stderr("its exit would end the container", Duration::from_secs(10)),
        "{}",
        cluster.stderr()
    );
    assert_eq!(cluster.worker_pids(), workers, "nothing changed");
    cluster.signal(Signal::INT);
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the master exits");
    assert!(status.success(), "a stop exits 0, got {status}");
    assert!(wait_all_gone(&workers, Duration::from_secs(5)));
}
