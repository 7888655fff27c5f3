//! A worker flooding the master's inbox while the master reads it slowly: the worker is
//! throttled, and nothing else it sends waits behind its messages, with real processes.

use std::time::Duration;

use cluster_testkit::{ClusterProcess, Program, get, wait_all_gone};
use rustix::process::Signal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_for_a_slow_inbox_delays_neither_handoffs_heartbeats_nor_disconnect() {
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_HANG_TIMEOUT", "6"),
        ("FIXTURE_SLOW_INBOX_MS", "20"),
        ("FIXTURE_SHUTDOWN_MS", "30000"),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let flooding = cluster.worker_pids();
    assert_eq!(get(address, "/flood?n=1000000").await.body, "flooding\n");
    // Longer than the hang timeout: a worker whose heartbeats waited behind its messages
    // would be killed as hung by now.
    for _ in 0..28 {
        let reply = get(address, "/whoami").await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.whoami_pid(),
            flooding[0],
            "served by the flooding worker: {:#?}",
            cluster.stdout_lines()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(cluster.worker_pids(), flooding, "not killed, not replaced");
    assert!(
        !cluster
            .stdout_lines()
            .iter()
            .any(|line| line.contains("reason=hung")),
        "{:#?}",
        cluster.stdout_lines()
    );
    // Its disconnect does not wait behind the flood either (the shutdown timeout is 30 s).
    cluster.signal(Signal::HUP);
    assert!(
        wait_all_gone(&flooding, Duration::from_secs(10)),
        "the flooding worker is replaced promptly"
    );
    assert_eq!(get(address, "/").await.body, "fixture\n");
}

/// The peak resident memory of process `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_for_a_stopped_worker_are_bounded_and_the_drops_reported_to_their_sender() {
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "2")]);
    let reply = get(address, "/whoami").await;
    let sender_slot = reply.worker_id.clone().expect("x-worker-id");
    let stopped = *cluster
        .worker_pids()
        .iter()
        .find(|pid| **pid != reply.whoami_pid())
        .expect("the other worker");
    let stopped_slot = if sender_slot == "1" { 2 } else { 1 };
    cluster_testkit::signal_pid(stopped, Signal::STOP);
    // Once the stopped worker is left out (4 s of silence: a whole heartbeat missed), every
    // request goes to the other.
    tokio::time::sleep(Duration::from_secs(5)).await;
    // 400 messages of 256 KiB (100 MiB) for a worker that reads nothing: the master holds a
    // bounded part of them and tells the sender which it dropped.
    let path = format!("/send_to_many?worker={stopped_slot}&n=400&size=262144");
    let reply = get(address, &path).await;
    assert_eq!(reply.worker_id.as_deref(), Some(sender_slot.as_str()));
    cluster_testkit::signal_pid(stopped, Signal::CONT);
    let counts: Vec<usize> = reply
        .body
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let [delivered, dropped, failed] = counts[..] else {
        panic!("{}", reply.body)
    };
    assert_eq!((delivered + dropped, failed), (400, 0), "{}", reply.body);
    assert!(
        dropped >= 200,
        "most were dropped, each reported: {}",
        reply.body
    );
    assert!(delivered >= 30, "what fits was kept: {}", reply.body);
    let peak = peak_rss(cluster.pid());
    assert!(
        peak < 64 * 1024 * 1024,
        "the master's memory is bounded: {peak} bytes"
    );
    assert_eq!(get(address, "/").await.status, 200);
}
