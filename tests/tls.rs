//! HTTPS from every worker, with real processes and a certificate made at test time: `hello`
//! with `CLUSTER_TLS_CERT` and `CLUSTER_TLS_KEY` serves HTTP/1.1 and HTTP/2 by ALPN, with the
//! client's address in `ConnectInfo`; clients that never start their handshake hold no reload
//! up, and one that does not finish it in time is closed; a broken PEM stops the master naming the file; sessions resume on any worker, across a
//! ticket-key rotation and a reload; a certificate swapped live (`clusterctl tls reload`).

use std::time::Duration;

use clustered::control_socket::ControlCommand;
use clustered_testkit::{
    ClusterProcess, Program, TestCertificate, TlsConnection, children_of, eventually, get_tls,
    get_tls_over,
};
use rustix::process::Signal;

/// `hello` serving HTTPS with `certificate`, two workers, a metrics address, and `more`.
fn start_with(
    certificate: &TestCertificate,
    more: &[(&str, &str)],
) -> (ClusterProcess, std::net::SocketAddr) {
    let cert = certificate.cert_path();
    let key = certificate.key_path();
    let mut env = vec![
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
        ("CLUSTER_TLS_CERT", cert.to_str().expect("a UTF-8 path")),
        ("CLUSTER_TLS_KEY", key.to_str().expect("a UTF-8 path")),
    ];
    env.extend_from_slice(more);
    ClusterProcess::start(Program::Example("hello"), &env)
}

/// [`start_with`] and nothing more.
fn start(certificate: &TestCertificate) -> (ClusterProcess, std::net::SocketAddr) {
    start_with(certificate, &[])
}

