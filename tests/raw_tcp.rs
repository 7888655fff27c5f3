//! The low-level paths: a raw TCP server on delivered streams, and `axum::serve` on a
//! `ClusterListener`.

use std::collections::BTreeSet;
use std::time::Duration;

use clustered_testkit::{ClusterProcess, Program, get};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_workers_answer_on_delivered_streams() {
    let (_cluster, address) =
        ClusterProcess::start(Program::Example("tcp_echo"), &[("CLUSTER_WORKERS", "2")]);
    let mut workers = BTreeSet::new();
    for round in 0..4 {
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(address).await.unwrap();
            let (reader, mut writer) = stream.into_split();
            let mut lines = BufReader::new(reader).lines();
            let mut answers = Vec::new();
            for word in ["ping", "pong"] {
                writer
                    .write_all(format!("{word} {round}\n").as_bytes())
                    .await
                    .unwrap();
                answers.push(lines.next_line().await.unwrap().expect("an echoed line"));
            }
            answers
        };
        let answers = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .unwrap();
        let (prefix, rest) = answers[0].split_once(": ").unwrap();
        assert_eq!(rest, format!("ping {round}"));
        assert_eq!(
            answers[1],
            format!("{prefix}: pong {round}"),
            "one connection, one worker"
        );
        workers.insert(prefix.to_owned());
    }
    assert_eq!(
        workers.into_iter().collect::<Vec<_>>(),
        ["worker 1", "worker 2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_serve_runs_on_a_cluster_listener_and_stops_on_sigterm() {
    let (mut cluster, address) =
        ClusterProcess::start(Program::Example("axum_serve"), &[("CLUSTER_WORKERS", "2")]);
    for _ in 0..4 {
        let reply = get(address, "/").await;
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .body
                .starts_with("hello from axum::serve, client 127.0.0.1:"),
            "{}",
            reply.body
        );
        assert!(reply.worker_id.is_some());
    }
    let workers = cluster.worker_pids();
    cluster.signal(rustix::process::Signal::TERM);
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the master exits");
    assert!(status.success(), "{status}");
    assert!(clustered_testkit::wait_all_gone(
        &workers,
        Duration::from_secs(5)
    ));
}
