//! `CLUSTER_LOG_FORMAT=json` with real processes: every line the master writes to stderr, its
//! own (through the default subscriber, which `hello` keeps) and each worker's, is one JSON
//! object with `ts`, `level`, `worker`, `stream` and `msg`, the form a container's log
//! collector parses.

use std::time::Duration;

use clustered_testkit::{ClusterProcess, Program};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_every_line_of_the_master_s_stderr_is_one_object() {
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_LOG_FORMAT", "json"),
        ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Example("hello"), &env);
    assert_eq!(clustered_testkit::get(address, "/").await.status, 200);
    // The metrics address is announced too (as an object, its text inside).
    let metrics = cluster.metrics_address();
    assert_eq!(clustered_testkit::get(metrics, "/livez").await.status, 200);
    cluster.signal(rustix::process::Signal::TERM);
    assert!(
        cluster.wait_for_stderr("stopping gracefully", Duration::from_secs(10)),
        "{}",
        cluster.stderr()
    );
    let stderr = cluster.stderr();
    let mut lines = 0;
    for line in stderr.lines() {
        let object = one_object(line);
        assert_eq!(
            object["worker"],
            serde_json::Value::Null,
            "the master's own: {line}"
        );
        lines += 1;
    }
    assert!(lines >= 3, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_a_worker_s_lines_come_out_as_objects_naming_it_and_its_stream() {
    let env = [("CLUSTER_WORKERS", "1"), ("CLUSTER_LOG_FORMAT", "json")];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    assert_eq!(
        clustered_testkit::get(address, "/print?n=3").await.status,
        200
    );
    assert!(
        clustered_testkit::wait_until(Duration::from_secs(10), || {
            cluster
                .stdout_lines()
                .iter()
                .filter(|line| line.contains("print "))
                .count()
                >= 3
        }),
        "{:?}",
        cluster.stdout_lines()
    );
    for line in cluster
        .stdout_lines()
        .iter()
        .filter(|line| line.contains("print "))
    {
        let object = one_object(line);
        assert_eq!(
            (object["worker"].as_u64(), object["stream"].as_str()),
            (Some(1), Some("out")),
            "{line}"
        );
        assert_eq!(object["level"], "info", "{line}");
        assert!(
            object["msg"]
                .as_str()
                .is_some_and(|msg| msg.starts_with("print ")),
            "{line}"
        );
    }
}

/// `line` as one JSON object with every field of the format.
fn one_object(line: &str) -> serde_json::Value {
    let object: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|error| panic!("{error}: not one JSON object: {line:?}"));
    for key in ["ts", "level", "worker", "stream", "msg"] {
        assert!(object.get(key).is_some(), "{key} in {line}");
    }
    assert!(
        object["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')),
        "{line}"
    );
    object
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_log_format_stops_the_master_naming_the_choices() {
    let output = std::process::Command::new(Program::Fixture.path())
        .env("CLUSTER_LOG_FORMAT", "xml")
        .env("PORT", "0")
        .output()
        .expect("the fixture runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"invalid CLUSTER_LOG_FORMAT="xml": the log format is text or json"#),
        "{stderr}"
    );
}
