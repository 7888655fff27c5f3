//! Upgrading the master itself (`clusterctl upgrade`, SIGUSR2), with real processes: under
//! load, three upgrades in a row with no failed request; a new master that cannot start, or
//! whose workers never serve, killed while the old one serves on; the counters, the metrics'
//! totals and the restart counts carried over exactly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clustered::control_socket::{ControlCommand, ControlReply, request};
use clustered_testkit::{
    ClusterProcess, Connections, Load, NotifySocket, Program, SCHED_BATCH, SCHED_OTHER,
    children_of, eventually, exit_note, is_alive, runs_as, scheduling_policies, scrape, signal_pid,
    value, wait_for_metric,
};
use rustix::process::Signal;

/// A directory of its own for one test's control socket and fault file; removed when dropped.
struct TestDir(PathBuf);

impl TestDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("clustered-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The masters an upgrade started: they are not the test's children, so they are killed here
/// however the test ends (their workers die with them).
#[derive(Default)]
struct Masters(Vec<u32>);

impl Drop for Masters {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if is_alive(pid) {
                signal_pid(pid, Signal::KILL);
            }
        }
    }
}

async fn upgrade(socket: &Path) -> ControlReply {
    tokio::time::timeout(
        Duration::from_secs(60),
        request(socket, ControlCommand::Upgrade),
    )
    .await
    .expect("an answer within a minute")
    .expect("the control socket answers")
}

/// Starts the fixture with two workers and its control socket in `dir` (and `env`); returns
/// it, its address and the socket's path.
fn start(dir: &TestDir, env: &[(&str, &str)]) -> (ClusterProcess, std::net::SocketAddr, PathBuf) {
    let socket = dir.path("control.sock");
    let socket_text = socket.to_str().expect("a UTF-8 path").to_owned();
    let mut all = vec![
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_CONTROL_SOCKET", socket_text.as_str()),
    ];
    all.extend_from_slice(env);
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &all);
    (cluster, address, socket)
}

/// Upgrades through `socket` and waits until the old master (`cluster`) has exited; returns
/// the new master's pid, kept in `masters`.
async fn upgrade_to_new_master(
    socket: &Path,
    cluster: &mut ClusterProcess,
    masters: &mut Masters,
) -> u32 {
    let reply = upgrade(socket).await;
    assert!(reply.ok, "{reply:?}");
    let new = reply.new_pid.expect("the new master's pid");
    masters.0.push(new);
    let old = cluster.pid();
    gone(cluster, old).await;
    new
}

