//! Scheduling policies with real processes: choosing one, and `sticky`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clustered_testkit::{
    ClusterProcess, Connections, H2, Load, Program, children_of, eventually, get_from, signal_pid,
    wait_all_gone,
};
use rustix::process::Signal;

/// The pids that served 10 requests from `source`.
async fn serving_pids(source: IpAddr, address: SocketAddr) -> BTreeSet<u32> {
    let mut pids = BTreeSet::new();
    for _ in 0..10 {
        let reply = get_from(source, address, "/whoami").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        pids.insert(reply.whoami_pid());
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_keeps_each_client_on_one_worker_and_moves_only_a_dead_workers_clients() {
    let (cluster, address) = ClusterProcess::start(
        Program::Example("hello"),
        &[("CLUSTER_WORKERS", "3"), ("CLUSTER_SCHED_POLICY", "sticky")],
    );
    // Each source address always reaches one worker; find two that reach different ones.
    let mut owner: BTreeMap<IpAddr, u32> = BTreeMap::new();
    for last in 2..=12u8 {
        let source = IpAddr::from([127, 0, 0, last]);
        let pids = serving_pids(source, address).await;
        assert_eq!(pids.len(), 1, "{source} reached {pids:?}");
        owner.insert(source, *pids.first().unwrap());
    }
    let distinct: BTreeSet<u32> = owner.values().copied().collect();
    assert!(
        distinct.len() >= 2,
        "11 clients all on one worker: {owner:?}"
    );
    let (&moved_source, &victim) = owner.iter().next().unwrap();
    let kept: Vec<(IpAddr, u32)> = owner
        .iter()
        .filter(|(_, pid)| **pid != victim)
        .map(|(source, pid)| (*source, *pid))
        .collect();

    let before: BTreeSet<u32> = children_of(cluster.pid()).into_iter().collect();
    signal_pid(victim, Signal::KILL);
    let master = cluster.pid();
    let mut replacement = None;
    let replaced = eventually(Duration::from_secs(10), || {
        replacement = children_of(master)
            .into_iter()
            .find(|pid| !before.contains(pid));
        replacement.is_some()
    })
    .await;
    assert!(replaced, "the killed worker is replaced");
    let replacement = replacement.unwrap();
    // Its clients go to the replacement in the same slot once it listens, and stay there.
    let mut moved = false;
    for _ in 0..100 {
        let pids = serving_pids(moved_source, address).await;
        assert!(!pids.contains(&victim));
        if pids == BTreeSet::from([replacement]) {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        moved,
        "{moved_source} never settled on the replacement {replacement}"
    );
    // Nobody else moved.
    for (source, pid) in kept {
        assert_eq!(
            serving_pids(source, address).await,
            BTreeSet::from([pid]),
            "{source} moved"
        );
    }
}

#[test]
fn an_unknown_policy_is_a_clear_error_listing_the_valid_ones() {
    let mut cluster = ClusterProcess::spawn(
        Program::Example("hello"),
        &[("CLUSTER_SCHED_POLICY", "fifo")],
    );
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the master exits");
    assert!(!status.success());
    let stderr = cluster.stderr();
    assert!(
        stderr.contains("invalid CLUSTER_SCHED_POLICY=\"fifo\": the policy is one of rr, sticky, shared, reuseport, least"),
        "{stderr}"
    );
}

/// Serves 1,000 requests from 8 concurrent new-connection clients under `policy`, then stops.
async fn serves_and_stops(policy: &str) {
    let (mut cluster, address) = ClusterProcess::start(
        Program::Example("hello"),
        &[("CLUSTER_WORKERS", "2"), ("CLUSTER_SCHED_POLICY", policy)],
    );
    let workers = cluster.worker_pids();
    let load = Load::start(address, "/", 8, Connections::PerRequest);
    assert!(
        load.wait_for(1_000, Duration::from_secs(60)).await,
        "{policy}: load runs"
    );
    let report = load.stop().await;
    report.assert_all_2xx(policy);
    let served_by: BTreeSet<&str> = report.per_worker.keys().map(String::as_str).collect();
    assert!(
        served_by.is_subset(&BTreeSet::from(["1", "2"])),
        "{served_by:?}"
    );
    cluster.signal(Signal::TERM);
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the master exits");
    assert!(status.success(), "{policy}: {status}");
    assert!(wait_all_gone(&workers, Duration::from_secs(5)));
    assert!(
        std::net::TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_err(),
        "{policy}: the port still accepts after the stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_workers_accept_on_the_masters_socket() {
    serves_and_stops("shared").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuseport_workers_accept_on_their_own_sockets() {
    serves_and_stops("reuseport").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_sends_new_connections_away_from_a_busy_worker() {
    let (_cluster, address) = ClusterProcess::start(
        Program::Example("hello"),
        &[("CLUSTER_WORKERS", "2"), ("CLUSTER_SCHED_POLICY", "least")],
    );
    // One HTTP/2 connection carrying 8 slow requests keeps its worker busy.
    let busy = H2::connect(address).await;
    let busy_pid = busy.get("/whoami").await.whoami_pid();
    let slow: Vec<_> = (0..8)
        .map(|_| {
            let busy = busy.clone();
            tokio::spawn(async move { busy.get("/slow?ms=3000").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await; // heartbeats arrive every 10 ms
    for _ in 0..20 {
        let reply = clustered_testkit::get(address, "/whoami").await;
        assert_ne!(
            reply.whoami_pid(),
            busy_pid,
            "a new connection went to the busy worker"
        );
    }
    for request in slow {
        assert_eq!(request.await.unwrap().body, "slow done\n");
    }
}
