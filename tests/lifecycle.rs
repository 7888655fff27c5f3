//! Worker lifecycle with real processes, signals and load: replacement of a killed worker,
//! crash-loop protection, zero-downtime rolling reload, graceful and forced stop, events.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use clustered_testkit::{
    ClusterProcess, Connections, Load, Program, children_of, eventually, get, signal_pid,
    wait_all_gone, wait_in_flight,
};
use rustix::process::Signal;

/// Two workers, and the master's metrics (the tests wait on requests in flight there).
const TWO_WORKERS: &[(&str, &str)] = &[
    ("CLUSTER_WORKERS", "2"),
    ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_replaced_within_a_second_and_later_requests_all_succeed() {
    let (cluster, address) = ClusterProcess::start(Program::Example("hello"), TWO_WORKERS);
    let master = cluster.pid();
    let before = cluster.worker_pids();
    let load = Load::start(address, "/", 8, Connections::PerRequest);
    assert!(
        load.wait_for(300, Duration::from_secs(30)).await,
        "load runs"
    );

    let victim = before[0];
    let killed_at = Instant::now();
    signal_pid(victim, Signal::KILL);
    assert!(
        eventually(Duration::from_secs(5), || !clustered_testkit::is_alive(
            victim
        ))
        .await
    );
    let died_at = Instant::now();

    let mut replacement = None;
    let back = eventually(Duration::from_secs(5), || {
        replacement = children_of(master)
            .into_iter()
            .find(|pid| !before.contains(pid));
        replacement.is_some()
    })
    .await;
    assert!(back, "no replacement process");
    let replacement = replacement.unwrap();
    let mut served_by_replacement = false;
    while !served_by_replacement && killed_at.elapsed() < Duration::from_secs(1) {
        served_by_replacement = get(address, "/whoami").await.whoami_pid() == replacement;
    }
    assert!(
        served_by_replacement,
        "the replacement did not serve within a second of the kill"
    );
    println!("slot back after {:?}", killed_at.elapsed());

    let more = load.completed() + 300;
    assert!(load.wait_for(more, Duration::from_secs(30)).await);
    let report = load.stop().await;
    let late: Vec<_> = report
        .failures
        .iter()
        .filter(|f| f.started >= died_at)
        .collect();
    assert!(
        late.is_empty(),
        "requests started after the death failed: {late:?}"
    );
    assert!(
        report.failures.len() <= 8,
        "at most one in-flight request per client: {:?}",
        report.failures
    );
    assert_eq!(report.non_2xx, 0);
}

#[test]
fn a_worker_that_dies_at_start_stops_the_master_with_a_clear_error() {
    let started = Instant::now();
    let mut cluster = ClusterProcess::spawn(
        Program::Fixture,
        &[
            ("CLUSTER_WORKERS", "2"),
            ("FIXTURE_FAULT", "crash-at-start"),
        ],
    );
    let status = cluster
        .wait_exit(Duration::from_secs(10))
        .expect("the master gives up within 10 s");
    assert!(!status.success(), "{status}");
    println!(
        "the crash loop stopped the master after {:?}",
        started.elapsed()
    );
    let stderr = cluster.stderr();
    assert!(stderr.contains("died 4 times in a row"), "{stderr}");
    assert!(stderr.contains("exit code 3"), "{stderr}");
    assert!(
        stderr.contains("its last error output:\n  fixture: failing at start on purpose"),
        "the error ends with the worker's own last words: {stderr}"
    );
    let forks = cluster
        .stdout_lines()
        .iter()
        .filter(|line| line.starts_with("event: fork"))
        .count();
    assert!(
        (4..=8).contains(&forks),
        "{forks} workers started: spinning?"
    );
}

/// SIGHUP under load: no failed request, no non-2xx, every worker replaced.
async fn reload_under_load(connections: Connections, clients: usize) {
    let (cluster, address) = ClusterProcess::start(Program::Example("hello"), TWO_WORKERS);
    let master = cluster.pid();
    let before = cluster.worker_pids();
    assert_eq!(before.len(), 2);
    let load = Load::start(address, "/", clients, connections);
    assert!(
        load.wait_for(2_000, Duration::from_secs(60)).await,
        "load runs"
    );

    cluster.signal(Signal::HUP);
    let reloaded = eventually(Duration::from_secs(60), || {
        let now = children_of(master);
        now.len() == 2 && now.iter().all(|pid| !before.contains(pid))
    })
    .await;
    assert!(
        reloaded,
        "workers not all replaced: {:?}",
        children_of(master)
    );
    let target = (load.completed() + 2_000).max(20_000);
    assert!(
        load.wait_for(target, Duration::from_secs(180)).await,
        "load finishes"
    );
    let report = load.stop().await;

    report.assert_all_2xx("reload under load");
    assert!(report.ok >= 20_000, "{} requests", report.ok);
    let after: BTreeSet<u32> = children_of(master).into_iter().collect();
    assert!(
        after.iter().all(|pid| !before.contains(pid)),
        "every pid changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_with_zero_failures_under_32_clients_on_new_connections() {
    reload_under_load(Connections::PerRequest, 32).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_with_zero_failures_under_64_keep_alive_clients() {
    reload_under_load(Connections::KeepAlive, 64).await;
}

#[test]
fn a_second_sighup_during_a_reload_runs_one_more_reload_after_it() {
    // Slow-starting workers keep the first reload running while the next signals arrive.
    let (cluster, _address) = ClusterProcess::start(
        Program::Fixture,
        &[("CLUSTER_WORKERS", "2"), ("FIXTURE_START_DELAY_MS", "500")],
    );
    cluster.signal(Signal::HUP);
    let started = cluster.wait_for_line("event: reload-started", Duration::from_secs(10));
    assert!(started.is_some(), "{:#?}", cluster.stdout_lines());
    // Two more during the reload: signals of one kind that wait together merge anyway, and
    // the master must queue the request rather than start a second reload beside the first.
    cluster.signal(Signal::HUP);
    cluster.signal(Signal::HUP);
    let done = clustered_testkit::wait_until(Duration::from_secs(30), || {
        let lines = cluster.stdout_lines();
        lines
            .iter()
            .filter(|l| l.as_str() == "event: reload-finished")
            .count()
            >= 2
    });
    assert!(done, "{:#?}", cluster.stdout_lines());
    // A third reload would start as the second finishes; by the time the second's old
    // workers have exited, it would show.
    let exits = || {
        cluster
            .stdout_lines()
            .iter()
            .filter(|line| line.starts_with("event: exit "))
            .count()
    };
    assert!(clustered_testkit::wait_until(
        Duration::from_secs(30),
        || exits() >= 4
    ));
    let reload_events: Vec<String> = cluster
        .stdout_lines()
        .into_iter()
        .filter(|line| *line == "event: reload-started" || *line == "event: reload-finished")
        .map(|line| line.split(' ').nth(1).unwrap().to_owned())
        .collect();
    // Coalesced into exactly one more, never interleaved.
    assert_eq!(
        reload_events,
        [
            "reload-started",
            "reload-finished",
            "reload-started",
            "reload-finished"
        ]
    );
    let reloaded = cluster
        .stdout_lines()
        .iter()
        .filter(|line| line.starts_with("event: reloaded"))
        .count();
    assert_eq!(reloaded, 4, "two slots, two reloads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_ten_slow_requests_finish_and_refuses_new_connections() {
    let (mut cluster, address) = ClusterProcess::start(Program::Example("hello"), TWO_WORKERS);
    let workers = cluster.worker_pids();
    let slow: Vec<_> = (0..10)
        .map(|_| tokio::spawn(get(address, "/slow?ms=2000")))
        .collect();
    wait_in_flight(&cluster, 10).await;
    cluster.signal(Signal::TERM);
    let refused = eventually(Duration::from_secs(2), || {
        std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err()
    })
    .await;
    assert!(
        refused,
        "new connections still accepted after the stop began"
    );
    for request in slow {
        let reply = request.await.expect("the slow request completes");
        assert_eq!((reply.status, reply.body.as_str()), (200, "slow done\n"));
    }
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the master exits");
    assert!(status.success(), "{status}");
    assert!(
        wait_all_gone(&workers, Duration::from_secs(5)),
        "no process of the cluster is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_stops_at_once() {
    let (mut cluster, address) = ClusterProcess::start(Program::Example("hello"), TWO_WORKERS);
    let workers = cluster.worker_pids();
    let _slow = tokio::spawn(get(address, "/slow?ms=20000"));
    wait_in_flight(&cluster, 1).await;
    cluster.signal(Signal::INT);
    assert!(cluster.wait_for_stderr("stopping gracefully", Duration::from_secs(10)));
    let second = Instant::now();
    cluster.signal(Signal::INT);
    // At once: well before the 30 s shutdown timeout the slow request would get.
    let status = cluster
        .wait_exit(Duration::from_secs(5))
        .expect("the master exits within 5 s");
    println!(
        "the second SIGINT stopped the master in {:?}",
        second.elapsed()
    );
    assert!(!status.success(), "a forced stop is not a clean one");
    assert!(
        cluster.stderr().contains("stopped at once"),
        "{}",
        cluster.stderr()
    );
    assert!(wait_all_gone(&workers, Duration::from_secs(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_outlives_the_shutdown_timeout_is_killed() {
    let (mut cluster, address) = ClusterProcess::start(
        Program::Fixture,
        &[
            ("CLUSTER_WORKERS", "1"),
            ("FIXTURE_SHUTDOWN_MS", "500"),
            ("CLUSTER_METRICS_ADDR", "127.0.0.1:0"),
        ],
    );
    let workers = cluster.worker_pids();
    let _hanging = tokio::spawn(get(address, "/hang"));
    wait_in_flight(&cluster, 1).await;
    cluster.signal(Signal::TERM);
    let status = cluster
        .wait_exit(Duration::from_secs(15))
        .expect("the master exits");
    assert!(!status.success(), "{status}");
    assert!(
        cluster.stderr().contains("did not stop within"),
        "{}",
        cluster.stderr()
    );
    assert!(wait_all_gone(&workers, Duration::from_secs(5)));
}

#[test]
fn a_workers_life_emits_fork_online_listening_disconnect_exit_in_order() {
    let (mut cluster, _address) = ClusterProcess::start(Program::Fixture, TWO_WORKERS);
    cluster.signal(Signal::TERM);
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the master exits");
    assert!(status.success(), "{status}");
    let lines = cluster.stdout_lines();
    for slot in ["1", "2"] {
        let mine: Vec<&str> = lines
            .iter()
            .filter(|line| line.contains(&format!(" worker={slot} ")))
            .map(String::as_str)
            .collect();
        let kinds: Vec<&str> = mine
            .iter()
            .map(|line| line.split(' ').nth(1).unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["fork", "online", "listening", "disconnect", "exit"],
            "{mine:#?}"
        );
        assert!(mine[4].contains("code=0") && mine[4].ends_with("after_disconnect=true"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_answers_500_and_the_worker_lives() {
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "1")]);
    let workers = cluster.worker_pids();
    let reply = get(address, "/panic").await;
    assert_eq!(reply.status, 500);
    let reply = get(address, "/").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "fixture\n"));
    assert_eq!(
        cluster.worker_pids(),
        workers,
        "the same worker still serves"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_escaping_to_the_worker_main_replaces_the_worker() {
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &[("CLUSTER_WORKERS", "1")]);
    let old = cluster.worker_pids()[0];
    // The worker may die before or after answering: either is fine.
    let _ = tokio::spawn(get(address, "/crash")).await;
    let exit_line = format!("event: exit worker=1 pid={old} code=101");
    let replaced = eventually(Duration::from_secs(10), || {
        let lines = cluster.stdout_lines();
        lines.iter().any(|line| line.starts_with(&exit_line))
            && lines.iter().any(|l| {
                l.starts_with("event: listening worker=1") && !l.contains(&format!("pid={old} "))
            })
    })
    .await;
    assert!(replaced, "{:#?}", cluster.stdout_lines());
    let reply = get(address, "/").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "fixture\n"));
    assert_ne!(cluster.worker_pids(), vec![old]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_ctrl_c_reaches_only_the_master_which_drains_gracefully() {
    let (mut cluster, address) = ClusterProcess::start(Program::Example("hello"), TWO_WORKERS);
    let workers = cluster.worker_pids();
    let slow = tokio::spawn(get(address, "/slow?ms=1500"));
    wait_in_flight(&cluster, 1).await;
    // The whole foreground group, as a terminal sends it: workers in the master's group would
    // die at once and the slow request with them.
    cluster.signal_group(Signal::INT);
    let reply = slow.await.expect("the slow request completes");
    assert_eq!((reply.status, reply.body.as_str()), (200, "slow done\n"));
    let status = cluster
        .wait_exit(Duration::from_secs(30))
        .expect("the master exits");
    assert!(status.success(), "{status}");
    assert!(wait_all_gone(&workers, Duration::from_secs(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_runs_the_binary_now_on_disk() {
    // Run the fixture from a path of our own, then put another program (hello) at that path
    // the way a rebuild does (a new file renamed over the old one).
    let dir = std::env::temp_dir().join(format!("cluster-rebuild-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("server");
    std::fs::copy(Program::Fixture.path(), &exe).unwrap();
    let (cluster, address) = ClusterProcess::start_path(&exe, TWO_WORKERS);
    assert_eq!(get(address, "/").await.body, "fixture\n");
    let rebuilt = dir.join("server.new");
    std::fs::copy(Program::Example("hello").path(), &rebuilt).unwrap();
    std::fs::rename(&rebuilt, &exe).unwrap();

    cluster.signal(Signal::HUP);
    let finished = cluster.wait_for_line("event: reload-finished", Duration::from_secs(30));
    assert!(finished.is_some(), "{:#?}", cluster.stdout_lines());
    for _ in 0..4 {
        let reply = get(address, "/").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "hello world\n"));
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
