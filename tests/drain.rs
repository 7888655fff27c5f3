//! Draining every kind of connection, with real processes: half-open connections do not hold
//! a reload, and a connection the application took over (an upgrade) gets the drain signal and
//! ends cleanly before its worker exits.

use std::time::Duration;

use cluster_testkit::{ClusterProcess, Program, children_of, eventually, get, wait_all_gone};
use rustix::process::Signal;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

/// The next line the server sends, waiting at most 10 s; `None` at the end of the stream.
async fn next(lines: &mut Lines<BufReader<OwnedReadHalf>>) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("a line in time")
        .expect("readable")
}

/// A shutdown timeout long enough that a worker held by its connections would still be there
/// when the test looks.
const SLOW_TO_KILL: (&str, &str) = ("FIXTURE_SHUTDOWN_MS", "30000");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_hundred_half_open_connections_do_not_hold_a_reload() {
    let env = [("CLUSTER_WORKERS", "2"), SLOW_TO_KILL];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let old = cluster.worker_pids();
    let mut half_open = Vec::new();
    for _ in 0..400 {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("half a request");
        half_open.push(stream);
    }
    // Every one has reached a worker (served connections are counted by the other requests).
    assert_eq!(get(address, "/").await.status, 200);
    cluster.signal(Signal::HUP);
    assert!(
        wait_all_gone(&old, Duration::from_secs(10)),
        "old workers held by half-open connections: {:?}",
        children_of(cluster.pid())
    );
    let new = cluster.worker_pids();
    assert_eq!(new.len(), 2);
    assert_eq!(get(address, "/").await.status, 200);
    // The half-open connections were closed, not left hanging.
    for stream in &mut half_open {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest));
        assert!(matches!(read.await, Ok(Ok(_)) | Ok(Err(_))), "closed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_connection_gets_the_drain_signal_and_closes_before_its_worker_exits() {
    let env = [("CLUSTER_WORKERS", "1"), SLOW_TO_KILL];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let old = cluster.worker_pids();
    let stream = TcpStream::connect(address).await.expect("connect");
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    writer
        .write_all(
            b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .expect("the upgrade request");
    assert_eq!(
        next(&mut lines).await.as_deref(),
        Some("HTTP/1.1 101 Switching Protocols")
    );
    while next(&mut lines)
        .await
        .is_some_and(|header| !header.is_empty())
    {}
    assert_eq!(next(&mut lines).await.as_deref(), Some("hello"));
    writer.write_all(b"ping\n").await.unwrap();
    assert_eq!(next(&mut lines).await.as_deref(), Some("ping"));

    cluster.signal(Signal::HUP);
    // The application says goodbye and closes; only then does its worker go.
    assert_eq!(next(&mut lines).await.as_deref(), Some("bye"));
    assert_eq!(next(&mut lines).await, None, "closed after bye");
    assert!(
        wait_all_gone(&old, Duration::from_secs(10)),
        "the old worker exits once its upgraded connection is closed"
    );
    let replaced = eventually(Duration::from_secs(10), || {
        children_of(cluster.pid()).len() == 1
    })
    .await;
    assert!(replaced);
    assert_eq!(get(address, "/").await.status, 200);
}
