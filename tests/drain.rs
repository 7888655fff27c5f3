//! Draining every kind of connection, with real processes: half-open connections do not hold
//! a reload, and a connection the application took over (an upgrade) gets the drain signal and
//! ends cleanly before its worker exits.

use std::time::Duration;

use clustered_testkit::{ClusterProcess, Program, children_of, eventually, get, wait_all_gone};
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

/// Sends `request` on `stream` and reads the response until the server closes the
/// connection (at most 10 s): the whole text.
async fn answer_until_closed(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes after its answer")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads one response of a keep-alive connection (headers and a `fixture\n` body).
async fn one_answer(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.ends_with(b"fixture\n") {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(
            read > 0,
            "closed early: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_worker_ends_keep_alive_the_way_each_http_version_understands() {
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "1")]);
    let http10 = "GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n";
    let http11 = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut old10 = TcpStream::connect(address).await.unwrap();
    let mut old11 = TcpStream::connect(address).await.unwrap();
    let first = one_answer(&mut old10, http10).await.to_ascii_lowercase();
    assert!(first.contains("connection: keep-alive"), "{first}");
    one_answer(&mut old11, http11).await;

    let mut probe = TcpStream::connect(address).await.unwrap();
    one_answer(&mut probe, http11).await;

    cluster.signal(Signal::HUP);
    assert!(
        cluster
            .wait_for_line("event: disconnect", Duration::from_secs(10))
            .is_some(),
        "the old worker is asked to drain"
    );
    // It drains once it has heard: the probe's answers say so.
    for _ in 0..100 {
        let answer = one_answer(&mut probe, http11).await;
        if answer.to_ascii_lowercase().contains("connection: close") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Within the drain's grace, each keep-alive client's next request is answered, and the
    // answer ends keep-alive in its own version's terms; then the connection is closed.
    let last10 = answer_until_closed(&mut old10, http10).await;
    let lower = last10.to_ascii_lowercase();
    assert!(last10.starts_with("HTTP/1.0 200"), "{last10}");
    assert!(
        !lower.contains("keep-alive"),
        "no keep-alive token: {last10}"
    );
    assert!(last10.ends_with("fixture\n"), "{last10}");
    let last11 = answer_until_closed(&mut old11, http11).await;
    assert!(last11.starts_with("HTTP/1.1 200"), "{last11}");
    assert!(
        last11.to_ascii_lowercase().contains("connection: close"),
        "{last11}"
    );
    assert!(last11.ends_with("fixture\n"), "{last11}");
}
