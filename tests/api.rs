//! What an axum user expects of the cluster, with real processes: the client's address in
//! `ConnectInfo` (under `serve` and under `axum::serve` with `ClusterListener`), one serving
//! thread per worker, the runtime's knobs, and the HTTP settings.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clustered_testkit::{ClusterProcess, Connections, Load, Program, get, get_from, scrape, value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TWO_WORKERS: &[(&str, &str)] = &[("CLUSTER_WORKERS", "2")];

/// The number of threads of process `pid`.
fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_names_the_client_the_master_accepted() {
    let (_cluster, address) = ClusterProcess::start(Program::Example("hello"), TWO_WORKERS);
    let source = IpAddr::from([127, 0, 0, 2]);
    let mut workers = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let reply = get_from(source, address, "/whoami").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let client: SocketAddr = reply.whoami_field("client").parse().expect("an address");
        assert_eq!(client.ip(), source, "{}", reply.body);
        assert!(reply.body.contains("client 127.0.0.2:"), "{}", reply.body);
        assert_ne!(client.port(), 0);
        workers.insert(reply.worker_id.unwrap());
    }
    assert_eq!(workers.len(), 2, "both workers see the real client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_serve_on_a_cluster_listener_sees_the_client_too() {
    let (_cluster, address) = ClusterProcess::start(Program::Example("axum_serve"), TWO_WORKERS);
    let reply = get_from(IpAddr::from([127, 0, 0, 3]), address, "/").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .body
            .starts_with("hello from axum::serve, client 127.0.0.3:"),
        "{}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_serves_on_one_thread_under_load_and_the_master_runs_on_one() {
    let (cluster, address) = ClusterProcess::start(Program::Example("hello"), TWO_WORKERS);
    let load = Load::start(address, "/", 16, Connections::KeepAlive);
    assert!(
        load.wait_for(3_000, Duration::from_secs(60)).await,
        "load runs"
    );
    let workers = cluster.worker_pids();
    assert_eq!(workers.len(), 2);
    // One serving thread, and the sentinel, which sleeps in `poll` (worker/sentinel.rs).
    for pid in &workers {
        assert_eq!(threads_of(*pid), 2, "worker {pid} runs one serving thread");
    }
    assert_eq!(threads_of(cluster.pid()), 1, "the master runs one thread");
    let more = load.completed() + 1_000;
    assert!(load.wait_for(more, Duration::from_secs(60)).await);
    let report = load.stop().await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    for pid in &workers {
        assert_eq!(
            threads_of(*pid),
            2,
            "still one serving thread after the load"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_worker_threads_gives_workers_more_threads_and_the_master_still_one() {
    let env = [("CLUSTER_WORKERS", "2"), ("CLUSTER_WORKER_THREADS", "3")];
    let (cluster, address) = ClusterProcess::start(Program::Example("hello"), &env);
    assert_eq!(get(address, "/").await.status, 200);
    for pid in cluster.worker_pids() {
        assert!(
            threads_of(pid) >= 3,
            "worker {pid}: {} threads",
            threads_of(pid)
        );
    }
    assert_eq!(threads_of(cluster.pid()), 1);
}

#[test]
fn a_bad_cluster_worker_threads_stops_the_master_at_once_saying_why() {
    let env = [("CLUSTER_WORKERS", "2"), ("CLUSTER_WORKER_THREADS", "none")];
    let stderr = ClusterProcess::expect_failure(Program::Example("hello"), &env);
    assert!(
        stderr.contains("error: invalid CLUSTER_WORKER_THREADS=\"none\""),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off_after_the_header_timeout() {
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("FIXTURE_HEADER_TIMEOUT_MS", "300"),
    ];
    let (_cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let mut half_open = tokio::net::TcpStream::connect(address).await.unwrap();
    half_open
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), half_open.read_to_end(&mut answer));
    assert!(read.await.is_ok(), "the connection is closed by the server");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the timeout: {:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // A client that sends its request in time is served.
    assert_eq!(get(address, "/").await.body, "fixture\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_worker_id_and_the_request_metrics_can_each_be_left_out() {
    // The fixture's router has a `ClusterLayer`: it adds neither back.
    for (switch, header_kept, counted) in [
        ("FIXTURE_WORKER_ID_HEADER", false, 20.0),
        ("FIXTURE_REQUEST_METRICS", true, 0.0),
    ] {
        let env = [
            ("CLUSTER_WORKERS", "1"),
            ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
            (switch, "0"),
        ];
        let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
        for _ in 0..20 {
            let reply = get(address, "/").await;
            assert_eq!((reply.status, reply.body.as_str()), (200, "fixture\n"));
            assert_eq!(
                reply.worker_id.is_some(),
                header_kept,
                "{switch}=0: {reply:?}"
            );
        }
        // Workers record into memory the master reads when scraped: a counted request is there.
        let samples = scrape(cluster.metrics_address()).await;
        let requests = value(&samples, "cluster_http_requests_total", &[]);
        assert_eq!(requests, counted, "{switch}=0");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_made_through_http_config_http1_reaches_the_workers_connections() {
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("FIXTURE_TITLE_CASE_HEADERS", "1"),
    ];
    let (_cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
    assert!(read.await.is_ok(), "the worker answers and closes");
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole response");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    // hyper writes header names in lower case unless told otherwise.
    assert!(head.contains("\r\nX-Worker-Id: 1\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Length: "), "{head}");
    assert_eq!(body, "fixture\n");
}
