//! The fleet across real masters: three `fleet` examples (2 workers each) on their own
//! ports sharing one real `redis-server` (the testkit's, on a Unix socket).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clustered_testkit::{
    ClusterProcess, Connections, H2, Load, Program, RedisServer, children_of, eventually, get,
    is_alive,
};

/// Every wait is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

struct Master {
    process: ClusterProcess,
    address: SocketAddr,
}

/// `count` masters in `namespace`, each with every worker reaching Redis.
async fn start_fleet(redis: &RedisServer, namespace: &str, count: usize) -> Vec<Master> {
    let masters = start_masters_with(redis, namespace, count, &[]);
    for master in &masters {
        wait_fleet_up(master).await;
    }
    masters
}

fn start_masters_with(
    redis: &RedisServer,
    namespace: &str,
    count: usize,
    extra: &[(&str, &str)],
) -> Vec<Master> {
    let url = redis.url();
    (0..count)
        .map(|_| {
            let (process, address) = ClusterProcess::start(
                Program::Example("fleet"),
                &[
                    &[
                        ("CLUSTER_WORKERS", "2"),
                        ("PORT", "0"),
                        ("CLUSTER_REDIS_URL", url.as_str()),
                        ("CLUSTER_REDIS_NAMESPACE", namespace),
                    ][..],
                    extra,
                ]
                .concat(),
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
    let masters = start_fleet(&redis, "bcast", 3).await;
    // Each master keeps a heartbeat (what `clusterctl fleet` lists) with its pid.
    let mut listed = String::new();
    eventually(WAIT, || {
        listed = redis.command(&["KEYS", "bcast:master:*"]);
        listed.lines().count() >= 3
    })
    .await;
    assert_eq!(listed.lines().count(), 3, "{listed}");
    for master in &masters {
        let pid = master.process.pid().to_string();
        assert!(
            listed.contains(&format!("-{pid}-")),
            "{pid} not in {listed}"
        );
    }
    // One sender: the three requests on one connection, which one worker of A serves.
    let sender = H2::connect(masters[0].address).await;
    for i in 0..3 {
        let reply = sender.get(&format!("/say?msg=hello-{i}")).await;
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
    let masters = start_fleet(&redis, "count", 3).await;
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
    let masters = start_fleet(&redis, "fault", 2).await;
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
        // The agent may have changed (its lease ran out while Redis was away); the two
        // serving workers did not.
        let now = master.process.worker_pids();
        let kept = pids.iter().filter(|pid| now.contains(pid)).count();
        assert!(kept >= 2, "a worker was restarted: {pids:?} then {now:?}");
    }
    assert!(
        !masters[0]
            .process
            .stdout_lines()
            .iter()
            .any(|line| line.contains("while-down")),
    );
}

/// The agent's answer through `master`: its pid and token, once one answers.
async fn agent_answer(master: &Master) -> Option<(u32, u64)> {
    let reply = get(master.address, "/agent").await;
    if reply.status != 200 {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
    Some((answer["pid"].as_u64()? as u32, answer["token"].as_u64()?))
}

/// Waits until every master's `/agent` is answered by the same agent; its pid and token.
async fn one_agent(masters: &[&Master]) -> (u32, u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut answers = Vec::new();
        for master in masters {
            answers.push(agent_answer(master).await);
        }
        if let Some(Some(first)) = answers.first()
            && answers.iter().all(|answer| answer == &Some(*first))
        {
            return *first;
        }
        assert!(Instant::now() < deadline, "no single agent: {answers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_runs_per_fleet_and_another_master_takes_over_when_its_master_dies() {
    let redis = RedisServer::start();
    let log = std::env::temp_dir().join(format!("clustered-fleet-agents-{}", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let lease = Duration::from_millis(1500);
    let lease_ms = lease.as_millis().to_string();
    let log_text = log.display().to_string();
    let mut masters = start_masters_with(
        &redis,
        "agent",
        3,
        &[
            ("CLUSTER_REDIS_LEASE", &lease_ms),
            ("FLEET_AGENT_LOG", &log_text),
        ],
    );
    let (pid, token) = one_agent(&masters.iter().collect::<Vec<_>>()).await;
    let holders: Vec<usize> = (0..masters.len())
        .filter(|i| children_of(masters[*i].process.pid()).contains(&pid))
        .collect();
    assert_eq!(holders.len(), 1, "the agent {pid} runs under one master");
    // SIGKILL its master: another master's agent answers, with a larger token.
    let dead = masters.remove(holders[0]);
    dead.process.signal(rustix::process::Signal::KILL);
    let killed = Instant::now();
    let (_, new_token) = loop {
        let answer = one_agent(&masters.iter().collect::<Vec<_>>()).await;
        if answer.0 != pid {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "another agent answered {:?} after its master was killed",
        killed.elapsed()
    );
    assert!(new_token > token);
    assert!(!is_alive(pid));
    drop(dead);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Never two agents at once: the tokens' times do not overlap.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut spans: BTreeMap<u64, (u128, u128)> = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let (Some(Ok(t)), Some(Ok(ms))) = (
            parts.next().map(str::parse::<u64>),
            parts.next().map(str::parse::<u128>),
        ) else {
            continue;
        };
        let span = spans.entry(t).or_insert((ms, ms));
        span.0 = span.0.min(ms);
        span.1 = span.1.max(ms);
    }
    assert!(spans.len() >= 2, "{spans:?}");
    let ordered: Vec<(u128, u128)> = spans.values().copied().collect();
    for pair in ordered.windows(2) {
        assert!(pair[0].1 < pair[1].0, "two agents at once: {spans:?}");
    }
    let _ = std::fs::remove_file(&log);
}
