//! User messages between real processes: the `count` example, request/reply, broadcast,
//! send_to, counters, and bad senders.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clustered_testkit::{ClusterProcess, Connections, Load, Program, get};

/// GETs `path` over new connections until every one of `workers` has answered; returns the
/// last body per worker id.
async fn from_every_worker(
    address: SocketAddr,
    path: &str,
    workers: usize,
) -> BTreeMap<String, String> {
    let mut bodies = BTreeMap::new();
    for _ in 0..workers * 20 {
        let reply = get(address, path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        bodies.insert(reply.worker_id.unwrap(), reply.body.trim().to_owned());
        if bodies.len() == workers {
            break;
        }
    }
    assert_eq!(bodies.len(), workers, "{path} reached every worker");
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_totals_exactly_and_every_worker_sees_the_broadcast_total() {
    let (_cluster, address) =
        ClusterProcess::start(Program::Example("count"), &[("CLUSTER_WORKERS", "2")]);
    let load = Load::start(address, "/", 16, Connections::KeepAlive);
    assert!(load.wait_for(5_000, Duration::from_secs(60)).await);
    let report = load.stop().await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.non_2xx, 0);
    assert!(report.ok >= 5_000);
    // `/total` (answered by the master through a request from each worker) counts the `/`
    // requests only, exactly, once the counts in flight have arrived: the master takes its
    // workers' messages in turn (a fair queue), so one worker's request can overtake the last
    // counts of another. It never counts more; the broadcast total follows within 2 s.
    let expected = report.ok.to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let totals = from_every_worker(address, "/total", 2).await;
        let seen = from_every_worker(address, "/seen", 2).await;
        for total in totals.values().chain(seen.values()) {
            let total: usize = total.parse().expect("a number");
            assert!(
                total <= report.ok,
                "counted more than was sent: {totals:?} {seen:?}"
            );
        }
        if totals
            .values()
            .chain(seen.values())
            .all(|value| value == &expected)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not converged: totals {totals:?}, seen {seen:?}, sent {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_round_trip_from_every_worker_and_an_unanswered_one_times_out() {
    let (_cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "2")]);
    let echoes = from_every_worker(address, "/ask?what=echo", 2).await;
    assert!(echoes.values().all(|body| body == "echo"), "{echoes:?}");
    let ignored = get(address, "/ask?what=ignore").await;
    assert_eq!(ignored.status, 502);
    assert!(
        ignored.body.contains("no answer to `request` within 500ms"),
        "{}",
        ignored.body
    );
}

/// The tags each of the fixture's workers has received, by worker id.
async fn received(address: SocketAddr, workers: usize) -> BTreeMap<String, String> {
    from_every_worker(address, "/received", workers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_every_worker_once_and_send_to_only_its_target() {
    let (_cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "3")]);
    assert_eq!(get(address, "/broadcast?tag=all").await.status, 200);
    assert_eq!(get(address, "/send_to?worker=2&tag=two").await.status, 200);
    let unknown = get(address, "/send_to?worker=9&tag=nobody").await;
    assert_eq!(unknown.status, 502);
    assert!(
        unknown.body.contains("no live worker 9"),
        "{}",
        unknown.body
    );
    // The broadcast and the send_to may come from different workers (new connections
    // alternate), and only one sender's messages are ordered: compare the sets.
    let deadline = Instant::now() + Duration::from_secs(5);
    let expected: BTreeMap<String, Vec<&str>> = [
        ("1", vec!["all"]),
        ("2", vec!["all", "two"]),
        ("3", vec!["all"]),
    ]
    .into_iter()
    .map(|(id, tags)| (id.to_owned(), tags))
    .collect();
    loop {
        let raw = received(address, 3).await;
        let got: BTreeMap<String, Vec<&str>> = raw
            .iter()
            .map(|(id, tags)| {
                let mut tags: Vec<&str> = tags.split(',').filter(|tag| !tag.is_empty()).collect();
                tags.sort_unstable();
                (id.clone(), tags)
            })
            .collect();
        if got == expected {
            break;
        }
        assert!(Instant::now() < deadline, "{got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_is_exact_across_workers_pushed_to_subscribers_and_outlives_them() {
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "2")]);
    let mut values = Vec::new();
    for _ in 0..100 {
        let reply = get(address, "/counter").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        values.push(reply.body.trim().parse::<i64>().unwrap());
    }
    values.sort_unstable();
    assert_eq!(
        values,
        (1..=100).collect::<Vec<_>>(),
        "every increment counted once"
    );
    for pid in cluster.worker_pids() {
        clustered_testkit::signal_pid(pid, rustix::process::Signal::KILL);
    }
    let replaced = cluster.wait_for_line("event: listening worker=2", Duration::from_secs(10));
    assert!(replaced.is_some());
    let mut next = None;
    for _ in 0..50 {
        let reply = get(address, "/counter").await;
        if reply.status == 200 {
            next = Some(reply.body.trim().to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        next.as_deref(),
        Some("101"),
        "the count lives in the master"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_message_is_an_error_for_its_sender() {
    let (_cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "1")]);
    let reply = get(address, "/big").await;
    assert_eq!(reply.status, 502);
    assert!(reply.body.contains("exceeds the limit"), "{}", reply.body);
    assert_eq!(
        get(address, "/ask?what=echo").await.body,
        "echo\n",
        "the channel goes on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_writing_garbage_is_replaced_while_the_others_serve() {
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "2")]);
    let load = Load::start(address, "/", 4, Connections::PerRequest);
    assert!(load.wait_for(200, Duration::from_secs(30)).await);
    // The worker may die before answering.
    let _ = tokio::spawn(get(address, "/garbage")).await;
    // Killed (or gone on its own as its channel closed, before the signal landed): either way
    // its exit says why.
    let killed = cluster.wait_for_line("reason=protocol", Duration::from_secs(10));
    assert!(killed.is_some(), "{:#?}", cluster.stdout_lines());
    let back = cluster.wait_for_line("event: listening", Duration::from_secs(10));
    assert!(back.is_some(), "a replacement listens");
    let more = load.completed() + 200;
    assert!(load.wait_for(more, Duration::from_secs(30)).await);
    let report = load.stop().await;
    assert!(
        report.failures.len() <= 4,
        "only requests in flight on the bad worker: {:?}",
        report.failures
    );
    assert_eq!(report.non_2xx, 0);
    let stderr = cluster.stderr();
    assert_eq!(
        stderr.matches("broke the IPC protocol").count(),
        1,
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_one_sender_arrive_in_order() {
    let (_cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "2")]);
    // New connections alternate between the workers: two senders, 25 broadcasts each.
    let mut sender_of = BTreeMap::new();
    for tag in 0..50 {
        let reply = get(address, &format!("/broadcast?tag={tag}")).await;
        assert_eq!(reply.status, 200);
        sender_of.insert(tag.to_string(), reply.worker_id.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = received(address, 2).await;
        let complete = got.values().all(|tags| tags.split(',').count() == 50);
        if complete {
            for (receiver, tags) in &got {
                let tags: Vec<u32> = tags.split(',').map(|tag| tag.parse().unwrap()).collect();
                let mut each_once = tags.clone();
                each_once.sort_unstable();
                assert_eq!(each_once, (0..50).collect::<Vec<_>>(), "worker {receiver}");
                for sender in ["1", "2"] {
                    let from_sender: Vec<u32> = tags
                        .iter()
                        .copied()
                        .filter(|tag| sender_of[&tag.to_string()] == sender)
                        .collect();
                    assert!(
                        from_sender.is_sorted(),
                        "worker {receiver} got {sender}'s out of order: {from_sender:?}"
                    );
                }
            }
            break;
        }
        assert!(Instant::now() < deadline, "{got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