/// The path of a control socket in `certificate`'s directory, as text.
fn control_socket(certificate: &TestCertificate) -> (std::path::PathBuf, String) {
    let socket = certificate.dir().join("control.sock");
    let text = socket.to_str().expect("a UTF-8 path").to_owned();
    (socket, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_serves_https_over_http1_and_h2_by_alpn_with_the_client_address() {
    let certificate = TestCertificate::new("alpn");
    let (cluster, address) = start(&certificate);
    for (alpn, expected) in [(&b"http/1.1"[..], &b"http/1.1"[..]), (b"h2", b"h2")] {
        let exchange = get_tls(address, "/whoami", certificate.client(&[alpn])).await;
        assert_eq!(exchange.reply.status, 200, "{}", exchange.reply.body);
        assert_eq!(exchange.alpn.as_deref(), Some(expected));
        let client = format!("client {}", exchange.local);
        assert!(
            exchange.reply.body.contains(&client),
            "ConnectInfo is the client's address: {} vs {client}",
            exchange.reply.body
        );
        assert!(exchange.reply.worker_id.is_some(), "x-worker-id");
    }
    // Offered both, the server prefers h2.
    let both = get_tls(address, "/", certificate.client(&[b"h2", b"http/1.1"])).await;
    assert_eq!(both.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(both.reply.body, "hello world\n");

    // Plain HTTP on the TLS port: a failed handshake, counted by its reason.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut plain = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut rest)).await;
    let (failures, protocol) = (
        "cluster_tls_handshake_failures_total",
        [("reason", "protocol")],
    );
    let samples =
        clustered_testkit::wait_for_samples(cluster.metrics_address(), failures, &protocol, 1.0)
            .await;
    assert_eq!(clustered_testkit::value(&samples, failures, &protocol), 1.0);
    assert_eq!(
        clustered_testkit::value(&samples, "cluster_tls_handshakes_total", &[]),
        3.0,
        "three handshakes finished"
    );
    assert_eq!(
        clustered_testkit::value(&samples, "cluster_tls_resumed_handshakes_total", &[]),
        0.0,
        "each with a client of its own: none resumed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_start_their_handshake_hold_no_reload_up() {
    let certificate = TestCertificate::new("silent");
    let (cluster, address) = start(&certificate);
    let master = cluster.pid();
    let before = children_of(master);
    // 1,000 connections that say nothing: no ClientHello ever.
    let mut silent = Vec::new();
    for _ in 0..1_000 {
        silent.push(
            tokio::net::TcpStream::connect(address)
                .await
                .expect("connect"),
        );
    }
    cluster.signal(Signal::HUP);
    // The old workers go within the drain grace and a little, far before the 10 s handshake
    // timeout: a connection still in its handshake is not waited for.
    let replaced = eventually(Duration::from_secs(8), || {
        let now = children_of(master);
        now.len() == 2 && now.iter().all(|pid| !before.contains(pid))
    })
    .await;
    assert!(
        replaced,
        "reloaded past the silent clients: {:?}",
        children_of(master)
    );
    let exchange = get_tls(address, "/", certificate.client(&[b"http/1.1"])).await;
    assert_eq!(exchange.reply.status, 200, "others are served");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_under_way_when_its_worker_drains_is_finished_and_answered() {
    let certificate = TestCertificate::new("drain");
    let (cluster, address) = start_with(&certificate, &[("CLUSTER_WORKERS", "1")]);
    let client = certificate.client(&[b"http/1.1"]);
    let old = get_tls(address, "/", std::sync::Arc::clone(&client)).await;
    // Handed to the one worker at once; its hello is not sent yet.
    let waiting = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    cluster.signal(Signal::HUP);
    // The replacement serves and the old worker drains with the connection in its handshake.
    assert!(
        cluster.wait_for_stderr("worker reloaded", Duration::from_secs(20)),
        "{}",
        cluster.stderr()
    );
    let late = get_tls_over(waiting, "/", client).await;
    assert_eq!(late.reply.status, 200);
    assert_eq!(
        late.reply.worker_id, old.reply.worker_id,
        "answered by the draining worker"
    );
}

#[test]
fn a_broken_pem_stops_the_master_naming_the_file() {
    let certificate = TestCertificate::new("broken");
    std::fs::write(
        certificate.cert_path(),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .expect("a broken PEM");
    let cert = certificate.cert_path();
    let key = certificate.key_path();
    let mut cluster = ClusterProcess::spawn(
        Program::Example("hello"),
        &[
            ("CLUSTER_WORKERS", "1"),
            ("CLUSTER_TLS_CERT", cert.to_str().expect("a UTF-8 path")),
            ("CLUSTER_TLS_KEY", key.to_str().expect("a UTF-8 path")),
        ],
    );
    let status = cluster
        .wait_exit(Duration::from_secs(20))
        .expect("the master gives up");
    assert_eq!(status.code(), Some(2));
    let stderr = cluster.stderr();
    assert!(
        stderr.contains("cannot read the certificate chain") && stderr.contains("cert.pem"),
        "{stderr}"
    );
}

#[test]
fn a_handshake_timeout_that_is_not_seconds_stops_the_master_naming_it() {
    let certificate = TestCertificate::new("timeout-setting");
    let cert = certificate.cert_path();
    let key = certificate.key_path();
    let mut cluster = ClusterProcess::spawn(
        Program::Example("hello"),
        &[
            ("CLUSTER_WORKERS", "1"),
            ("CLUSTER_TLS_CERT", cert.to_str().expect("a UTF-8 path")),
            ("CLUSTER_TLS_KEY", key.to_str().expect("a UTF-8 path")),
            ("CLUSTER_TLS_HANDSHAKE_TIMEOUT", "0"),
        ],
    );
    let status = cluster
        .wait_exit(Duration::from_secs(20))
        .expect("the master gives up");
    assert_eq!(status.code(), Some(2));
    let stderr = cluster.stderr();
    assert!(
        stderr.contains("CLUSTER_TLS_HANDSHAKE_TIMEOUT=\"0\" is not a handshake timeout"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_not_finished_within_the_timeout_is_closed_and_counted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certificate = TestCertificate::new("timeout");
    let (cluster, address) = start_with(&certificate, &[("CLUSTER_TLS_HANDSHAKE_TIMEOUT", "1")]);
    // One client sends nothing, the other the first bytes of a ClientHello record only.
    let silent = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let mut partial = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01])
        .await
        .expect("write");
    let opened = std::time::Instant::now();
    for mut client in [silent, partial] {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest));
        assert!(
            closed.await.is_ok(),
            "the worker closes it after the timeout"
        );
        assert!(rest.is_empty(), "nothing is sent: {rest:?}");
    }
    assert!(
        opened.elapsed() >= Duration::from_millis(900),
        "not before the timeout"
    );
    let (failures, timeout) = (
        "cluster_tls_handshake_failures_total",
        [("reason", "timeout")],
    );
    let samples =
        clustered_testkit::wait_for_samples(cluster.metrics_address(), failures, &timeout, 2.0)
            .await;
    assert_eq!(clustered_testkit::value(&samples, failures, &timeout), 2.0);
    // Others are served all along.
    let exchange = get_tls(address, "/", certificate.client(&[b"h2"])).await;
    assert_eq!(exchange.reply.body, "hello world\n");
}

/// `count` requests, each on a new TLS connection with `client` (whose session store carries
/// tickets from one to the next); returns how many resumed, and the workers that answered.
async fn resumptions(
    address: std::net::SocketAddr,
    client: &std::sync::Arc<rustls::ClientConfig>,
    count: usize,
) -> (usize, std::collections::BTreeSet<String>) {
    let mut resumed = 0;
    let mut workers = std::collections::BTreeSet::new();
    for _ in 0..count {
        let exchange = get_tls(address, "/", std::sync::Arc::clone(client)).await;
        assert_eq!(exchange.reply.status, 200);
        resumed += usize::from(exchange.resumed);
        workers.extend(exchange.reply.worker_id);
    }
    (resumed, workers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_on_any_worker_after_a_key_rotation_and_after_a_reload() {
    let certificate = TestCertificate::new("resume");
    let (cluster, address) = start_with(&certificate, &[("CLUSTER_TLS_TICKET_ROTATION", "2")]);
    let client = certificate.client(&[b"http/1.1"]);
    // The first handshake is a full one; every one after resumes, whichever worker takes it.
    let first = get_tls(address, "/", std::sync::Arc::clone(&client)).await;
    assert!(!first.resumed);
    let (resumed, workers) = resumptions(address, &client, 100).await;
    assert_eq!(resumed, 100, "every one of 100 resumed");
    assert_eq!(workers.len(), 2, "over both workers: {workers:?}");

    // For longer than a rotation period (2 s here), every connection resumes: the one right
    // after a rotation with a ticket sealed under the key before.
    let started = std::time::Instant::now();
    let (mut resumed, mut made) = (0, 0);
    while started.elapsed() < Duration::from_millis(2_500) {
        let (more, _) = resumptions(address, &client, 10).await;
        resumed += more;
        made += 10;
    }
    assert_eq!(resumed, made, "across a rotation");
    assert!(
        cluster
            .stderr()
            .contains("rotated the TLS session-ticket keys"),
        "a rotation happened: {}",
        cluster.stderr()
    );

    // New workers get the same keys before they serve.
    let master = cluster.pid();
    let before = children_of(master);
    cluster.signal(Signal::HUP);
    let replaced = eventually(Duration::from_secs(30), || {
        let now = children_of(master);
        now.len() == 2 && now.iter().all(|pid| !before.contains(pid))
    })
    .await;
    assert!(replaced, "reloaded");
    let (resumed, workers) = resumptions(address, &client, 20).await;
    assert_eq!(resumed, 20, "after a reload, on {workers:?}");
    let samples = clustered_testkit::scrape(cluster.metrics_address()).await;
    let resumed = clustered_testkit::value(&samples, "cluster_tls_resumed_handshakes_total", &[]);
    assert!(
        resumed >= 120.0 + made as f64,
        "{resumed} resumed handshakes counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_swapped_live_serves_new_connections_and_a_broken_one_is_refused() {
    let mut certificate = TestCertificate::new("swap");
    let (socket, socket_text) = control_socket(&certificate);
    let (cluster, address) = start_with(&certificate, &[("CLUSTER_CONTROL_SOCKET", &socket_text)]);
    let old = certificate.der();
    let mut established = TlsConnection::open(address, certificate.client(&[b"http/1.1"])).await;
    assert_eq!(established.certificate, old);
    assert_eq!(established.get("/").await.status, 200);
    let workers = children_of(cluster.pid());

    let new = certificate.renew();
    let reload = || async {
        clustered::control_socket::request(&socket, ControlCommand::TlsReload)
            .await
            .expect("the control socket answers")
    };
    let reply = reload().await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(
        reply.message.as_deref(),
        Some("2 workers load the new TLS certificate; new connections get it")
    );
    // Answered once loaded: the next new connection gets the new one, and every worker does.
    let exchange = get_tls(address, "/", certificate.client(&[b"http/1.1"])).await;
    assert_eq!(exchange.certificate, new);
    let swapped = serves_only(address, &certificate, &new).await;
    assert!(swapped, "new connections see the new certificate");
    // The connection made before goes on, and no worker was replaced.
    assert_eq!(established.get("/").await.status, 200);
    assert_eq!(children_of(cluster.pid()), workers, "no reload");

    // A broken PEM is refused, naming the file; the certificate before keeps serving.
    std::fs::write(
        certificate.cert_path(),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .expect("a broken PEM");
    // The answer names each worker and the file, and fails; each worker logs it too.
    let reply = reload().await;
    assert!(!reply.ok && !reply.refused, "{reply:?}");
    let why = reply.error.unwrap_or_default();
    for id in [1, 2] {
        let refusal = format!("worker {id} (pid ");
        assert!(why.contains(&refusal), "{why}");
    }
    assert_eq!(
        why.matches("keeps the certificate before: ").count(),
        2,
        "{why}"
    );
    assert!(why.contains("cert.pem"), "{why}");
    assert!(
        why.ends_with("0 of 2 workers load the new certificate"),
        "{why}"
    );
    // Logged before the answer, but read from the worker's pipe on its own time.
    assert!(
        cluster.wait_for_stderr(
            "the certificate before keeps serving",
            Duration::from_secs(10)
        ),
        "{}",
        cluster.stderr()
    );
    let exchange = get_tls(address, "/", certificate.client(&[b"http/1.1"])).await;
    assert_eq!(exchange.certificate, new, "still the good one");
}

/// Whether, within 10 s, four full handshakes in a row (a client of its own each: a resumed
/// session would show the certificate it began with) meet the certificate `der`, which is
/// enough to meet both workers.
async fn serves_only(
    address: std::net::SocketAddr,
    certificate: &TestCertificate,
    der: &[u8],
) -> bool {
    eventually_async(|| async {
        let mut all = true;
        for _ in 0..4 {
            let client = certificate.client(&[b"http/1.1"]);
            all &= get_tls(address, "/", client).await.certificate == der;
        }
        all
    })
    .await
}

/// Polls `check` (an async condition) for up to 10 s.
async fn eventually_async<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_across_an_upgrade_of_the_master() {
    let certificate = TestCertificate::new("upgrade");
    let (socket, socket_text) = control_socket(&certificate);
    let (mut cluster, address) =
        start_with(&certificate, &[("CLUSTER_CONTROL_SOCKET", &socket_text)]);
    let client = certificate.client(&[b"http/1.1"]);
    assert!(
        !get_tls(address, "/", std::sync::Arc::clone(&client))
            .await
            .resumed
    );
    let reply = clustered::control_socket::request(&socket, ControlCommand::Upgrade)
        .await
        .expect("the control socket answers");
    assert!(reply.ok, "{reply:?}");
    let new = reply.new_pid.expect("the new master");
    // Not this test's child: killed here however the test ends.
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            if clustered_testkit::is_alive(self.0) {
                clustered_testkit::signal_pid(self.0, Signal::KILL);
            }
        }
    }
    let _new = Kill(new);
    assert!(
        cluster.wait_exit(Duration::from_secs(20)).is_some(),
        "the old master exits"
    );
    // Served by the new master's workers, with the old master's ticket keys.
    let (resumed, workers) = resumptions(address, &client, 10).await;
    assert_eq!(resumed, 10, "resumed across the upgrade, on {workers:?}");
    assert!(
        clustered::control_socket::request(&socket, ControlCommand::Stop)
            .await
            .expect("stop")
            .ok
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_watch_mode_on_the_pem_files_new_workers_serve_the_new_certificate() {
    let mut certificate = TestCertificate::new("watch");
    let watched = certificate.dir().to_str().expect("a UTF-8 path").to_owned();
    let (cluster, address) = start_with(&certificate, &[("CLUSTER_WATCH", &watched)]);
    let workers = children_of(cluster.pid());
    let client = certificate.client(&[b"http/1.1"]);
    assert_eq!(
        get_tls(address, "/", std::sync::Arc::clone(&client))
            .await
            .certificate,
        certificate.der()
    );
    let new = certificate.renew();
    let swapped = serves_only(address, &certificate, &new).await;
    assert!(
        swapped,
        "the reload's workers serve the new certificate: {}",
        cluster.stderr()
    );
    let now = children_of(cluster.pid());
    assert!(
        now.iter().all(|pid| !workers.contains(pid)),
        "by a rolling reload: {workers:?} -> {now:?}"
    );
}
