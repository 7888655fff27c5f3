//! `clusterctl` against real clusters through the master's control socket: `ls` (table and
//! JSON), `reload` (done and aborted), `stop`; the socket's mode, its owner-only peers, a stale
//! file replaced, a live one refused, and the file removed when the master exits.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use clustered_testkit::{ClusterProcess, Program, wait_until};

mod common;
use common::{SocketPath, clusterctl, json, text};
#[path = "common/follower.rs"]
mod follower;
use follower::Follower;

/// The (id, pid) of every worker `ls --json` lists.
fn listed(socket: &Path) -> Vec<(u64, u32)> {
    let output = clusterctl(socket, &["ls", "--json"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let reply = json(&output);
    let mut workers: Vec<(u64, u32)> = reply["workers"]
        .as_array()
        .expect("an array")
        .iter()
        .map(|row| {
            for key in [
                "id",
                "pid",
                "status",
                "uptime_secs",
                "restarts",
                "connections",
                "inflight",
                "requests",
                "cpu_percent",
                "rss_bytes",
            ] {
                assert!(row.get(key).is_some(), "{key} in {row}");
            }
            (
                row["id"].as_u64().unwrap(),
                row["pid"].as_u64().unwrap() as u32,
            )
        })
        .collect();
    workers.sort();
    workers
}

#[test]
fn ls_lists_exactly_the_masters_workers_and_its_table_fits_80_columns() {
    let socket = SocketPath::new("ls");
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    let mut pids = cluster.worker_pids();
    pids.sort();
    let listed = listed(&socket.0);
    assert_eq!(listed.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1, 2]);
    let mut listed_pids: Vec<u32> = listed.iter().map(|(_, pid)| *pid).collect();
    listed_pids.sort();
    assert_eq!(listed_pids, pids);

    let output = clusterctl(&socket.0, &["ls"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let table = text(&output.stdout);
    assert_eq!(table.lines().count(), 3, "a header and two rows:\n{table}");
    for line in table.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    for pid in pids {
        assert!(table.contains(&pid.to_string()), "{table}");
    }
}

/// The (connections, requests) `ls --json` lists for its one worker.
fn load_listed(socket: &Path) -> (u64, u64) {
    let reply = json(&clusterctl(socket, &["ls", "--json"], None));
    let row = &reply["workers"][0];
    (
        row["connections"].as_u64().expect("connections"),
        row["requests"].as_u64().expect("requests"),
    )
}

#[test]
fn ls_shows_the_load_a_worker_said_in_its_region_while_the_master_sleeps() {
    use std::io::{Read, Write};
    let socket = SocketPath::new("load");
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (_cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let (_, served_before) = load_listed(&socket.0);
    let kept_open: Vec<std::net::TcpStream> = (0..3)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(address).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut head = [0; 12];
            stream.read_exact(&mut head).expect("a response");
            assert_eq!(&head, b"HTTP/1.1 200");
            stream
        })
        .collect();
    // Heartbeats say the load within 10 ms of a change; nothing wakes the idle master.
    let busy = wait_until(Duration::from_secs(5), || {
        load_listed(&socket.0) == (3, served_before + 3)
    });
    assert!(
        busy,
        "three open, three more served: {:?}",
        load_listed(&socket.0)
    );
    drop(kept_open);
    let idle = wait_until(Duration::from_secs(5), || load_listed(&socket.0).0 == 0);
    assert!(idle, "all closed: {:?}", load_listed(&socket.0));
}

#[test]
fn reload_returns_once_every_worker_is_replaced_and_stop_removes_the_socket() {
    let socket = SocketPath::new("reload");
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (mut cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    let before = listed(&socket.0);

    let output = clusterctl(&socket.0, &["reload"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("reloaded"),
        "{}",
        text(&output.stdout)
    );
    let replaced = wait_until(Duration::from_secs(10), || {
        let now = listed(&socket.0);
        now.len() == 2
            && now
                .iter()
                .all(|(_, pid)| before.iter().all(|(_, old)| old != pid))
    });
    assert!(
        replaced,
        "every pid changed: {before:?} -> {:?}",
        listed(&socket.0)
    );

    let output = clusterctl(&socket.0, &["stop"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let status = cluster
        .wait_exit(Duration::from_secs(15))
        .expect("the master stops");
    assert!(status.success(), "{status:?}");
    assert!(!socket.0.exists(), "the master removed its socket");
    let output = clusterctl(&socket.0, &["ls"], None);
    assert_eq!(output.status.code(), Some(2), "nobody to ask");
    assert!(
        text(&output.stderr).contains("cannot connect"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn an_aborted_reload_exits_non_zero_and_says_why() {
    let socket = SocketPath::new("abort");
    // Every worker takes 1.5 s to listen; a reload step may take 300 ms: the first replacement
    // is too slow, and the reload is aborted.
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
        ("FIXTURE_START_DELAY_MS", "1500"),
        ("FIXTURE_RELOAD_TIMEOUT_MS", "300"),
    ];
    let (_cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    let before = listed(&socket.0);
    let output = clusterctl(&socket.0, &["reload"], None);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let error = text(&output.stderr);
    assert!(error.contains("reload aborted at worker"), "{error}");
    assert!(error.contains("the old workers keep serving"), "{error}");
    let still: Vec<u32> = listed(&socket.0).iter().map(|(_, pid)| *pid).collect();
    for (_, pid) in before {
        assert!(
            still.contains(&pid),
            "old worker {pid} still serves: {still:?}"
        );
    }
}

#[test]
fn the_socket_is_private_to_the_masters_user() {
    let socket = SocketPath::new("private");
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (_cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    let mode = std::fs::metadata(&socket.0)
        .expect("the socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {:o}", mode & 0o777);
    if !rustix::process::geteuid().is_root() {
        eprintln!("not root: cannot run a process of another user; the peer check is untested");
        return;
    }
    let nobody = 65534;
    // The mode keeps another user out…
    let output = clusterctl(&socket.0, &["ls"], Some(nobody));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stdout));
    // …and with the mode opened, the master's peer check does.
    std::fs::set_permissions(&socket.0, std::fs::Permissions::from_mode(0o666)).unwrap();
    let output = clusterctl(&socket.0, &["ls"], Some(nobody));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert!(
        text(&output.stderr).contains("answers only its owner"),
        "{}",
        text(&output.stderr)
    );
    assert!(output.stdout.is_empty(), "no worker shown to another user");
    // The owner is still answered.
    assert_eq!(listed(&socket.0).len(), 1);
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let socket = SocketPath::new("stale");
    // Left behind by a master that is gone: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&socket.0).expect("a stale socket"));
    assert!(socket.0.exists());
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (_cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    assert_eq!(listed(&socket.0).len(), 1, "the new master answers on it");

    let stderr = ClusterProcess::expect_failure(Program::Fixture, &env);
    assert!(stderr.contains(socket.as_str()), "{stderr}");
    assert!(
        stderr.contains("a running master answers on it"),
        "{stderr}"
    );
    assert_eq!(listed(&socket.0).len(), 1, "the first master still answers");
}

#[test]
fn scale_changes_the_worker_count_and_so_do_sigttin_and_sigttou() {
    let socket = SocketPath::new("scale");
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    let master = cluster.pid();
    let children = |count: usize| {
        wait_until(Duration::from_secs(5), || {
            clustered_testkit::children_of(master).len() == count
        })
    };

    let output = clusterctl(&socket.0, &["scale", "3"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("scaled from 2 to 3"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(
        listed(&socket.0)
            .iter()
            .map(|(id, _)| *id)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(children(3), "{:?}", clustered_testkit::children_of(master));

    let output = clusterctl(&socket.0, &["scale", "-1"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        children(2),
        "slot 3 drained and exited: {:?}",
        clustered_testkit::children_of(master)
    );
    assert_eq!(
        listed(&socket.0)
            .iter()
            .map(|(id, _)| *id)
            .collect::<Vec<_>>(),
        [1, 2]
    );

    cluster.signal(rustix::process::Signal::TTIN);
    assert!(children(3), "SIGTTIN: one more");
    assert!(wait_until(Duration::from_secs(5), || listed(&socket.0)
        .len()
        == 3));
    cluster.signal(rustix::process::Signal::TTOU);
    assert!(children(2), "SIGTTOU: one fewer");
    assert!(
        cluster
            .wait_for_line("event: scaled from=3 to=2", Duration::from_secs(5))
            .is_some(),
        "the event says so"
    );

    // Refused, and saying so, during a reload (no guess from a timeout): the replacement never
    // listens, so the reload lasts until its 5 s timeout.
    drop(cluster);
    let fault_file = std::env::temp_dir().join(format!("clusterctl-{}-fault", std::process::id()));
    let _ = std::fs::remove_file(&fault_file);
    let slow = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
        ("FIXTURE_FAULT_FILE", fault_file.to_str().unwrap()),
        ("FIXTURE_RELOAD_TIMEOUT_MS", "5000"),
    ];
    let (cluster, _address) = ClusterProcess::start(Program::Fixture, &slow);
    std::fs::write(&fault_file, "slow-start").unwrap();
    let slow_reload = std::thread::spawn({
        let path = socket.0.clone();
        move || clusterctl(&path, &["reload"], None)
    });
    assert!(
        cluster
            .wait_for_line("event: reload-started", Duration::from_secs(10))
            .is_some()
    );
    let output = clusterctl(&socket.0, &["scale", "3"], None);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert!(
        text(&output.stderr).contains("refused: not scaling during a rolling reload"),
        "{}",
        text(&output.stderr)
    );
    let output = clusterctl(&socket.0, &["scale", "3", "--json"], None);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let reply = json(&output);
    assert_eq!(reply["ok"], false, "{reply}");
    assert_eq!(reply["refused"], true, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|error| error.contains("not scaling during a rolling reload")),
        "{reply}"
    );
    let reloaded = slow_reload.join().unwrap();
    let _ = std::fs::remove_file(&fault_file);
    assert_eq!(reloaded.status.code(), Some(1));
    assert!(
        text(&reloaded.stderr).contains("error: reload aborted at worker 1"),
        "{}",
        text(&reloaded.stderr)
    );

    let output = clusterctl(&socket.0, &["scale", "many"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("is not a count"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn kill_replaces_one_worker_and_show_tells_its_story() {
    let socket = SocketPath::new("kill");
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (_cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    let before = listed(&socket.0);

    let output = clusterctl(&socket.0, &["kill", "2"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let answer = text(&output.stdout);
    let old_pid = before[1].1;
    assert!(
        answer.contains(&format!("worker 2 replaced: pid {old_pid} -> ")),
        "{answer}"
    );
    let new_pid: u32 = answer.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let after = listed(&socket.0);
    assert_eq!(after[0], before[0], "worker 1 untouched");
    assert!(after.contains(&(2, new_pid)), "{after:?}");

    // Once the old one has gone, its slot's story: replaced on request, not a crash.
    assert!(clustered_testkit::wait_all_gone(
        &[old_pid],
        Duration::from_secs(10)
    ));
    assert!(wait_until(Duration::from_secs(5), || listed(&socket.0)
        .len()
        == 2));
    let output = clusterctl(&socket.0, &["show", "2"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let shown = text(&output.stdout);
    assert!(shown.contains(&format!("pid         {new_pid}")), "{shown}");
    assert!(shown.contains("restarts    0"), "{shown}");
    assert!(shown.contains("last exit   requested"), "{shown}");

    let output = clusterctl(&socket.0, &["show", "9", "--json"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("no worker 9"),
        "{}",
        text(&output.stdout)
    );
}

/// Sends one raw length-delimited frame and reads the answer (`None` if the master hung up).
fn exchange(
    stream: &mut std::os::unix::net::UnixStream,
    payload: &[u8],
) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    stream.write_all(&length).ok()?;
    stream.write_all(payload).ok()?;
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).ok()?;
    let mut reply = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut reply).ok()?;
    Some(serde_json::from_slice(&reply).expect("a JSON reply"))
}

#[test]
fn bad_requests_get_clear_errors_and_the_connection_goes_on() {
    let socket = SocketPath::new("bad");
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (_cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    let mut stream = std::os::unix::net::UnixStream::connect(&socket.0).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    let reply = exchange(&mut stream, b"not json").expect("an answer");
    assert_eq!(reply["ok"], false);
    assert!(
        reply["error"].as_str().unwrap().contains("not a request"),
        "{reply}"
    );
    let reply = exchange(&mut stream, br#"{"version":2,"command":"teleport"}"#).expect("an answer");
    assert!(
        reply["error"].as_str().unwrap().contains("not a request"),
        "{reply}"
    );
    let reply = exchange(&mut stream, br#"{"version":99,"command":"ls"}"#).expect("an answer");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("protocol version 99"),
        "{reply}"
    );
    let reply = exchange(&mut stream, br#"{"version":2,"command":"ls"}"#).expect("an answer");
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["workers"].as_array().unwrap().len(), 1);

    // A frame over the 1 MiB limit: the master hangs up on that peer, and only on it.
    use std::io::Write;
    stream.write_all(&(2u32 << 20).to_be_bytes()).unwrap();
    assert!(exchange(&mut stream, b"{}").is_none(), "hung up");
    assert_eq!(listed(&socket.0).len(), 1, "others are still answered");
}

#[test]
fn a_control_socket_that_cannot_be_made_stops_the_master_saying_where() {
    let env = [
        ("CLUSTER_WORKERS", "1"),
        (
            "CLUSTER_CONTROL_SOCKET",
            "/nonexistent-directory/cluster.sock",
        ),
    ];
    let stderr = ClusterProcess::expect_failure(Program::Fixture, &env);
    assert!(
        stderr.contains("control socket /nonexistent-directory/cluster.sock"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_shows_recent_output_and_follows_new_lines() {
    let socket = SocketPath::new("logs");
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    // New connections alternate between the workers: both print.
    for _ in 0..2 {
        clustered_testkit::get(address, "/print?n=5").await;
    }
    let printers = cluster.worker_pids();
    let output = clusterctl(&socket.0, &["logs", "--lines", "500"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let logs = text(&output.stdout);
    for pid in &printers {
        assert!(logs.contains(&format!("|out | print {pid} 4")), "{logs}");
    }
    // A handler's panic: the worker logs an error, in colour (the fixture's subscriber).
    for _ in 0..2 {
        clustered_testkit::get(address, "/panic").await;
    }
    let panicked = |output: &std::process::Output| {
        text(&output.stdout).contains("the request handler panicked")
    };
    let mut output = clusterctl(&socket.0, &["logs", "1", "--lines", "500", "--json"], None);
    assert!(wait_until(Duration::from_secs(5), || {
        output = clusterctl(&socket.0, &["logs", "1", "--lines", "500", "--json"], None);
        panicked(&output)
    }));
    let reply = json(&output);
    let lines = reply["lines"].as_array().expect("lines").clone();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|line| line["id"] == 1), "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|line| !line["line"].as_str().unwrap().contains('\x1b')),
        "no escape codes in the JSON: {lines:?}"
    );

    // Following: new lines arrive as they are written.
    let follower = Follower::start(&socket, &["--lines", "0"]);
    // Lines printed from now on reach it (once it follows: until then, print again).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut followed = None;
    while followed.is_none() && Instant::now() < deadline {
        let _ = clustered_testkit::get(address, "/print?n=3").await;
        while let Ok(line) = follower.lines.recv_timeout(Duration::from_millis(200)) {
            if line.contains("|out | print ") {
                followed = Some(line);
                break;
            }
        }
    }
    drop(follower);
    assert!(followed.is_some(), "`logs -f` showed the new lines");
}

/// How many descriptors process `pid` has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

/// Reads one reply frame, if the master sends one before hanging up.
fn read_reply(stream: &mut std::os::unix::net::UnixStream) -> Option<serde_json::Value> {
    use std::io::Read;
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).ok()?;
    let mut reply = vec![0u8; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut reply).ok()?;
    serde_json::from_slice(&reply).ok()
}

#[test]
fn silent_connections_are_bounded_timed_out_and_leave_no_memory_behind() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let socket = SocketPath::new("silent");
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    let master = cluster.pid();
    let fds_at_rest = open_fds(master);
    let rss_at_start = clustered_testkit::status_kib(master, "VmRSS");
    let mut rss_after = Vec::new();
    for round in 0..8 {
        let mut streams: Vec<UnixStream> = (0..500)
            .map(|_| UnixStream::connect(&socket.0).expect("connect"))
            .collect();
        // Past 64 open at once, each is refused with a reply that says so, then hung up on.
        let mut refused = 0;
        for stream in &mut streams[64..] {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let reply = read_reply(stream).expect("a refusal");
            assert_eq!(reply["ok"], false, "{reply}");
            assert!(
                reply["error"]
                    .as_str()
                    .unwrap()
                    .contains("64 control connections are open"),
                "{reply}"
            );
            refused += 1;
        }
        assert_eq!(refused, 436);
        if round == 0 {
            // Silent for 10 s: the master hangs up on each of the first 64.
            let started = Instant::now();
            for stream in &mut streams[..64] {
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let mut byte = [0u8; 1];
                assert_eq!(stream.read(&mut byte).expect("hung up, not timed out"), 0);
            }
            let waited = started.elapsed();
            println!("the master hung up on 64 silent connections after {waited:?}");
            assert!(waited >= Duration::from_secs(9), "{waited:?}");
        }
        drop(streams);
        assert!(
            wait_until(Duration::from_secs(10), || open_fds(master) <= fds_at_rest),
            "every control connection closed: {} descriptors, {fds_at_rest} at rest",
            open_fds(master)
        );
        rss_after.push(clustered_testkit::status_kib(master, "VmRSS"));
    }
    println!("master RSS: {rss_at_start} KiB at start, after each round {rss_after:?} KiB");
    let last = *rss_after.last().unwrap();
    assert!(
        last <= rss_at_start + 1024,
        "the master's memory returns to within 1 MiB: {rss_at_start} KiB then {rss_after:?}"
    );
    // It still answers.
    assert_eq!(listed(&socket.0).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_shows_every_live_process_at_one_instant_while_workers_are_replaced_quickly() {
    use clustered_testkit::{Connections, Load};
    let socket = SocketPath::new("fast-recycling");
    let env = [
        ("CLUSTER_WORKERS", "2"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
        ("CLUSTER_MAX_REQUESTS", "40"),
        ("CLUSTER_MAX_REQUESTS_JITTER", "0"),
    ];
    let (cluster, address) = ClusterProcess::start(Program::Fixture, &env);
    let load = Load::start(address, "/", 4, Connections::PerRequest);
    let mut listings = Vec::new();
    for _ in 0..12 {
        let path = socket.0.clone();
        let output =
            tokio::task::spawn_blocking(move || clusterctl(&path, &["ls", "--json"], None))
                .await
                .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        let reply = json(&output);
        let rows: Vec<(u64, String)> = reply["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row["id"].as_u64().unwrap(),
                    row["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        listings.push(rows);
    }
    let report = load.stop().await;
    report.assert_all_2xx("fast recycling");
    let recycled = cluster
        .stdout_lines()
        .iter()
        .filter(|line| line.starts_with("event: recycling"))
        .count();
    assert!(
        recycled >= 2,
        "workers were replaced meanwhile ({recycled})"
    );
    for rows in &listings {
        assert!(
            rows.iter().all(|(_, status)| status != "dead"),
            "a listing shows live processes only: {listings:?}"
        );
        for slot in [1, 2] {
            assert!(
                rows.iter().any(|(id, _)| *id == slot),
                "slot {slot} has a process in every listing (a draining one, its successor, or both): {listings:?}"
            );
        }
    }
}

#[test]
fn upgrade_prints_both_masters_and_clusterctl_goes_on_through_the_same_socket() {
    let socket = SocketPath::new("upgrade");
    let env = [
        ("CLUSTER_WORKERS", "1"),
        ("CLUSTER_CONTROL_SOCKET", socket.as_str()),
    ];
    let (mut cluster, _address) = ClusterProcess::start(Program::Fixture, &env);
    let old = cluster.pid();
    let output = clusterctl(&socket.0, &["upgrade", "--json"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let reply = json(&output);
    assert_eq!(reply["old_pid"].as_u64(), Some(u64::from(old)), "{reply}");
    let new = reply["new_pid"].as_u64().expect("the new master's pid") as u32;
    assert_ne!(new, old);
    // The new master is not this test's child: stopped (or killed) here whatever happens.
    struct Stop(u32);
    impl Drop for Stop {
        fn drop(&mut self) {
            if clustered_testkit::is_alive(self.0) {
                clustered_testkit::signal_pid(self.0, rustix::process::Signal::KILL);
            }
        }
    }
    let _stop = Stop(new);
    let status = cluster
        .wait_exit(Duration::from_secs(20))
        .expect("the old master exits");
    assert!(status.success(), "{status:?}");
    assert_eq!(listed(&socket.0).len(), 1, "the new master answers ls");
    let output = clusterctl(&socket.0, &["stop"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        wait_until(Duration::from_secs(20), || !clustered_testkit::is_alive(
            new
        )),
        "the new master stops"
    );
    assert!(!socket.0.exists(), "and removes its socket");
}