/// Waits until `pid` has exited (and was reaped, if it was this test's child).
async fn gone(cluster: &mut ClusterProcess, pid: u32) {
    if pid == cluster.pid() {
        let status = cluster
            .wait_exit(Duration::from_secs(30))
            .expect("the old master exits");
        assert!(status.success(), "the old master exits 0: {status:?}");
        return;
    }
    assert!(
        eventually(Duration::from_secs(30), || !is_alive(pid)).await,
        "the old master {pid} exits"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_upgrades_under_load_fail_no_request_and_change_the_master_each_time() {
    let dir = TestDir::new("upgrade-load");
    let pid_file = dir.path("app.pid");
    let pid_file_text = pid_file.to_str().expect("a UTF-8 path").to_owned();
    let (mut cluster, address, socket) = start(&dir, &[("CLUSTER_PID_FILE", &pid_file_text)]);
    let pid_in_file = || {
        std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
    };
    assert_eq!(pid_in_file(), Some(cluster.pid()), "the pid file");
    let mut masters = Masters::default();
    let fresh = Load::start(address, "/", 4, Connections::PerRequest);
    let kept = Load::start(address, "/", 4, Connections::KeepAlive);
    assert!(fresh.wait_for(200, Duration::from_secs(30)).await);

    let mut master = cluster.pid();
    for round in 1..=3 {
        let reply = upgrade(&socket).await;
        assert!(reply.ok, "upgrade {round}: {reply:?}");
        assert_eq!(reply.old_pid, Some(master), "upgrade {round}");
        let new = reply.new_pid.expect("the new master's pid");
        assert_ne!(new, master, "upgrade {round}: a new master");
        masters.0.push(new);
        gone(&mut cluster, master).await;
        assert_eq!(children_of(new).len(), 2, "the new master's two workers");
        // It keeps the old one's SCHED_BATCH, and its workers return to SCHED_OTHER.
        assert!(runs_as(new, SCHED_BATCH), "{:?}", scheduling_policies(new));
        for worker in children_of(new) {
            assert!(
                runs_as(worker, SCHED_OTHER),
                "{:?}",
                scheduling_policies(worker)
            );
        }
        assert_eq!(
            pid_in_file(),
            Some(new),
            "upgrade {round}: the pid file is rewritten"
        );
        // Traffic goes on, served by the new master's workers alone.
        let served = fresh.completed() + 200;
        assert!(
            fresh.wait_for(served, Duration::from_secs(30)).await,
            "upgrade {round}: served after it"
        );
        master = new;
    }
    let fresh = fresh.stop().await;
    let kept = kept.stop().await;
    fresh.assert_all_2xx("new connections across three upgrades");
    kept.assert_all_2xx("keep-alive connections across three upgrades");
    assert!(
        fresh.ok >= 800 && kept.ok > 0,
        "{} and {}",
        fresh.ok,
        kept.ok
    );

    // clusterctl keeps working through the same path.
    let ls = request(&socket, ControlCommand::Ls).await.expect("ls");
    assert_eq!(ls.workers.expect("rows").len(), 2);
    let stop = request(&socket, ControlCommand::Stop).await.expect("stop");
    assert!(stop.ok, "{stop:?}");
    assert!(eventually(Duration::from_secs(30), || !is_alive(master)).await);
    assert!(
        !socket.exists(),
        "the last master removes the control socket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_master_that_cannot_start_or_never_serves_is_killed_and_the_old_one_serves_on() {
    let dir = TestDir::new("upgrade-fail");
    let faults = dir.path("fault");
    std::fs::write(&faults, "").expect("the fault file");
    let faults_text = faults.to_str().expect("a UTF-8 path").to_owned();
    let (mut cluster, address, socket) = start(
        &dir,
        &[
            ("CLUSTER_BOOT_TIMEOUT", "3"),
            ("FIXTURE_FAULT_FILE", &faults_text),
        ],
    );
    let mut masters = Masters::default();
    let workers = cluster.worker_pids();
    let load = Load::start(address, "/", 4, Connections::PerRequest);

    for (fault, why) in [
        ("master-crash-at-start", "exited: exit code 3"),
        ("slow-start", "no serving workers within the boot timeout"),
    ] {
        std::fs::write(&faults, fault).expect("the fault file");
        let reply = upgrade(&socket).await;
        assert!(!reply.ok, "{fault}: {reply:?}");
        let error = reply.error.unwrap_or_default();
        assert!(error.contains(why), "{fault}: {error}");
        assert!(error.contains("the old master keeps serving"), "{error}");
        // The new master and its workers are gone; the old master's are the same.
        assert!(
            eventually(Duration::from_secs(10), || children_of(cluster.pid())
                == workers)
            .await,
            "{fault}: only the old workers are left: {:?}",
            children_of(cluster.pid())
        );
        let before = load.completed();
        assert!(load.wait_for(before + 100, Duration::from_secs(30)).await);
    }

    // With the fault gone, the next upgrade goes through.
    std::fs::write(&faults, "").expect("the fault file");
    let reply = upgrade(&socket).await;
    assert!(reply.ok, "{reply:?}");
    masters.0.extend(reply.new_pid);
    let old = cluster.pid();
    gone(&mut cluster, old).await;
    load.stop()
        .await
        .assert_all_2xx("failed upgrades, then one that worked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_metric_totals_and_restart_counts_move_to_the_new_master_exactly() {
    let dir = TestDir::new("upgrade-state");
    let (mut cluster, address, socket) = start(&dir, &[("CLUSTER_METRICS_ADDR", "127.0.0.1:0")]);
    let admin = cluster.metrics_address();
    let mut masters = Masters::default();
    for _ in 0..1_000 {
        assert_eq!(
            clustered_testkit::get(address, "/counter").await.status,
            200
        );
    }
    // A worker dies and is restarted: one restart to carry over.
    signal_pid(cluster.worker_pids()[0], Signal::KILL);
    let restarts = wait_for_metric(admin, "cluster_worker_restarts_total", 1.0).await;
    assert_eq!(restarts, 1.0, "the killed worker is restarted");
    assert!(
        eventually(Duration::from_secs(20), || cluster.worker_pids().len() == 2).await,
        "the killed worker is replaced"
    );
    let requests = |samples: &[_]| value(samples, "cluster_http_requests_total", &[]);
    let before = scrape(admin).await;
    assert_eq!(requests(&before), 1_000.0);
    assert_eq!(value(&before, "cluster_worker_restarts_total", &[]), 1.0);
    let handoffs = value(&before, "cluster_handoffs_total", &[]);
    assert!(handoffs >= 1_000.0, "{handoffs}");

    upgrade_to_new_master(&socket, &mut cluster, &mut masters).await;

    // Served by the new master on the same admin port.
    let after = scrape(admin).await;
    assert_eq!(requests(&after), 1_000.0, "the requests' total is the same");
    assert_eq!(value(&after, "cluster_worker_restarts_total", &[]), 1.0);
    assert_eq!(value(&after, "cluster_handoffs_total", &[]), handoffs);
    let next = clustered_testkit::get(address, "/counter").await;
    assert_eq!(next.body.trim(), "1001", "the counter goes on from 1000");
    assert_eq!(
        requests(&scrape(admin).await),
        1_001.0,
        "and so does the total"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_the_new_master_says_mainpid_and_ready_before_the_old_one_exits() {
    let dir = TestDir::new("upgrade-notify");
    let notify = NotifySocket::listen(dir.path("notify.sock").to_str().expect("a UTF-8 path"));
    let (mut cluster, _address, socket) = start(
        &dir,
        &[
            ("NOTIFY_SOCKET", notify.address()),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );
    let mut masters = Masters::default();
    let old = cluster.pid();
    notify.until(old, |text| text.starts_with("READY=1"));
    // A note of the test's own, queued once the old master has exited: one read before it
    // was sent before that exit.
    notify.note_exit_of(old);

    let upgrading = tokio::spawn(async move { upgrade(&socket).await });
    // Waited for on a thread of its own, while the upgrade runs.
    let ready = tokio::task::spawn_blocking(move || {
        let ready = notify.next(|note| {
            assert_ne!(
                note.text,
                exit_note(old),
                "systemd hears of the new master before the old one exits"
            );
            note.pid != old && note.text.starts_with("READY=1")
        });
        (notify, ready)
    });
    let (notify, ready) = ready.await.expect("the listener");
    masters.0.push(ready.pid);
    assert_eq!(
        ready.text,
        format!(
            "READY=1\nMAINPID={}\nSTATUS=2 workers listening, 0 restarts",
            ready.pid
        )
    );
    let reply = upgrading.await.expect("the upgrade task");
    assert_eq!(reply.new_pid, Some(ready.pid), "{reply:?}");
    gone(&mut cluster, old).await;
    // The new master feeds the watchdog; the old one said nothing after it handed over.
    let new = ready.pid;
    let fed = tokio::task::spawn_blocking(move || {
        // Every note from the old master after the new one's READY=1, until the exit note has
        // come (so the check above could have failed) and then a WATCHDOG=1 of the new one.
        let from_old = std::sync::Mutex::new(Vec::new());
        let exited = std::sync::atomic::AtomicBool::new(false);
        notify.next(|note| {
            if note.pid == old {
                from_old.lock().unwrap().push(note.clone());
            }
            if note.text == exit_note(old) {
                exited.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            exited.load(std::sync::atomic::Ordering::Relaxed)
                && note.pid == new
                && note.text == "WATCHDOG=1"
        });
        let mut from_old = from_old.into_inner().unwrap();
        from_old.extend(notify.pending().into_iter().filter(|note| note.pid == old));
        from_old
    });
    let from_old = fed.await.expect("the listener");
    assert!(from_old.is_empty(), "the old master is quiet: {from_old:?}");
}

/// The new master an upgrade of `old` started (its child with children of its own, not one
/// of `workers`), once it has its two workers.
async fn new_master_of(old: u32, workers: &[u32]) -> (u32, Vec<u32>) {
    let mut found = None;
    let appeared = eventually(Duration::from_secs(20), || {
        found = children_of(old)
            .into_iter()
            .filter(|pid| !workers.contains(pid))
            .map(|pid| (pid, children_of(pid)))
            .find(|(_, children)| children.len() == 2);
        found.is_some()
    })
    .await;
    assert!(appeared, "the new master and its workers start");
    found.expect("found")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_either_master_mid_upgrade_leaves_no_orphan_and_the_other_serves() {
    let dir = TestDir::new("upgrade-kill");
    let faults = dir.path("fault");
    std::fs::write(&faults, "").expect("the fault file");
    let faults_text = faults.to_str().expect("a UTF-8 path").to_owned();
    let (mut cluster, address, socket) = start(&dir, &[("FIXTURE_FAULT_FILE", &faults_text)]);
    let mut masters = Masters::default();
    let old = cluster.pid();
    let old_workers = cluster.worker_pids();

    // The new master is killed while its workers boot: the old one answers that, serves on,
    // and the new one's workers are gone.
    std::fs::write(&faults, "slow-start:3000").expect("the fault file");
    let path = socket.clone();
    let upgrading = tokio::spawn(async move { upgrade(&path).await });
    let (new, new_workers) = new_master_of(old, &old_workers).await;
    signal_pid(new, Signal::KILL);
    let reply = upgrading.await.expect("the upgrade task");
    assert!(!reply.ok, "{reply:?}");
    let error = reply.error.unwrap_or_default();
    assert!(error.contains("signal 9"), "{error}");
    assert!(
        eventually(Duration::from_secs(10), || new_workers
            .iter()
            .all(|pid| !is_alive(*pid)))
        .await,
        "the killed new master's workers do not outlive it"
    );
    assert_eq!(clustered_testkit::get(address, "/").await.status, 200);
    assert_eq!(
        cluster.worker_pids(),
        old_workers,
        "the old master serves on"
    );

    // The old master is killed while the new one's workers boot: the new one takes over
    // with what it has, and serves; the old one's workers are gone.
    let path = socket.clone();
    let upgrading = tokio::spawn(async move { upgrade(&path).await });
    let (new, _) = new_master_of(old, &old_workers).await;
    masters.0.push(new);
    cluster.signal(Signal::KILL);
    let _ = upgrading.await;
    assert!(cluster.wait_exit(Duration::from_secs(10)).is_some());
    assert!(
        eventually(Duration::from_secs(10), || old_workers
            .iter()
            .all(|pid| !is_alive(*pid)))
        .await,
        "the old master's workers do not outlive it"
    );
    // Its workers listen after their delay; clients queued meanwhile on the socket it holds.
    let reply = clustered_testkit::get(address, "/").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(is_alive(new));
    let ls = request(&socket, ControlCommand::Ls)
        .await
        .expect("the new master answers");
    assert_eq!(ls.workers.expect("rows").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_file_the_first_master_bound_is_removed_when_the_new_one_stops() {
    let dir = TestDir::new("upgrade-unix");
    let (app, socket) = (dir.path("app.sock"), dir.path("control.sock"));
    let address = format!("unix:{}", app.display());
    let env = [
        ("CLUSTER_WORKERS", "2"),
        (
            "CLUSTER_CONTROL_SOCKET",
            socket.to_str().expect("a UTF-8 path"),
        ),
        ("FIXTURE_ADDRESS", address.as_str()),
    ];
    let mut cluster = ClusterProcess::spawn(Program::Fixture, &env);
    assert_eq!(cluster.wait_listening_text(), address);
    let mut masters = Masters::default();
    let new = upgrade_to_new_master(&socket, &mut cluster, &mut masters).await;
    // The old master left the file to the new one, which serves on it.
    assert!(
        app.exists(),
        "the socket file stays while the new master serves"
    );
    let reply = clustered_testkit::get_unix(&app, "/whoami").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Stopped, the new master removes it, as the first would have.
    signal_pid(new, Signal::TERM);
    assert!(
        eventually(Duration::from_secs(30), || !is_alive(new)).await,
        "the new master exits"
    );
    assert!(!app.exists(), "the socket file is removed");
}
