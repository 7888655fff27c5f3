//! The master's CPU scheduling, with real processes: it runs as `SCHED_BATCH` (so that its
//! wake-ups do not preempt a busy worker), its workers as `SCHED_OTHER`, replacements too;
//! `CLUSTER_MASTER_SCHED=normal` keeps it as started, and a bad value stops it naming the
//! variable.

use std::time::Duration;

use clustered_testkit::{
    ClusterProcess, Program, SCHED_BATCH, SCHED_OTHER, children_of, get, runs_as,
    scheduling_policies,
};
use rustix::process::Signal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_runs_batch_and_its_workers_as_started() {
    let (cluster, address) =
        ClusterProcess::start(Program::Example("hello"), &[("CLUSTER_WORKERS", "2")]);
    let master = cluster.pid();
    assert!(
        runs_as(master, SCHED_BATCH),
        "{:?}",
        scheduling_policies(master)
    );
    let workers = children_of(master);
    assert_eq!(workers.len(), 2);
    for worker in &workers {
        assert!(
            runs_as(*worker, SCHED_OTHER),
            "{:?}",
            scheduling_policies(*worker)
        );
    }
    // A replacement returns to SCHED_OTHER too.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(workers[0] as i32).expect("a pid"),
        Signal::KILL,
    )
    .expect("kill");
    let replaced = clustered_testkit::eventually(Duration::from_secs(20), || {
        let now = children_of(master);
        now.len() == 2 && !now.contains(&workers[0])
    })
    .await;
    assert!(replaced, "the worker is replaced");
    // It switches as it joins the master, a moment after its process appears.
    let rejoined = clustered_testkit::eventually(Duration::from_secs(20), || {
        children_of(master)
            .into_iter()
            .all(|worker| runs_as(worker, SCHED_OTHER))
    })
    .await;
    let policies: Vec<_> = children_of(master)
        .into_iter()
        .map(scheduling_policies)
        .collect();
    assert!(rejoined, "{policies:?}");
    assert_eq!(get(address, "/").await.body, "hello world\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_keeps_the_master_as_started_and_a_bad_value_stops_it() {
    let (cluster, _) = ClusterProcess::start(
        Program::Example("hello"),
        &[("CLUSTER_WORKERS", "1"), ("CLUSTER_MASTER_SCHED", "normal")],
    );
    assert!(runs_as(cluster.pid(), SCHED_OTHER));
    drop(cluster);
    let mut bad = ClusterProcess::spawn(
        Program::Example("hello"),
        &[("CLUSTER_WORKERS", "1"), ("CLUSTER_MASTER_SCHED", "fast")],
    );
    let status = bad
        .wait_exit(Duration::from_secs(20))
        .expect("the master gives up");
    assert_eq!(status.code(), Some(1), "an error exits 1");
    assert!(
        bad.stderr().contains("CLUSTER_MASTER_SCHED")
            && bad.stderr().contains("batch (the default) or normal"),
        "{}",
        bad.stderr()
    );
}
