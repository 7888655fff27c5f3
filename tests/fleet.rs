//! The fleet across real masters: three `fleet` examples (2 workers each) on their own
//! ports sharing one real `redis-server` (the testkit's, on a Unix socket).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clustered_testkit::{ClusterProcess, Connections, Load, Program, RedisServer, get, is_alive};

/// Every wait is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

struct Master {
    process: ClusterProcess,
    address: SocketAddr,
}

fn start_masters(redis: &RedisServer, namespace: &str, count: usize) -> Vec<Master> {
    let url = redis.url();
    (0..count)
        .map(|_| {
            let (process, address) = ClusterProcess::start(
                Program::Example("fleet"),
                &[
                    ("CLUSTER_WORKERS", "2"),
                    ("PORT", "0"),
                    ("CLUSTER_REDIS_URL", &url),
                    ("CLUSTER_REDIS_NAMESPACE", namespace),
                ],
            );
            Master { process, address }
        })
        .collect()
}

/// Waits until every worker of `master` can reach Redis (its counter answers).
async fn wait_fleet_up(master: &Master) {
    let deadline = Instant::now() + WAIT;
    let mut ok = BTreeMap::new();
    while ok.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the fleet did not come up: {ok:?}"
        );
        let reply = get(master.address, "/hits").await;
        if reply.status == 200 {
            ok.insert(reply.worker_id, ());
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// GETs `path` over new connections until both workers of the master answered; the body
/// per worker.
async fn from_both_workers(address: SocketAddr, path: &str) -> BTreeMap<String, String> {
    let mut bodies = BTreeMap::new();
    for _ in 0..60 {
        let reply = get(address, path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        bodies.insert(reply.worker_id.unwrap(), reply.body);
        if bodies.len() == 2 {
            return bodies;
        }
    }
    panic!("{path} did not reach both workers: {bodies:?}");
}

/// Waits until every worker of every master heard `message` (once); fails if one heard it twice.
async fn wait_heard_once(masters: &[Master], message: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut counts = Vec::new();
        for master in masters {
            for (worker, heard) in from_both_workers(master.address, "/heard").await {
                let times = heard.lines().filter(|line| *line == message).count();
                assert!(
                    times <= 1,
                    "worker {worker} heard {message:?} {times} times"
                );
                counts.push(times);
            }
        }
        if counts.iter().all(|times| *times == 1) {
            assert_eq!(counts.len(), 2 * masters.len());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{message:?} not heard by all: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_every_worker_of_every_master_once() {
    let redis = RedisServer::start();
    let masters = start_masters(&redis, "bcast", 3);
    for master in &masters {
        wait_fleet_up(master).await;
    }
    // Each master keeps a heartbeat (what `clusterctl fleet` lists) with its pid.
    let deadline = Instant::now() + WAIT;
    let mut listed = redis.command(&["KEYS", "bcast:master:*"]);
    while listed.lines().count() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        listed = redis.command(&["KEYS", "bcast:master:*"]);
    }
    assert_eq!(listed.lines().count(), 3, "{listed}");
    for master in &masters {
        let pid = master.process.pid().to_string();
        assert!(listed.contains(&format!("-{pid}-")), "{pid} not in {listed}");
    }
    for i in 0..3 {
        let reply = get(masters[0].address, &format!("/say?msg=hello-{i}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    for i in 0..3 {
        wait_heard_once(&masters, &format!("hello-{i}")).await;
    }
    // In order per sender: each worker heard hello-0, -1, -2 in that order.
    for master in &masters {
        for (worker, heard) in from_both_workers(master.address, "/heard").await {
            let hellos: Vec<&str> = heard.lines().filter(|l| l.starts_with("hello-")).collect();
            assert_eq!(hellos, ["hello-0", "hello-1", "hello-2"], "worker {worker}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_increments_across_three_masters_are_exact() {
    let redis = RedisServer::start();
    let masters = start_masters(&redis, "count", 3);
    for master in &masters {
        wait_fleet_up(master).await;
    }
    let mut tasks = Vec::new();
    for task in 0..10 {
        let addresses: Vec<SocketAddr> = masters.iter().map(|m| m.address).collect();
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                let address = addresses[(task + i) % addresses.len()];
                let reply = get(address, "/hit").await;
                assert_eq!(reply.status, 200, "{}", reply.body);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for master in &masters {
        for (worker, hits) in from_both_workers(master.address, "/hits").await {
            assert_eq!(hits.trim(), "1000", "worker {worker}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load_fails_no_request_and_comes_back() {
    let mut redis = RedisServer::start();
    let masters = start_masters(&redis, "fault", 2);
    for master in &masters {
        wait_fleet_up(master).await;
    }
    let workers: Vec<Vec<u32>> = masters.iter().map(|m| m.process.worker_pids()).collect();
    let load = Load::start(masters[0].address, "/heard", 4, Connections::KeepAlive);

    redis.kill9();
    // Broadcasts fail, saying so, while Redis is away; HTTP goes on.
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = get(masters[0].address, "/say?msg=while-down").await;
        if reply.status == 503 {
            assert!(reply.body.contains("unreachable"), "{}", reply.body);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a broadcast still succeeds with Redis down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(masters[1].address, "/hit").await.status, 503);
    tokio::time::sleep(Duration::from_millis(500)).await;

    redis.restart();
    let back = Instant::now();
    let deadline = back + WAIT;
    loop {
        let replies = [
            get(masters[0].address, "/hits").await.status,
            get(masters[0].address, "/hits").await.status,
            get(masters[1].address, "/hits").await.status,
            get(masters[1].address, "/hits").await.status,
        ];
        if replies.iter().all(|status| *status == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fleet did not come back: {replies:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("fleet back {:?} after Redis restarted", back.elapsed());
    // The subscriptions are back: a broadcast from one master reaches the other's workers.
    assert_eq!(get(masters[1].address, "/say?msg=after").await.status, 200);
    wait_heard_once(&masters, "after").await;

    let report = load.stop().await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.non_2xx, 0);
    assert!(report.ok > 0);
    for (master, pids) in masters.iter().zip(&workers) {
        assert!(is_alive(master.process.pid()));
        assert_eq!(
            &master.process.worker_pids(),
            pids,
            "a worker was restarted"
        );
    }
    assert!(
        !masters[0]
            .process
            .stdout_lines()
            .iter()
            .any(|line| line.contains("while-down")),
    );
}
