//! Workers flooding the master's inbox while the master reads it slowly, with real processes:
//! every message sent with `send_wait` is taken (credit keeps the senders from getting ahead of
//! the reader), nothing else the flooding worker sends waits behind its messages, and another
//! worker's requests are answered as if there were no flood.

use std::time::{Duration, Instant};

use clustered_testkit::{ClusterProcess, H2, Program, get, wait_all_gone, wait_until};
use rustix::process::Signal;

/// Starts a flood of `count` messages from some worker; returns its pid.
async fn flood(address: std::net::SocketAddr, count: u64) -> u32 {
    let reply = get(address, &format!("/flood?n={count}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
        .body
        .trim()
        .strip_prefix("flooding pid ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("{}", reply.body))
}

/// How many messages the worker at the end of `connection` has sent in its flood.
async fn sent(connection: &H2) -> u64 {
    let body = connection.get("/flooded").await.body;
    body.split_whitespace()
        .nth(1)
        .and_then(|sent| sent.parse().ok())
        .unwrap_or_else(|| panic!("{body}"))
}

/// An HTTP/2 connection (every request on it goes to one worker) to a worker other than
/// `not`, with that worker's pid.
async fn connection_to_another(address: std::net::SocketAddr, not: u32) -> (H2, u32) {
    for _ in 0..10 {
        let connection = H2::connect(address).await;
        let pid = connection.get("/whoami").await.whoami_pid();
        if pid != not {
            return (connection, pid);
        }
    }
    panic!("every connection went to {not}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_sent_with_send_wait_to_a_slow_inbox_is_taken() {
    const EACH: u64 = 200_000;
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("FIXTURE_SLOW_INBOX_MS", "1"),
        ("FIXTURE_SLOW_INBOX_EVERY", "500"),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let started = Instant::now();
    // Round-robin: one flood on each worker.
    let first = flood(address, EACH).await;
    let second = flood(address, EACH).await;
    assert_ne!(first, second);
    assert_eq!(cluster.worker_pids().len(), 2);
    let (to_first, _) = connection_to_another(address, second).await;
    let (to_second, _) = connection_to_another(address, first).await;
    let mut status = Vec::new();
    let done = async {
        loop {
            status = vec![
                to_first.get("/flooded").await.body,
                to_second.get("/flooded").await.body,
            ];
            if status.iter().all(|body| body.contains("done true")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(240), done)
        .await
        .unwrap_or_else(|_| panic!("the floods did not end: {status:?}"));
    let sent: u64 = status
        .iter()
        .map(|body| {
            assert!(body.contains("failed 0"), "{body}");
            body.split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    let counted = to_first.get("/ask?what=count").await.body;
    println!(
        "{counted:?} of {sent} messages counted by the master, in {:?}",
        started.elapsed()
    );
    assert!(sent >= 2 * EACH, "{status:?}");
    assert_eq!(
        counted.trim(),
        sent.to_string(),
        "every message sent was taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_slows_only_the_flooder_another_workers_requests_are_answered_at_once() {
    let env = [("CLUSTER_WORKERS", "2"), ("FIXTURE_SLOW_INBOX_MS", "2")];
    let (_cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let flooder = flood(address, 1_000_000).await;
    let (other, other_pid) = connection_to_another(address, flooder).await;
    // The flood is under way: it has sent more than its credit (so it waits on the inbox).
    let (to_flooder, _) = connection_to_another(address, other_pid).await;
    let credit = u64::from(clustered::ipc::INBOX_WINDOW);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sent(&to_flooder).await <= credit {
        assert!(Instant::now() < deadline, "the flood does not get going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        let reply = other.get("/ask?what=echo").await;
        latencies.push(started.elapsed());
        // The fixture asks with a 500 ms timeout: a request behind the flood would fail.
        assert_eq!((reply.status, reply.body.as_str()), (200, "echo\n"));
    }
    latencies.sort();
    // The 99th of 100, from the fastest.
    let p99 = latencies[98];
    println!(
        "another worker's request during the flood: p99 {p99:?}, max {:?}",
        latencies.last().unwrap()
    );
}

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
    assert_eq!(flood(address, 1_000_000).await, flooding[0]);
    // Longer than the hang timeout: a worker whose heartbeats waited behind its messages
    // would be killed by now.
    let until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < until {
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
    assert!(wait_until(Duration::from_secs(5), || cluster
        .worker_pids()
        .len()
        == 1));
    assert_eq!(get(address, "/").await.body, "fixture\n");
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
    clustered_testkit::signal_pid(stopped, Signal::STOP);
    // Once the stopped worker is left out (4 s of silence: a whole heartbeat missed), every
    // request goes to the other; the master says so.
    assert!(
        cluster.wait_for_stderr(
            "worker is silent; no new connections for it",
            Duration::from_secs(15)
        ),
        "{}",
        cluster.stderr()
    );
    // 400 messages of 256 KiB (100 MiB) for a worker that reads nothing: the master holds a
    // bounded part of them and tells the sender which it dropped.
    let path = format!("/send_to_many?worker={stopped_slot}&n=400&size=262144");
    let reply = get(address, &path).await;
    assert_eq!(reply.worker_id.as_deref(), Some(sender_slot.as_str()));
    clustered_testkit::signal_pid(stopped, Signal::CONT);
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
    let peak = clustered_testkit::status_kib(cluster.pid(), "VmHWM") * 1024;
    assert!(
        peak < 64 * 1024 * 1024,
        "the master's memory is bounded: {peak} bytes"
    );
    assert_eq!(get(address, "/").await.status, 200);
}
