//! Running out of descriptors, with real processes and real limits (`setrlimit` on the master
//! before it runs; its workers inherit it): 3000 concurrent keep-alive clients against 2
//! workers.

use std::net::SocketAddr;
use std::time::Duration;

use clustered_testkit::{ClusterProcess, Program, get, is_alive};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIENTS: usize = 3000;

/// This test process needs a descriptor per client: its soft limit goes to its hard limit.
fn allow_many_sockets() {
    let Rlimit { maximum, .. } = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: maximum,
        maximum,
    };
    setrlimit(Resource::Nofile, raised).expect("raise this test's open-files limit");
}

/// A keep-alive client, as one of `wrk -c 3000`'s: on one connection, a request, a second of
/// holding it open (so all 3000 are open at once), two more requests. It may wait in the
/// kernel's backlog, or retry its SYN, while the cluster has no descriptor for it: 60 s in all.
async fn one_client(address: SocketAddr) -> Result<(), String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|error| format!("connect: {error}"))?;
        for round in 0..3 {
            if round == 1 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .map_err(|error| format!("write: {error}"))?;
            read_response(&mut stream).await?;
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .unwrap_or_else(|_| Err("no answer within 60 s".into()))
}

/// Reads one `200` response whose body is `fixture\n`.
async fn read_response(stream: &mut tokio::net::TcpStream) -> Result<(), String> {
    const BODY: &[u8] = b"fixture\n";
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.ends_with(BODY) {
        let read = stream
            .read(&mut chunk)
            .await
            .map_err(|error| format!("read: {error}"))?;
        if read == 0 {
            return Err(format!("closed after {}", String::from_utf8_lossy(&answer)));
        }
        answer.extend_from_slice(&chunk[..read]);
    }
    match answer.starts_with(b"HTTP/1.1 200") {
        true => Ok(()),
        false => Err(format!("answer: {}", String::from_utf8_lossy(&answer))),
    }
}

/// Runs `CLIENTS` concurrent clients; returns the failures.
async fn flood(address: SocketAddr) -> Vec<String> {
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(one_client(address)))
        .collect();
    let mut failures = Vec::new();
    for client in clients {
        if let Err(error) = client.await.expect("client task") {
            failures.push(error);
        }
    }
    failures
}

/// The flood, then: the master and both workers alive, and requests served.
async fn survives_the_flood(cluster: &ClusterProcess, address: SocketAddr) {
    let workers = cluster.worker_pids();
    assert_eq!(workers.len(), 2);
    let failures = flood(address).await;
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(is_alive(cluster.pid()), "the master lives");
    assert_eq!(cluster.worker_pids().len(), 2, "both slots are served");
    for _ in 0..10 {
        assert_eq!(get(address, "/").await.body, "fixture\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_limit_of_1024_is_raised_and_3000_clients_are_all_served() {
    allow_many_sockets();
    let hard = getrlimit(Resource::Nofile).maximum.unwrap_or(65_536);
    let env = [("CLUSTER_WORKERS", "2")];
    let (cluster, address) =
        ClusterProcess::start_with_open_files(Program::Fixture, &env, 1024, hard);
    assert!(
        cluster
            .stderr()
            .contains(&format!("raised the open-files limit from 1024 to {hard}")),
        "{}",
        cluster.stderr()
    );
    survives_the_flood(&cluster, address).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_hard_limit_of_512_3000_clients_wait_their_turn_and_all_are_served() {
    allow_many_sockets();
    let env = [("CLUSTER_WORKERS", "2")];
    let (cluster, address) =
        ClusterProcess::start_with_open_files(Program::Fixture, &env, 512, 512);
    survives_the_flood(&cluster, address).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_socket_the_master_cannot_copy_fails_that_listen_saying_why() {
    let env = [("CLUSTER_WORKERS", "1"), ("CLUSTER_SCHED_POLICY", "shared")];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let master = rustix::process::Pid::from_raw(cluster.pid() as i32).unwrap();
    // No descriptor left in the master: its soft limit is its lowest free descriptor number.
    let open: std::collections::BTreeSet<u64> =
        std::fs::read_dir(format!("/proc/{}/fd", cluster.pid()))
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect();
    let lowest_free = (0..).find(|fd| !open.contains(fd)).unwrap();
    let before = rustix::process::prlimit(
        Some(master),
        Resource::Nofile,
        Rlimit {
            current: Some(lowest_free),
            maximum: getrlimit(Resource::Nofile).maximum,
        },
    )
    .expect("lower the master's soft limit");
    let reply = get(address, "/listen-again").await;
    rustix::process::prlimit(Some(master), Resource::Nofile, before).expect("restore it");
    assert!(
        reply.body.contains("cannot copy the listening socket")
            && reply.body.contains("Too many open files"),
        "{}",
        reply.body
    );
    assert!(!reply.body.contains("unexpected"), "{}", reply.body);
    assert_eq!(
        get(address, "/listen-again").await.body,
        "listening again\n"
    );
    assert_eq!(get(address, "/").await.status, 200);
}
