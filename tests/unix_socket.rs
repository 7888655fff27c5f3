//! HTTP over a Unix socket (`unix:PATH`), with real processes: bound by the master under `rr`
//! and `shared`, a stale file left by a dead process replaced, a live one refused, the file
//! removed on a stop.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clustered_testkit::{ClusterProcess, Program, signal_pid};
use rustix::process::Signal;

/// A directory of its own for one test's socket, removed when dropped.
struct SocketDir(PathBuf);

impl SocketDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("clustered-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("app.sock")
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the fixture on `unix:path` under `policy`; returns it once it says where it listens.
fn start_on(path: &Path, policy: &str) -> ClusterProcess {
    let address = format!("unix:{}", path.display());
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_SCHED_POLICY", policy),
        ("FIXTURE_ADDRESS", address.as_str()),
    ];
    let mut cluster = ClusterProcess::spawn(Program::Fixture, &env);
    assert_eq!(cluster.wait_listening_text(), address);
    cluster
}

/// Sends `count` requests, each on a new connection; returns the workers that answered.
async fn workers_answering(path: &Path, count: usize) -> BTreeSet<String> {
    let mut workers = BTreeSet::new();
    for _ in 0..count {
        let reply = clustered_testkit::get_unix(path, "/whoami").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        workers.extend(reply.worker_id);
    }
    workers
}

/// The workers that answer while each in turn is the only one running (the others stopped
/// with `SIGSTOP`): under `shared` whichever worker accepts first takes a connection from the
/// master's socket, often the same one for a client that connects one at a time, so each is
/// made the only one that can.
async fn each_worker_alone(cluster: &ClusterProcess, path: &Path) -> BTreeSet<String> {
    let pids = cluster.worker_pids();
    let mut workers = BTreeSet::new();
    for alone in &pids {
        let others: Vec<u32> = pids.iter().copied().filter(|pid| pid != alone).collect();
        for pid in &others {
            signal_pid(*pid, Signal::STOP);
        }
        let answered = workers_answering(path, 3).await;
        for pid in &others {
            signal_pid(*pid, Signal::CONT);
        }
        assert_eq!(
            answered.len(),
            1,
            "only the worker running answers: {answered:?}"
        );
        workers.extend(answered);
    }
    workers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_is_served_by_every_worker_and_removed_on_a_stop() {
    for policy in ["rr", "shared"] {
        let dir = SocketDir::new(&format!("unix-{policy}"));
        let path = dir.socket();
        let mut cluster = start_on(&path, policy);
        assert!(
            clustered_testkit::wait_until(Duration::from_secs(10), || {
                cluster.worker_pids().len() == 2
            }),
            "two workers"
        );
        let workers = match policy {
            "shared" => each_worker_alone(&cluster, &path).await,
            _ => {
                let mut workers = BTreeSet::new();
                for _ in 0..10 {
                    workers.extend(workers_answering(&path, 8).await);
                    if workers.len() == 2 {
                        break;
                    }
                }
                workers
            }
        };
        assert_eq!(
            workers.len(),
            2,
            "{policy}: both workers answer: {workers:?}"
        );

        cluster.signal(Signal::TERM);
        let status = cluster
            .wait_exit(Duration::from_secs(20))
            .expect("the master stops");
        assert!(status.success(), "{policy}: {status:?}");
        assert!(
            !path.exists(),
            "{policy}: the socket file is removed on a stop"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_socket_file_is_replaced_and_a_live_one_refused() {
    let dir = SocketDir::new("unix-stale");
    let path = dir.socket();
    // Left by a process that died: nothing listens on it any more.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("a socket"));
    assert!(path.exists());
    let mut cluster = start_on(&path, "rr");
    assert_eq!(
        clustered_testkit::get_unix(&path, "/").await.status,
        200,
        "served on the replaced file"
    );

    // A second master on the same path while the first serves: refused, saying why.
    let address = format!("unix:{}", path.display());
    let mut second = ClusterProcess::spawn(
        Program::Fixture,
        &[
            ("CLUSTER_WORKERS", "1"),
            ("FIXTURE_ADDRESS", address.as_str()),
        ],
    );
    let status = second
        .wait_exit(Duration::from_secs(20))
        .expect("the second master gives up");
    assert!(!status.success());
    assert!(
        second.stderr().contains("a running process answers on it"),
        "{}",
        second.stderr()
    );
    assert_eq!(
        clustered_testkit::get_unix(&path, "/").await.status,
        200,
        "the first one still serves on its file"
    );
    cluster.signal(Signal::TERM);
    assert!(cluster.wait_exit(Duration::from_secs(20)).is_some());
}
