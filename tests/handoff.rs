//! Connection handoffs under stress: concurrent clients, and a worker killed between
//! requests. No connection may be lost.

use std::collections::BTreeMap;
use std::time::Duration;

use clustered_testkit::{
    ClusterProcess, Program, eventually, get, scrape, signal_pid, value, wait_all_gone,
    wait_for_metric,
};
use rustix::process::Signal;

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
async fn connections_handed_to_a_worker_that_dies_without_answering_go_to_another() {
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Example("hello"), &env);
    let metrics = cluster.metrics_address();
    let workers = cluster.worker_pids();
    assert_eq!(workers.len(), 2);
    let victim = workers[0];
    // Stopped, it takes its share of the next connections and acknowledges none of them.
    signal_pid(victim, Signal::STOP);
    let before = value(&scrape(metrics).await, "cluster_handoffs_total", &[]);
    const CLIENTS: usize = 20;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(get(address, "/whoami")))
        .collect();
    let handed = wait_for_metric(metrics, "cluster_handoffs_total", before + CLIENTS as f64).await;
    assert!(handed >= before + CLIENTS as f64, "{handed}");
    // It dies holding them: each goes to the other worker, once it has exited.
    signal_pid(victim, Signal::KILL);
    assert!(wait_all_gone(&[victim], Duration::from_secs(5)));
    for client in clients {
        let reply = client.await.expect("a client");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_ne!(reply.whoami_pid(), victim, "{}", reply.body);
    }
    let handed = value(&scrape(metrics).await, "cluster_handoffs_total", &[]) - before;
    println!("{CLIENTS} connections, {handed} handoffs");
    assert!(
        handed > CLIENTS as f64,
        "some were handed twice (to the stopped worker, then to the other): {handed}"
    );
}

/// The descriptors the process `pid` has open.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the master's descriptors")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_lets_go_of_every_connection_a_worker_took_even_with_no_traffic_after() {
    // Workers record the handoffs they take in memory the master reads when it next wakes:
    // with no connection after the last, it still looks, and closes its copies.
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Example("hello"), &env);
    let idle = open_descriptors(cluster.pid());
    let mut served_by = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let reply = get(address, "/").await;
        assert_eq!(reply.status, 200);
        served_by.insert(reply.worker_id.expect("x-worker-id"));
    }
    assert_eq!(served_by.len(), 2, "both workers took connections");
    assert!(
        eventually(Duration::from_secs(5), || open_descriptors(cluster.pid())
            <= idle)
        .await,
        "the master still holds {} descriptors, against {idle} before",
        open_descriptors(cluster.pid())
    );
    let handoffs = value(
        &scrape(cluster.metrics_address()).await,
        "cluster_handoffs_total",
        &[],
    );
    assert_eq!(handoffs, 20.0, "every connection was handed off once");
}
