//! A hung worker, with real processes: `SIGSTOP` one of two workers. It is left out within
//! two seconds, the connections handed to it are served by the other, and it is killed and
//! replaced after the hang timeout, its exit saying it hung.

use std::time::Duration;

use clustered_testkit::{
    ClusterProcess, Program, children_of, eventually, get, is_alive, signal_pid,
};
use rustix::process::Signal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_is_left_out_then_killed_and_replaced_and_loses_nothing() {
    let env = [("CLUSTER_WORKERS", "2"), ("CLUSTER_HANG_TIMEOUT", "6")];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let master = cluster.pid();
    let workers = cluster.worker_pids();
    let (stopped, other) = (workers[0], workers[1]);
    let slot = cluster
        .stdout_lines()
        .iter()
        .find_map(|line| {
            let rest = line.strip_prefix("event: fork worker=")?;
            let (slot, pid) = rest.split_once(" pid=")?;
            (pid == stopped.to_string()).then(|| slot.to_owned())
        })
        .expect("the stopped worker's fork event");

    signal_pid(stopped, Signal::STOP);
    // Handed out right after the stop: some go to the stopped worker, which never answers.
    let early: Vec<_> = (0..4)
        .map(|_| tokio::spawn(get(address, "/whoami")))
        .collect();

    // The master says when it leaves the stopped worker out (within half a second of owing
    // an answer); from then on no new connection goes to it.
    let left_out = "worker is silent; no new connections for it";
    let said =
        tokio::task::block_in_place(|| cluster.wait_for_stderr(left_out, Duration::from_secs(10)));
    assert!(said, "{}", cluster.stderr());
    for _ in 0..20 {
        let reply = get(address, "/whoami").await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.whoami_pid(),
            other,
            "a new connection went to the stopped worker"
        );
    }
    assert!(
        is_alive(stopped),
        "still there: every one of the 20 went to the other"
    );

    for request in early {
        let reply = request.await.expect("the request task");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.whoami_pid(), other);
    }
    let exit = cluster.wait_for_line(
        &format!("event: exit worker={slot} "),
        Duration::from_secs(10),
    );
    let exit = exit.expect("the stopped worker exits").pop().unwrap();
    assert!(exit.contains("signal=9 reason=hung"), "{exit}");
    assert!(!is_alive(stopped));
    let replaced = eventually(Duration::from_secs(10), || {
        let now = children_of(master);
        now.len() == 2 && now.contains(&other) && !now.contains(&stopped)
    })
    .await;
    assert!(replaced, "{:?}", children_of(master));
    assert!(
        cluster
            .stderr()
            .contains("worker hung (no heartbeat); killing it"),
        "the log says it hung"
    );
    let back = cluster.wait_for_line(
        &format!("event: listening worker={slot} "),
        Duration::from_secs(10),
    );
    assert!(back.is_some(), "the replacement listens");
    for _ in 0..4 {
        assert_eq!(get(address, "/").await.status, 200);
    }
}

#[test]
fn a_hang_timeout_shorter_than_three_heartbeats_stops_the_master_saying_why() {
    let env = [("CLUSTER_WORKERS", "1"), ("CLUSTER_HANG_TIMEOUT", "2")];
    let stderr = ClusterProcess::expect_failure(Program::Fixture, &env);
    assert!(
        stderr.contains("invalid CLUSTER_HANG_TIMEOUT=\"2\": the hang timeout is at least 6 s"),
        "{stderr}"
    );
}
