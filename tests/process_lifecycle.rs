//! How a cluster starts and stops: a taken port, SIGTERM, and a killed master.

use std::time::Duration;

use clustered_testkit::{ClusterProcess, Program, get, wait_all_gone, wait_in_flight};
use rustix::process::Signal;

#[test]
fn a_port_in_use_makes_the_master_exit_non_zero_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut cluster = ClusterProcess::spawn(
        Program::Example("hello"),
        &[("CLUSTER_WORKERS", "2"), ("PORT", port.as_str())],
    );
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the master exits");
    assert!(!status.success(), "exit status {status}");
    let stderr = cluster.stderr();
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")),
        "the message names the address: {stderr}"
    );
    assert!(stderr.contains("cannot listen on"), "{stderr}");
}

#[test]
fn an_invalid_worker_count_is_a_clear_error() {
    let stderr =
        ClusterProcess::expect_failure(Program::Example("hello"), &[("CLUSTER_WORKERS", "many")]);
    assert!(
        stderr.contains("invalid CLUSTER_WORKERS=\"many\""),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_master_and_leaves_no_worker_behind() {
    let (mut cluster, address) =
        ClusterProcess::start(Program::Example("hello"), &[("CLUSTER_WORKERS", "2")]);
    assert_eq!(get(address, "/").await.status, 200);
    let workers = cluster.worker_pids();
    assert_eq!(workers.len(), 2);
    cluster.signal(Signal::TERM);
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the master exits");
    assert!(status.success(), "graceful stop exits 0, got {status}");
    assert!(
        wait_all_gone(&workers, Duration::from_secs(5)),
        "workers outlived the master"
    );
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "the port no longer accepts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_sigterm_still_completes() {
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
    ];
    let (mut cluster, address) = ClusterProcess::start(Program::Example("hello"), &env);
    let slow = tokio::spawn(get(address, "/slow?ms=1000"));
    wait_in_flight(&cluster, 1).await;
    cluster.signal(Signal::TERM);
    let reply = slow.await.unwrap();
    assert_eq!((reply.status, reply.body.as_str()), (200, "slow done\n"));
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the master exits");
    assert!(status.success(), "{status}");
}

#[test]
fn killing_the_master_takes_every_worker_down_within_two_seconds() {
    let (cluster, _address) =
        ClusterProcess::start(Program::Example("hello"), &[("CLUSTER_WORKERS", "2")]);
    let workers = cluster.worker_pids();
    assert_eq!(workers.len(), 2);
    cluster.signal(Signal::KILL);
    assert!(
        wait_all_gone(&workers, Duration::from_secs(2)),
        "orphaned workers"
    );
}
