//! Connection handoffs under stress: concurrent clients, and a worker killed between
//! requests. No connection may be lost.

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_testkit::{ClusterProcess, Program, get, wait_all_gone};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_new_connections_all_succeed() {
    let (_cluster, address) =
        ClusterProcess::start(Program::Example("hello"), &[("CLUSTER_WORKERS", "2")]);
    let clients: Vec<_> = (0..64)
        .map(|_| {
            tokio::spawn(async move {
                let mut per_worker = BTreeMap::new();
                for _ in 0..30 {
                    let reply = get(address, "/").await;
                    assert_eq!((reply.status, reply.body.as_str()), (200, "hello world\n"));
                    *per_worker.entry(reply.worker_id.unwrap()).or_insert(0) += 1;
                }
                per_worker
            })
        })
        .collect();
    let mut total: BTreeMap<String, usize> = BTreeMap::new();
    for client in clients {
        for (worker, count) in client.await.expect("client task") {
            *total.entry(worker).or_default() += count;
        }
    }
    assert_eq!(total.values().sum::<usize>(), 64 * 30);
    assert_eq!(total.len(), 2, "both workers served: {total:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_for_a_killed_worker_go_to_another_worker() {
    let (cluster, address) =
        ClusterProcess::start(Program::Example("hello"), &[("CLUSTER_WORKERS", "2")]);
    let workers = cluster.worker_pids();
    assert_eq!(workers.len(), 2);
    let victim = workers[0];
    let pid = rustix::process::Pid::from_raw(victim as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    assert!(wait_all_gone(&[victim], Duration::from_secs(5)));
    // The master may still hand the next connections to the dead worker before it notices;
    // those must be handed again, not dropped.
    for _ in 0..200 {
        let reply = get(address, "/whoami").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_ne!(reply.whoami_pid(), victim, "{}", reply.body);
    }
}
