//! Hygiene, with real processes: what a worker's children inherit, a bad IPC descriptor,
//! worker-chosen counter names, and absurd numbers from a worker.

use clustered_testkit::{ClusterProcess, Program, get, is_alive};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_a_worker_starts_sees_none_of_the_clusters_variables_and_all_of_the_users() {
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_SCHED_POLICY", "rr"),
        ("CLUSTER_NAME", "prod-eu"),
    ];
    let (_cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let reply = get(address, "/child-env").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body, "CLUSTER_NAME=prod-eu\n",
        "only the user's own CLUSTER_* variable: {}",
        reply.body
    );
}

#[test]
fn a_standard_stream_as_the_ipc_descriptor_is_refused_with_a_clear_error() {
    let env = [("CLUSTER_WORKER_ID", "1"), ("CLUSTER_IPC_FD", "1")];
    let stderr = ClusterProcess::expect_failure(Program::Fixture, &env);
    assert!(
        stderr.contains("invalid CLUSTER_IPC_FD=\"1\": the IPC socket is descriptor 3 or above"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_counter_names_from_one_worker_are_bounded_and_the_master_serves_on() {
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "1")]);
    let reply = get(address, "/counters?n=10000").await;
    // The fixture's worker follows `hits` from its start: one of its 1024.
    assert_eq!(reply.body, "created 1023 refused 8977\n");
    assert!(is_alive(cluster.pid()));
    assert_eq!(
        get(address, "/counter").await.status,
        200,
        "counters still work"
    );
    assert_eq!(get(address, "/").await.body, "fixture\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_with_the_largest_numbers_leaves_the_master_serving() {
    let env = [("CLUSTER_WORKERS", "2"), ("CLUSTER_SCHED_POLICY", "least")];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    for _ in 0..2 {
        assert_eq!(get(address, "/heartbeat-overflow").await.body, "sent\n");
    }
    for _ in 0..20 {
        assert_eq!(get(address, "/").await.body, "fixture\n");
    }
    assert!(is_alive(cluster.pid()));
    assert_eq!(cluster.worker_pids().len(), 2, "no worker was replaced");
}
