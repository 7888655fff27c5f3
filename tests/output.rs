//! Workers' output, with real processes: the master relays every line of each worker prefixed
//! with its slot (PM2's `1|app | …`), and a worker never blocks or dies on its output when the
//! master is slow (stopped) or gone (killed).

use std::time::Duration;

use clustered_testkit::{
    ClusterProcess, Program, bytes_written, get, signal_pid, wait_all_gone, wait_until,
};
use rustix::process::Signal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_output_of_two_workers_arrives_prefixed_and_complete() {
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "2")]);
    // New connections alternate between the workers: one request each.
    for _ in 0..2 {
        assert_eq!(get(address, "/print?n=500").await.body, "printed 500\n");
    }
    let pids = cluster.worker_pids();
    let complete = |pid: u32| {
        let printed: std::collections::HashSet<String> = cluster
            .stdout_lines()
            .iter()
            .filter(|line| line.starts_with("1|fixture | ") || line.starts_with("2|fixture | "))
            .map(|line| line[12..].to_owned())
            .collect();
        (0..500).all(|k| printed.contains(&format!("print {pid} {k}")))
    };
    for pid in pids {
        assert!(
            wait_until(Duration::from_secs(10), || complete(pid)),
            "all 500 lines of worker {pid}, prefixed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_master_never_blocks_a_printing_worker() {
    // Under `shared` the workers accept on their own: they serve while the master is stopped.
    let env = [("CLUSTER_WORKERS", "1"), ("CLUSTER_SCHED_POLICY", "shared")];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let worker = cluster.worker_pids()[0];
    assert_eq!(get(address, "/print?forever=1").await.body, "printing\n");
    signal_pid(cluster.pid(), Signal::STOP);
    // Far more output than a pipe holds, and the worker keeps serving.
    let written = bytes_written(worker);
    assert!(wait_until(Duration::from_secs(10), || bytes_written(
        worker
    ) > written
        + (4 << 20)));
    for _ in 0..10 {
        let reply = tokio::time::timeout(Duration::from_secs(5), get(address, "/")).await;
        assert_eq!(reply.expect("answered in time").status, 200);
    }
    signal_pid(cluster.pid(), Signal::CONT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_master_while_workers_print_heavily_leaves_no_worker_behind() {
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "2")]);
    for _ in 0..2 {
        assert_eq!(get(address, "/print?forever=1").await.body, "printing\n");
    }
    let workers = cluster.worker_pids();
    let written: Vec<u64> = workers.iter().map(|pid| bytes_written(*pid)).collect();
    assert!(wait_until(Duration::from_secs(10), || workers
        .iter()
        .zip(&written)
        .all(|(pid, before)| bytes_written(*pid) > before + (1 << 20))));
    signal_pid(cluster.pid(), Signal::KILL);
    assert!(
        wait_all_gone(&workers, Duration::from_secs(2)),
        "every worker gone within 2 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_files_get_the_output_and_sigusr1_reopens_them_for_logrotate() {
    let dir = std::env::temp_dir().join(format!("cluster-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (out, err) = (dir.join("out.log"), dir.join("err.log"));
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_LOG_FILE", out.to_str().unwrap()),
        ("CLUSTER_ERROR_LOG_FILE", err.to_str().unwrap()),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let pid = cluster.worker_pids()[0];
    let contains = |path: &std::path::Path, text: &str| {
        std::fs::read_to_string(path).is_ok_and(|content| content.contains(text))
    };
    get(address, "/print?n=3").await;
    let line = format!("1|fixture | print {pid} 2");
    assert!(
        wait_until(Duration::from_secs(5), || contains(&out, &line)),
        "{line} in out.log"
    );
    // A worker's panic goes to stderr, so to err.log.
    get(address, "/panic").await;
    assert!(
        wait_until(Duration::from_secs(5), || contains(&err, "1|fixture | ")),
        "err.log"
    );

    // logrotate: move the file away, then SIGUSR1.
    let rotated = dir.join("out.log.1");
    std::fs::rename(&out, &rotated).unwrap();
    cluster.signal(Signal::USR1);
    assert!(
        wait_until(Duration::from_secs(5), || out.exists()),
        "reopened"
    );
    get(address, "/print?n=5").await;
    let line = format!("1|fixture | print {pid} 4");
    assert!(
        wait_until(Duration::from_secs(5), || contains(&out, &line)),
        "new lines in the new file"
    );
    assert!(!contains(&rotated, &line), "not in the rotated one");
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_log_file_that_cannot_be_opened_stops_the_master_naming_it() {
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_LOG_FILE", "/nonexistent-directory/out.log"),
    ];
    let stderr = ClusterProcess::expect_failure(Program::Fixture, &env);
    assert!(
        stderr.contains("cannot open the log file /nonexistent-directory/out.log"),
        "{stderr}"
    );
}

#[test]
fn the_last_lines_of_a_worker_that_fails_at_start_arrive_whole_every_time() {
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("FIXTURE_FAULT", "fail-after-join"),
    ];
    let mut cluster = ClusterProcess::spawn(Program::Fixture, &env);
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the crash loop stops the master");
    assert_eq!(status.code(), Some(1));
    let lines = cluster.stdout_lines();
    let deaths: Vec<u32> = lines
        .iter()
        .filter(|line| line.starts_with("event: exit "))
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix("pid="))?
                .parse()
                .ok()
        })
        .collect();
    assert!(deaths.len() >= 4, "{lines:#?}");
    for pid in &deaths {
        let whole = format!("fixture: last words of pid {pid} {} end", "x".repeat(300));
        assert!(
            lines.iter().any(|line| line.ends_with(&whole)),
            "the last words of {pid} arrived whole: {lines:#?}"
        );
    }
    let stderr = cluster.stderr();
    assert!(
        stderr.contains("failing after joining, on purpose"),
        "the crash-loop error quotes the last lines: {stderr}"
    );
    println!("{} deaths, the last words of each whole", deaths.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigtermed_workers_last_line_reaches_the_master_and_the_error_log() {
    let dir = std::env::temp_dir().join(format!("cluster-last-words-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err_log = dir.join("err.log");
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_ERROR_LOG_FILE", err_log.to_str().unwrap()),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    for _ in 0..4 {
        // The worker that serves now (a successor that is still starting would die of the
        // signal before it handles it).
        let pid = get(address, "/whoami").await.whoami_pid();
        signal_pid(pid, Signal::TERM);
        assert!(wait_all_gone(&[pid], Duration::from_secs(10)));
    }
    let drains = |text: &str| text.matches("received SIGTERM; draining").count();
    assert!(
        wait_until(Duration::from_secs(5), || drains(&cluster.stderr()) >= 4),
        "4 of 4 drains said so on the master's stderr: {}",
        cluster.stderr()
    );
    let logged = std::fs::read_to_string(&err_log).unwrap_or_default();
    assert_eq!(drains(&logged), 4, "and in the error log: {logged}");
    // The fixture's workers log in colour; what the master passes on to a pipe or a file has
    // no escape codes (its own lines are the program's: the fixture colours them).
    let relayed: Vec<String> = cluster
        .stderr()
        .lines()
        .filter(|line| line.starts_with("1|fixture | "))
        .map(str::to_owned)
        .collect();
    assert!(!relayed.is_empty());
    assert!(
        relayed.iter().all(|line| !line.contains('\x1b')),
        "{relayed:?}"
    );
    assert!(!logged.contains('\x1b'), "{logged:?}");
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_installs_no_logging_still_says_what_goes_wrong() {
    // `hello` installs no tracing subscriber, and RUST_LOG is empty: the defaults.
    let env = [("CLUSTER_WORKERS", "1"), ("RUST_LOG", "")];
    let (cluster, address) = ClusterProcess::start(Program::Example("hello"), &env);
    let worker = cluster.worker_pids()[0];
    signal_pid(worker, Signal::KILL);
    assert!(
        cluster.wait_for_stderr("worker exited unexpectedly", Duration::from_secs(10)),
        "the crash is on stderr: {:?}",
        cluster.stderr()
    );
    let stderr = cluster.stderr();
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "no colour on a pipe: {stderr:?}");
    assert!(
        !stderr.contains("INFO"),
        "warnings and errors only: {stderr}"
    );
    assert!(wait_until(Duration::from_secs(10), || {
        cluster.worker_pids().len() == 1 && !cluster.worker_pids().contains(&worker)
    }));
    assert_eq!(get(address, "/").await.status, 200);
}
