//! The `hello` example as a real cluster: round-robin spread, h2c on the same port, and the
//! user's service running only in workers.

use std::collections::{BTreeMap, BTreeSet};

use clustered_testkit::{ClusterProcess, Program, get, get_h2};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_new_connections_are_spread_round_robin_over_two_workers() {
    let (_cluster, address) =
        ClusterProcess::start(Program::Example("hello"), &[("CLUSTER_WORKERS", "2")]);
    let mut per_worker: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..1000 {
        let reply = get(address, "/").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "hello world\n");
        let worker = reply.worker_id.expect("x-worker-id on every response");
        *per_worker.entry(worker).or_default() += 1;
    }
    let workers: Vec<&str> = per_worker.keys().map(String::as_str).collect();
    assert_eq!(
        workers,
        ["1", "2"],
        "x-worker-id takes exactly the values 1 and 2"
    );
    let (one, two) = (per_worker["1"], per_worker["2"]);
    assert!(one.abs_diff(two) <= 1, "round-robin spread {one} vs {two}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_works_on_the_same_port() {
    let (_cluster, address) =
        ClusterProcess::start(Program::Example("hello"), &[("CLUSTER_WORKERS", "2")]);
    let replies = get_h2(address, "/", 5).await;
    for reply in &replies {
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "hello world\n");
    }
    // One connection lives on one worker.
    let workers: BTreeSet<_> = replies
        .iter()
        .map(|reply| reply.worker_id.clone())
        .collect();
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert!(workers.iter().all(Option::is_some));
    // And HTTP/1.1 on the same port right after.
    assert_eq!(get(address, "/").await.body, "hello world\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_workers_run_the_service_never_the_master() {
    let (cluster, address) =
        ClusterProcess::start(Program::Example("hello"), &[("CLUSTER_WORKERS", "2")]);
    let workers = cluster.worker_pids();
    assert_eq!(workers.len(), 2, "two worker processes under the master");
    let mut serving_pids = BTreeSet::new();
    for _ in 0..200 {
        let reply = get(address, "/whoami").await;
        // Without a WorkerInfo extension (as in the master) this route answers 500.
        assert_eq!(reply.status, 200, "{}", reply.body);
        let pid = reply.whoami_pid();
        assert_ne!(pid, cluster.pid(), "the master served a request");
        let worker_id = reply.worker_id.expect("x-worker-id");
        assert!(
            reply.body.starts_with(&format!("worker {worker_id} ")),
            "{}",
            reply.body
        );
        serving_pids.insert(pid);
    }
    assert_eq!(serving_pids.into_iter().collect::<Vec<_>>(), workers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slow_route_answers_after_its_delay() {
    let (_cluster, address) =
        ClusterProcess::start(Program::Example("hello"), &[("CLUSTER_WORKERS", "1")]);
    let started = std::time::Instant::now();
    let reply = get(address, "/slow?ms=300").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "slow done\n"));
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

#[test]
fn the_ready_line_is_printed_exactly_once() {
    let (cluster, address) =
        ClusterProcess::start(Program::Example("hello"), &[("CLUSTER_WORKERS", "2")]);
    assert_eq!(address.ip().to_string(), "127.0.0.1");
    assert_ne!(address.port(), 0, "the real bound port, not 0");
    let more = cluster.remaining_stdout(std::time::Duration::from_millis(500));
    assert!(
        more.iter().all(|line| !line.contains("listening on")),
        "a second ready line: {more:?}"
    );
}
