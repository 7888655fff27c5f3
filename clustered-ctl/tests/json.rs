//! `clusterctl --json` against a real cluster: every verb prints one JSON object with `ok` and
//! its data as fields (`workers`, `from`/`to`, `replaced`, `lines`, `metrics`), a refusal or a
//! failure `ok: false` with `error` and `refused`, an unreachable master or a command line
//! clap refuses too (exit 2); `logs -f --json` one object per line; `--version`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clustered_testkit::{ClusterProcess, Program, wait_until};

mod common;
use common::{SocketPath, clusterctl, json, text};
#[path = "common/follower.rs"]
mod follower;
use follower::Follower;

/// Runs `clusterctl --socket SOCKET ARGS… --json`, checks its exit status and returns what it
/// printed.
fn run(socket: &Path, args: &[&str], status: i32) -> serde_json::Value {
    let mut args = args.to_vec();
    args.push("--json");
    let output = clusterctl(socket, &args, None);
    assert_eq!(
        output.status.code(),
        Some(status),
        "{args:?}: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let reply = json(&output);
    assert_eq!(reply["ok"], status == 0, "{args:?}: {reply}");
    reply
}

/// The (id, pid) of every worker in a reply's `workers`, sorted.
fn workers(reply: &serde_json::Value) -> Vec<(u64, u64)> {
    let mut workers: Vec<(u64, u64)> = reply["workers"]
        .as_array()
        .unwrap_or_else(|| panic!("workers: {reply}"))
        .iter()
        .map(|row| (row["id"].as_u64().unwrap(), row["pid"].as_u64().unwrap()))
        .collect();
    workers.sort();
    workers
}

/// Waits (at most 10 s) until `clusterctl ls` lists `count` workers.
fn wait_for_workers(path: &Path, count: usize) {
    assert!(
        wait_until(Duration::from_secs(10), || workers(&run(path, &["ls"], 0))
            .len()
            == count),
        "{count} workers listed"
    );
}

/// A reply's `replaced` as (id, old pid, new pid), sorted.
fn replaced(reply: &serde_json::Value) -> Vec<(u64, u64, u64)> {
    let mut replaced: Vec<(u64, u64, u64)> = reply["replaced"]
        .as_array()
        .unwrap_or_else(|| panic!("replaced: {reply}"))
        .iter()
        .map(|step| {
            (
                step["id"].as_u64().unwrap(),
                step["old_pid"].as_u64().unwrap(),
                step["new_pid"].as_u64().unwrap(),
            )
        })
        .collect();
    replaced.sort();
    replaced
}

/// The (slot, old pid) of each replacement: the workers that were replaced.
fn old_workers(replaced: &[(u64, u64, u64)]) -> Vec<(u64, u64)> {
    replaced.iter().map(|(id, old, _)| (*id, *old)).collect()
}

/// Asserts a failure's shape: `ok: false`, an `error` that says `says`, and `refused`.
fn assert_failure(reply: &serde_json::Value, says: &str, refused: bool) {
    assert_eq!(reply["ok"], false, "{reply}");
    assert_eq!(reply["refused"], refused, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|error| error.contains(says)),
        "{says:?} in {reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_answers_one_json_object_with_ok_and_its_data() {
    let socket = SocketPath::new("json");
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (mut cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let path = &socket.0;

    let listed = workers(&run(path, &["ls"], 0));
    assert_eq!(listed.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 2]);
    let shown = workers(&run(path, &["show", "1"], 0));
    assert_eq!(shown, listed[..1]);

    let reply = run(path, &["scale", "3"], 0);
    assert_eq!(
        (&reply["from"], &reply["to"]),
        (&2.into(), &3.into()),
        "{reply}"
    );
    let reply = run(path, &["scale", "3"], 0);
    assert_eq!(
        (&reply["from"], &reply["to"]),
        (&3.into(), &3.into()),
        "{reply}"
    );
    let reply = run(path, &["scale", "-1"], 0);
    assert_eq!(
        (&reply["from"], &reply["to"]),
        (&3.into(), &2.into()),
        "{reply}"
    );
    wait_for_workers(path, 2);

    let before = workers(&run(path, &["ls"], 0));
    let reply = run(path, &["kill", "2"], 0);
    let killed = replaced(&reply);
    assert_eq!(killed.len(), 1, "{reply}");
    let (id, old_pid, new_pid) = killed[0];
    assert_eq!((id, old_pid), before[1], "{reply}");
    assert_ne!(new_pid, old_pid);
    assert!(
        workers(&run(path, &["ls"], 0)).contains(&(2, new_pid)),
        "the successor is listed"
    );

    wait_for_workers(path, 2);
    let before = workers(&run(path, &["ls"], 0));
    let reply = run(path, &["reload"], 0);
    let reloaded = replaced(&reply);
    assert_eq!(
        old_workers(&reloaded),
        before,
        "each slot's old worker: {reply}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let now = workers(&run(path, &["ls"], 0));
            now == reloaded
                .iter()
                .map(|(id, _, new)| (*id, *new))
                .collect::<Vec<_>>()
        }),
        "the successors are the workers now: {reply}"
    );

    // Lines printed by a worker come back as objects.
    let _ = clustered_testkit::http::get(address, "/print?n=3").await;
    let mut lines = Vec::new();
    assert!(wait_until(Duration::from_secs(5), || {
        let reply = run(path, &["logs", "--lines", "100"], 0);
        lines = reply["lines"].as_array().cloned().unwrap_or_default();
        lines.iter().any(|line| {
            line["line"]
                .as_str()
                .is_some_and(|line| line.starts_with("print "))
        })
    }));
    for line in &lines {
        assert!(line["id"].is_u64() && line["stream"].is_string(), "{line}");
    }

    let reply = run(path, &["metrics"], 0);
    let samples = reply["metrics"].as_array().expect("samples");
    assert!(!samples.is_empty(), "{reply}");
    for sample in samples {
        assert!(
            sample["name"].is_string()
                && sample["labels"].is_object()
                && sample["value"].is_string(),
            "{sample}"
        );
    }

    // Refused (nothing changed), and failed.
    let reply = run(path, &["kill", "9"], 1);
    assert_failure(&reply, "no worker 9 is running", true);
    let reply = run(path, &["show", "9"], 1);
    assert_failure(&reply, "no worker 9", false);

    let reply = run(path, &["stop"], 0);
    assert!(reply["message"].is_string(), "{reply}");
    assert!(cluster.wait_exit(Duration::from_secs(15)).is_some());
    let reply = run(path, &["ls"], 2);
    assert_failure(&reply, "cannot connect", false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_logs_json_prints_one_object_per_line() {
    let socket = SocketPath::new("json-follow");
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (_cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let follower = Follower::start(&socket, &["--lines", "0", "--json"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut followed = Vec::new();
    while followed.len() < 3 && Instant::now() < deadline {
        let _ = clustered_testkit::http::get(address, "/print?n=3").await;
        while let Ok(line) = follower.lines.recv_timeout(Duration::from_millis(200)) {
            let object: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line}"));
            assert_eq!(object["ok"], true, "{object}");
            assert_eq!(object["id"], 1, "{object}");
            assert!(object["line"].is_string(), "{object}");
            followed.push(object);
        }
    }
    drop(follower);
    assert!(
        followed.len() >= 3,
        "the new lines, one object each: {followed:?}"
    );
}

#[test]
fn the_version_and_errors_without_a_master() {
    let output = Command::new(env!("CARGO_BIN_EXE_clusterctl"))
        .arg("--version")
        .output()
        .expect("clusterctl --version");
    assert!(output.status.success());
    let version = format!("clusterctl {}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        text(&output.stdout).trim(),
        version,
        "clusterctl 0.1.0 today"
    );

    let socket = SocketPath::new("json-nobody");
    let reply = run(&socket.0, &["ls"], 2);
    assert_failure(&reply, "cannot connect", false);
    let reply = run(&socket.0, &["scale", "many"], 2);
    assert_failure(&reply, "is not a count", false);
}

#[test]
fn a_reload_names_the_agents_old_pid_too() {
    // The agent's old worker exits before its successor starts: its pid still comes back.
    let socket = SocketPath::new("json-agent");
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (_cluster, _address) = ClusterProcess::start(Program::Example("agent"), &env);
    let path = &socket.0;
    let mut before = Vec::new();
    assert!(wait_until(Duration::from_secs(10), || {
        before = workers(&run(path, &["ls"], 0));
        before.len() == 2
    }));
    assert_eq!(before.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [0, 1]);
    let reply = run(path, &["reload"], 0);
    let reloaded = replaced(&reply);
    assert_eq!(old_workers(&reloaded), before, "{reply}");
}
