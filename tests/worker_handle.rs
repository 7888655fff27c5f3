//! Acting on one worker through its `WorkerHandle`, as Node's `worker.disconnect()`,
//! `worker.kill()` and `worker.send()`: a stopped worker drains, exits "after disconnect", and
//! is not replaced; a message reaches that worker only.

use std::time::Duration;

use clustered_testkit::{ClusterProcess, Program, get};

/// Starts the fixture with 2 workers, stops worker 1 as `how`, and checks the outcome.
/// Returns every stdout line.
async fn stop_worker_one(how: &str) -> Vec<String> {
    let spec = format!("{how}:1");
    let (cluster, address) = ClusterProcess::start(
        Program::Fixture,
        &[
            ("CLUSTER_WORKERS", "2"),
            ("FIXTURE_HANDLE_ACTION", spec.as_str()),
        ],
    );
    let lines = cluster.wait_for_line("handle: id=1", Duration::from_secs(20));
    let lines =
        lines.unwrap_or_else(|| panic!("worker 1 never exited: {:#?}", cluster.stdout_lines()));
    let exit = lines
        .iter()
        .find(|line| line.starts_with("event: exit worker=1"))
        .unwrap();
    assert!(
        exit.contains("code=0") && exit.ends_with("after_disconnect=true"),
        "{exit}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "handle: id=1 connected=false dead=true exited_after_disconnect=true"
    );
    // Not replaced: a restart (due within 100 ms: the fixture's backoff) would fork it again;
    // 2 s is room enough for it on a busy machine.
    let forks_of_one = || {
        cluster
            .stdout_lines()
            .iter()
            .filter(|l| l.starts_with("event: fork worker=1 "))
            .count()
    };
    let restarted = clustered_testkit::wait_until(Duration::from_secs(2), || forks_of_one() > 1);
    let all = cluster.stdout_lines();
    assert!(!restarted, "{all:#?}");
    assert!(
        !all.iter().any(|l| l.starts_with("event: restarting")),
        "{all:#?}"
    );
    assert_eq!(cluster.worker_pids().len(), 1);
    for _ in 0..4 {
        let reply = get(address, "/").await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.worker_id.as_deref(),
            Some("2"),
            "only worker 2 is left"
        );
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_drains_the_worker_and_does_not_replace_it() {
    let lines = stop_worker_one("disconnect").await;
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("event: disconnect worker=1 "))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_with_sigterm_drains_the_worker_and_does_not_replace_it() {
    let lines = stop_worker_one("kill").await;
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("event: exit worker=1 "))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reaches_only_its_worker() {
    let (_cluster, address) = ClusterProcess::start(
        Program::Fixture,
        &[
            ("CLUSTER_WORKERS", "2"),
            ("FIXTURE_HANDLE_ACTION", "send:1"),
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut received = std::collections::BTreeMap::new();
        while received.len() < 2 {
            let reply = get(address, "/received").await;
            received.insert(reply.worker_id.unwrap(), reply.body.trim().to_owned());
        }
        if received["1"] == "from-master" {
            assert_eq!(received["2"], "", "worker 2 got worker 1's message");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{received:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
