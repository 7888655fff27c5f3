//! A rolling reload whose replacement fails is aborted: the old workers keep serving and an
//! error event says why.

use std::time::Duration;

use clustered_testkit::{ClusterProcess, Program, children_of, get, wait_until};
use rustix::process::Signal;

/// Starts the fixture with 2 workers whose later replacements read `fault`, reloads, and
/// returns the `reload-failed` line after checking that the old workers still serve.
async fn reload_with_faulty_replacements(fault: &str) -> String {
    let fault_file =
        std::env::temp_dir().join(format!("cluster-fault-{}-{}", std::process::id(), fault));
    let _ = std::fs::remove_file(&fault_file);
    let (cluster, address) = ClusterProcess::start(
        Program::Fixture,
        &[
            ("CLUSTER_WORKERS", "2"),
            ("FIXTURE_RELOAD_TIMEOUT_MS", "1000"),
            ("FIXTURE_FAULT_FILE", fault_file.to_str().unwrap()),
        ],
    );
    let before = cluster.worker_pids();
    std::fs::write(&fault_file, fault).unwrap();
    cluster.signal(Signal::HUP);
    let lines = cluster.wait_for_line("event: reload-failed", Duration::from_secs(20));
    let _ = std::fs::remove_file(&fault_file);
    let failed = lines.expect("a reload-failed event").pop().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || children_of(cluster.pid())
            == before),
        "the old workers, and only they, remain: {:?} vs {before:?}",
        children_of(cluster.pid())
    );
    for _ in 0..4 {
        let reply = get(address, "/").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "fixture\n"));
    }
    assert!(
        !cluster
            .stdout_lines()
            .iter()
            .any(|line| line.starts_with("event: disconnect")),
        "no old worker was retired"
    );
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_not_listening_in_time_aborts_the_reload() {
    let failed = reload_with_faulty_replacements("slow-start").await;
    assert!(
        failed.starts_with("event: reload-failed worker=1"),
        "{failed}"
    );
    assert!(failed.contains("not listening within 1s"), "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_dying_at_start_aborts_the_reload() {
    let failed = reload_with_faulty_replacements("crash-at-start").await;
    assert!(
        failed.starts_with("event: reload-failed worker=1"),
        "{failed}"
    );
    assert!(
        failed.contains("exited before listening: exit code 3"),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_of_another_protocol_version_aborts_the_reload_naming_the_reason() {
    let failed = reload_with_faulty_replacements("old-protocol").await;
    assert!(
        failed.starts_with("event: reload-failed worker=1"),
        "{failed}"
    );
    assert!(failed.contains("killed (protocol-version"), "{failed}");
    assert!(!failed.contains("signal 9"), "{failed}");
}
