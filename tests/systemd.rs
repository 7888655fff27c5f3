//! The master under systemd's notification protocol, with real processes and no systemd: the
//! test is the service manager (its own `NOTIFY_SOCKET`, a Unix datagram socket that checks
//! each sender with `SO_PASSCRED`). Checked: the order and content of the messages through
//! start, a reload (as `Type=notify-reload` checks it), a worker's crash, a scale and a stop;
//! the watchdog fed while the master serves; an abstract `@` socket; workers that say nothing;
//! TCP and Unix sockets handed over as systemd does.

use std::time::Duration;

use clustered_testkit::{ClusterProcess, NotifySocket, Program};
use rustix::process::Signal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_tells_systemd_ready_reloading_status_and_stopping_and_feeds_its_watchdog() {
    let path = std::env::temp_dir().join(format!("clustered-notify-{}.sock", std::process::id()));
    let manager = NotifySocket::listen(path.to_str().expect("a UTF-8 path"));
    let address = manager.address().to_owned();
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("NOTIFY_SOCKET", address.as_str()),
        // A 2 s watchdog: fed every second.
        ("WATCHDOG_USEC", "2000000"),
    ];
    let (cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    let master = cluster.pid();

    let ready = manager.until(master, |text| text.starts_with("READY=1"));
    assert_eq!(
        ready,
        format!("READY=1\nMAINPID={master}\nSTATUS=2 workers listening, 0 restarts")
    );
    // Fed at once after READY=1, then every second while it serves.
    let mut fed = 0;
    let started = std::time::Instant::now();
    while fed < 3 {
        manager.until(master, |text| text == "WATCHDOG=1");
        fed += 1;
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fed at half its period"
    );

    let before_reload = cluster.worker_pids();
    // As systemd's Type=notify-reload does: the time, then SIGHUP; the RELOADING=1 that
    // answers must carry a MONOTONIC_USEC at or after it.
    let signalled = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let signalled_usec = signalled.tv_sec as u64 * 1_000_000 + signalled.tv_nsec as u64 / 1_000;
    cluster.signal(Signal::HUP);
    let reloading = manager.until(master, |text| text.starts_with("RELOADING=1"));
    let lines: Vec<&str> = reloading.lines().collect();
    let usec: u64 = lines[1]
        .strip_prefix("MONOTONIC_USEC=")
        .and_then(|usec| usec.parse().ok())
        .unwrap_or_else(|| panic!("MONOTONIC_USEC after RELOADING=1: {reloading:?}"));
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let now_usec = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000;
    assert!(
        signalled_usec <= usec && usec <= now_usec,
        "RELOADING=1 at {usec}, signalled at {signalled_usec}, now {now_usec}"
    );
    assert!(lines[2].ends_with("reload in progress"), "{reloading:?}");
    let reloaded = manager.until(master, |text| text.starts_with("READY=1"));
    assert_eq!(
        reloaded, "READY=1\nSTATUS=2 workers listening, 0 restarts",
        "the pid is told once"
    );

    // A worker that crashes (one of the new ones, once the old ones are gone): the status
    // counts its restart.
    assert!(
        clustered_testkit::wait_until(Duration::from_secs(20), || {
            let now = cluster.worker_pids();
            now.len() == 2 && now.iter().all(|pid| !before_reload.contains(pid))
        }),
        "the old workers exit after the reload"
    );
    let victim = cluster.worker_pids()[0];
    clustered_testkit::signal_pid(victim, Signal::KILL);
    manager.until(master, |text| {
        text.starts_with("STATUS=") && text.contains("1 restart")
    });

    // Scaled up by one (SIGTTIN, as Gunicorn): the status counts the third worker.
    cluster.signal(Signal::TTIN);
    manager.until(master, |text| {
        text.starts_with("STATUS=3 workers listening")
    });

    cluster.signal(Signal::TERM);
    let stopping = manager.until(master, |text| text.starts_with("STOPPING=1"));
    assert!(stopping.ends_with(", stopping"), "{stopping:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abstract_notify_socket_is_told_too() {
    let name = format!("@clustered-notify-{}", std::process::id());
    let manager = NotifySocket::listen(&name);
    let address = manager.address().to_owned();
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("NOTIFY_SOCKET", address.as_str()),
    ];
    let (cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    let ready = manager.until(cluster.pid(), |text| text.starts_with("READY=1"));
    assert_eq!(
        ready,
        format!(
            "READY=1\nMAINPID={}\nSTATUS=1 worker listening, 0 restarts",
            cluster.pid()
        )
    );
    // Its workers (and what they start) do not inherit the notification socket.
    let worker = cluster.worker_pids()[0];
    let environ =
        std::fs::read(format!("/proc/{worker}/environ")).expect("the worker's environment");
    let environ = String::from_utf8_lossy(&environ);
    assert!(!environ.contains("NOTIFY_SOCKET="), "{environ}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_serves_the_socket_systemd_hands_it_instead_of_binding() {
    // The test binds, as systemd's .socket unit would; the port stays the test's throughout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().unwrap().port().to_string();
    let env = [("CLUSTER_WORKERS", "2"), ("PORT", port.as_str())];
    let (cluster, address) =
        ClusterProcess::start_socket_activated(Program::Fixture, &env, listener, "http");
    // Binding the same address again would have failed: it is served on the inherited socket.
    assert_eq!(address.port().to_string(), port);
    for _ in 0..4 {
        assert_eq!(clustered_testkit::get(address, "/").await.status, 200);
    }
    assert!(
        cluster.wait_for_stderr(
            "serving a socket systemd handed over",
            Duration::from_secs(5)
        ),
        "{}",
        cluster.stderr()
    );
    // Neither the variables nor the descriptor reach the workers (under rr they never hold
    // the listening socket: the master accepts).
    let inherited = std::fs::read_link(format!("/proc/{}/fd/3", cluster.pid())).expect("fd 3");
    for worker in cluster.worker_pids() {
        let environ = std::fs::read(format!("/proc/{worker}/environ")).expect("its environment");
        let environ = String::from_utf8_lossy(&environ);
        assert!(!environ.contains("LISTEN_FDS="), "{environ}");
        let held: Vec<_> = std::fs::read_dir(format!("/proc/{worker}/fd"))
            .expect("its descriptors")
            .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
            .collect();
        assert!(
            !held.contains(&inherited),
            "{inherited:?} leaked into worker {worker}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_socket_from_systemd_the_port_never_closes_across_a_restart_of_the_master() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let kept = listener.try_clone().expect("systemd keeps its copy");
    let address = listener.local_addr().unwrap();
    let port = address.port().to_string();
    let env = [("CLUSTER_WORKERS", "1"), ("PORT", port.as_str())];
    let (first, _) =
        ClusterProcess::start_socket_activated(Program::Fixture, &env, listener, "http");
    assert_eq!(clustered_testkit::get(address, "/").await.status, 200);
    first.signal(Signal::TERM);
    assert!(
        clustered_testkit::wait_until(Duration::from_secs(20), || !clustered_testkit::is_alive(
            first.pid()
        )),
        "the first master stops"
    );
    // No master now: a client still connects (the kernel queues it on systemd's socket) and is
    // answered by the next one.
    let waiting = tokio::spawn(clustered_testkit::get(address, "/"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_second, _) = ClusterProcess::start_socket_activated(Program::Fixture, &env, kept, "http");
    let reply = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("answered in time")
        .expect("the client task");
    assert_eq!(reply.status, 200, "queued, not refused: {}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_from_systemd_is_served_by_name_and_by_path_and_left_in_place() {
    let dir = std::env::temp_dir().join(format!("clustered-activated-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join("app.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("a Unix socket");
    let kept = listener.try_clone().expect("systemd keeps its copy");
    let by_path = format!("unix:{}", path.display());

    for (address, handed) in [("fd:local", listener), (by_path.as_str(), kept)] {
        let env = [("CLUSTER_WORKERS", "2"), ("FIXTURE_ADDRESS", address)];
        let (mut cluster, listening) = ClusterProcess::start_socket_activated_fd(
            Program::Fixture,
            &env,
            handed.into(),
            "local",
        );
        assert_eq!(listening, by_path, "asked for as {address}");
        for _ in 0..4 {
            let reply = clustered_testkit::get_unix(&path, "/").await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        for worker in cluster.worker_pids() {
            let environ =
                std::fs::read(format!("/proc/{worker}/environ")).expect("its environment");
            assert!(!String::from_utf8_lossy(&environ).contains("LISTEN_FDS="));
        }
        cluster.signal(Signal::TERM);
        let status = cluster
            .wait_exit(Duration::from_secs(20))
            .expect("the master stops");
        assert!(status.success(), "{status:?}");
        // The socket is systemd's: its file stays for the next start.
        assert!(
            path.exists(),
            "{address}: the file systemd made is left in place"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
