//! Real cluster processes for tests: start an example or the fixture, read its output, find
//! its workers, signal it, and make sure no process outlives the test, even a failing one.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a cluster may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A program a test can start as a cluster.
#[derive(Debug, Clone, Copy)]
pub enum Program<'a> {
    /// An example of the root package, e.g. `hello`.
    Example(&'a str),
    /// The testkit's `fixture` example.
    Fixture,
}

impl Program<'_> {
    /// The path of the program. Every example of the workspace (the fixture is one) is built
    /// first, once per test process, so that running one test target never uses a stale
    /// binary: `cargo build --workspace --examples`, whose features are the ones
    /// `cargo test --workspace` builds with, so under it the build is a no-op (building one
    /// example alone would resolve other features and rebuild every dependency). A build that
    /// has work to do says so on the terminal.
    pub fn path(self) -> PathBuf {
        static BUILT: Mutex<bool> = Mutex::new(false);
        let test_exe = std::env::current_exe().expect("test executable path");
        let profile_dir = test_exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target dir");
        let name = match self {
            Program::Example(name) => name,
            Program::Fixture => "fixture",
        };
        let mut build_args = vec!["build", "--workspace", "--examples"];
        if profile_dir.ends_with("release") {
            build_args.push("--release");
        }
        let mut built = BUILT.lock().unwrap();
        if !*built {
            let status = build(&build_args);
            assert!(status.success(), "cargo {} failed", build_args.join(" "));
            *built = true;
        }
        profile_dir.join("examples").join(name)
    }
}

/// Runs `cargo ARGS --quiet` (errors and warnings reach the terminal); a build that is not
/// done within a second says on the terminal what it builds, past the test's captured output.
fn build(args: &[&str]) -> ExitStatus {
    use std::io::Write;
    let mut cargo = Command::new(env!("CARGO"))
        .args(args)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run cargo build");
    let done = wait_until(Duration::from_secs(1), || {
        cargo.try_wait().expect("wait for cargo").is_some()
    });
    if !done {
        let _ = writeln!(
            std::io::stderr(),
            "clustered-testkit: cargo {} (for the tests; once per test run)…",
            args.join(" ")
        );
    }
    cargo.wait().expect("wait for cargo")
}

/// A running master process started from an example, with its output captured.
pub struct ClusterProcess {
    /// The process the test started: the master, or what runs it (`unshare`).
    child: Child,
    /// The master's pid (the host's number for it, under `unshare`).
    master: u32,
    stdout: mpsc::Receiver<String>,
    stdout_history: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    /// Every writer of stderr has closed it and all of it has been read.
    stderr_closed: Arc<AtomicBool>,
    seen_workers: Vec<u32>,
}

impl ClusterProcess {
    /// Starts `program` with `env` (plus `PORT=0`, `HOST=127.0.0.1` unless given), in a
    /// process group of its own, as a shell starts a foreground job.
    pub fn spawn(program: Program<'_>, env: &[(&str, &str)]) -> ClusterProcess {
        Self::spawn_path(&program.path(), env)
    }

    /// [`ClusterProcess::spawn`] for an executable at `path`.
    pub fn spawn_path(path: &std::path::Path, env: &[(&str, &str)]) -> ClusterProcess {
        Self::spawn_command(Command::new(path), env)
    }

    /// [`ClusterProcess::start`] with the open-files limit (`RLIMIT_NOFILE`) of the master set
    /// to `soft` and `hard` before it runs (its workers inherit it).
    pub fn start_with_open_files(
        program: Program<'_>,
        env: &[(&str, &str)],
        soft: u64,
        hard: u64,
    ) -> (ClusterProcess, SocketAddr) {
        let mut command = Command::new(program.path());
        let limit = rustix::process::Rlimit {
            current: Some(soft),
            maximum: Some(hard),
        };
        // SAFETY: the closure runs in the child between fork and exec and only makes the
        // setrlimit system call, which is async-signal-safe; it allocates nothing.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                rustix::process::setrlimit(rustix::process::Resource::Nofile, limit)
                    .map_err(std::io::Error::from)
            });
        }
        let mut cluster = Self::spawn_command(command, env);
        let address = cluster.wait_listening();
        cluster.seen_workers = cluster.worker_pids();
        (cluster, address)
    }

    /// Starts `program` allowed to run on `cpus` only (`taskset -c CPUS`, which execs it: the
    /// master's pid is the program's), as a container's CPU set or quota limits it.
    pub fn start_on_cpus(
        program: Program<'_>,
        env: &[(&str, &str)],
        cpus: &str,
    ) -> (ClusterProcess, SocketAddr) {
        let mut command = Command::new("taskset");
        command.arg("-c").arg(cpus).arg(program.path());
        let mut cluster = Self::spawn_command(command, env);
        let address = cluster.wait_listening();
        cluster.seen_workers = cluster.worker_pids();
        (cluster, address)
    }

    /// Starts `program` as systemd's socket activation does: `listener` as descriptor 3,
    /// `LISTEN_FDS=1`, `LISTEN_FDNAMES=name`, and `LISTEN_PID` the program's own pid (set by a
    /// `sh` that execs it, so the pid is the program's).
    pub fn start_socket_activated(
        program: Program<'_>,
        env: &[(&str, &str)],
        listener: std::net::TcpListener,
        name: &str,
    ) -> (ClusterProcess, SocketAddr) {
        let mut cluster = Self::spawn_socket_activated(program, env, listener.into(), name);
        let address = cluster.wait_listening();
        cluster.seen_workers = cluster.worker_pids();
        (cluster, address)
    }

    /// Starts `program` as [`ClusterProcess::start_socket_activated`] does, handing it any
    /// listening socket (a Unix one, say), and waits for its `listening on` line; returns the
    /// address that line names as written (`unix:/path` for a Unix socket).
    pub fn start_socket_activated_fd(
        program: Program<'_>,
        env: &[(&str, &str)],
        listener: std::os::fd::OwnedFd,
        name: &str,
    ) -> (ClusterProcess, String) {
        let mut cluster = Self::spawn_socket_activated(program, env, listener, name);
        let address = cluster.wait_listening_text();
        cluster.seen_workers = cluster.worker_pids();
        (cluster, address)
    }

    fn spawn_socket_activated(
        program: Program<'_>,
        env: &[(&str, &str)],
        listener: std::os::fd::OwnedFd,
        name: &str,
    ) -> ClusterProcess {
        use command_fds::{CommandFdExt, FdMapping};
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#"LISTEN_PID=$$ exec "$0""#)
            .arg(program.path())
            .env("LISTEN_FDS", "1")
            .env("LISTEN_FDNAMES", name);
        command
            .fd_mappings(vec![FdMapping {
                parent_fd: listener,
                child_fd: 3,
            }])
            .expect("descriptor 3 for the child");
        Self::spawn_command(command, env)
    }

    fn spawn_command(mut command: Command, env: &[(&str, &str)]) -> ClusterProcess {
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn the example");
        let stdout = child.stdout.take().expect("piped stdout");
        let (line_tx, line_rx) = mpsc::channel();
        let stdout_history = Arc::new(Mutex::new(Vec::new()));
        let history = Arc::clone(&stdout_history);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                history.lock().unwrap().push(line.clone());
                if line_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr_text = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr_text);
        let stderr_closed = Arc::new(AtomicBool::new(false));
        let closed = Arc::clone(&stderr_closed);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read @ 1..) = stderr.read(&mut buffer) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
            closed.store(true, Ordering::SeqCst);
        });
        ClusterProcess {
            master: child.id(),
            child,
            stdout: line_rx,
            stdout_history,
            stderr: stderr_text,
            stderr_closed,
            seen_workers: Vec::new(),
        }
    }

    /// Starts `program` as PID 1 of a PID namespace of its own, as a container's entry point
    /// (`unshare --pid --fork --mount-proc --kill-child`: unshare is the child the test waits
    /// for and exits as the master does; the master is its only child, and
    /// [`ClusterProcess::pid`] is the host's number for it). Needs root, as CI runs; panics
    /// saying so otherwise.
    pub fn start_as_pid1(
        program: Program<'_>,
        env: &[(&str, &str)],
    ) -> (ClusterProcess, SocketAddr) {
        assert!(
            rustix::process::geteuid().is_root(),
            "ClusterProcess::start_as_pid1 needs root (unshare --pid --mount-proc): run the tests as root, as CI does"
        );
        let mut command = Command::new("unshare");
        command
            .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(program.path());
        let mut cluster = Self::spawn_command(command, env);
        let unshare = cluster.child.id();
        let mut master = Vec::new();
        // Over once the master runs, or once unshare has given up (it says why on stderr).
        wait_until(START_TIMEOUT, || {
            master = children_of(unshare);
            master.len() == 1 || cluster.child.try_wait().is_ok_and(|exit| exit.is_some())
        });
        if master.len() != 1 {
            wait_until(Duration::from_secs(5), || {
                cluster.stderr_closed.load(Ordering::SeqCst)
            });
        }
        assert!(
            master.len() == 1,
            "unshare ran no master ({master:?}); stderr:\n{}",
            cluster.stderr()
        );
        cluster.master = master[0];
        let address = cluster.wait_listening();
        cluster.seen_workers = cluster.worker_pids();
        (cluster, address)
    }

    /// Starts `program` and waits for its `listening on <scheme>://ADDR` line.
    pub fn start(program: Program<'_>, env: &[(&str, &str)]) -> (ClusterProcess, SocketAddr) {
        Self::start_path(&program.path(), env)
    }

    /// [`ClusterProcess::start`] for an executable at `path`.
    pub fn start_path(
        path: &std::path::Path,
        env: &[(&str, &str)],
    ) -> (ClusterProcess, SocketAddr) {
        let mut cluster = Self::spawn_path(path, env);
        let address = cluster.wait_listening();
        cluster.seen_workers = cluster.worker_pids();
        (cluster, address)
    }

    /// Waits (bounded) for the one `listening on` line and returns the address in it.
    pub fn wait_listening(&mut self) -> SocketAddr {
        let address = self.wait_listening_text();
        address
            .parse()
            .unwrap_or_else(|_| panic!("an address in the line: {address:?}"))
    }

    /// Waits (bounded) for the `listening on` line; returns the address it names as written
    /// (`127.0.0.1:4000`, `unix:/path`), without the scheme.
    pub fn wait_listening_text(&mut self) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once("listening on ") {
                        let address = rest.split_once("://").map_or(rest, |(_, a)| a);
                        return address.trim().to_owned();
                    }
                }
                Err(_) => panic!(
                    "no `listening on` line within {START_TIMEOUT:?}; stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    /// Waits (bounded by `timeout`) for a stdout line containing `needle`; returns every line
    /// read meanwhile, the matching one last, or `None` on timeout.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        while let Ok(line) = self
            .stdout
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let found = line.contains(needle);
            lines.push(line);
            if found {
                return Some(lines);
            }
        }
        None
    }

    /// Waits (bounded by `timeout`) until the process has written `needle` to stderr; whether
    /// it has.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.stderr().contains(needle))
    }

    /// Lines printed on stdout since the last read, waiting up to `wait` for the stream to end.
    pub fn remaining_stdout(&self, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut lines = Vec::new();
        while let Ok(line) = self
            .stdout
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            lines.push(line);
        }
        lines
    }

    /// The `event: exit` line of the worker with `pid` (as the master numbers it: inside a
    /// PID namespace, its number there), waited for up to 10 s.
    pub fn exit_line(&self, pid: u32) -> String {
        let needle = format!("pid={pid} ");
        let mut found = None;
        wait_until(Duration::from_secs(10), || {
            found = self
                .stdout_lines()
                .into_iter()
                .find(|line| line.starts_with("event: exit") && line.contains(&needle));
            found.is_some()
        });
        found.unwrap_or_else(|| panic!("no exit of {pid}: {:#?}", self.stdout_lines()))
    }

    /// Every line printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_history.lock().unwrap().clone()
    }

    /// The master's process id.
    pub fn pid(&self) -> u32 {
        self.master
    }

    /// Everything the process has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The live children of the master: its workers.
    pub fn worker_pids(&self) -> Vec<u32> {
        children_of(self.pid())
    }

    /// The workers seen when the cluster became ready.
    pub fn initial_workers(&self) -> &[u32] {
        &self.seen_workers
    }

    /// Sends `signal` to the master.
    pub fn signal(&self, signal: rustix::process::Signal) {
        signal_pid(self.pid(), signal);
    }

    /// Sends `signal` to the master's whole process group (the group of the process the test
    /// started), as a terminal's Ctrl-C does.
    pub fn signal_group(&self, signal: rustix::process::Signal) {
        let group = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a valid pid");
        rustix::process::kill_process_group(group, signal).expect("signal the process group");
    }

    /// Runs `program`, which must stop at once with exit code 1 (a bad setting, say); returns
    /// what it wrote to stderr.
    pub fn expect_failure(program: Program<'_>, env: &[(&str, &str)]) -> String {
        let mut process = Self::spawn(program, env);
        let status = process
            .wait_exit(Duration::from_secs(10))
            .expect("the process exits within 10 s");
        assert_eq!(status.code(), Some(1), "{}", process.stderr());
        assert!(process.worker_pids().is_empty(), "it started no worker");
        process.stderr()
    }

    /// Waits up to `timeout` for the master to exit, then (a little) for the last of its
    /// stderr to be read, so [`ClusterProcess::stderr`] has its final words.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        if status.is_some() {
            // Workers share the pipe: if one outlives the master, stop waiting after a while.
            wait_until(Duration::from_secs(5), || {
                self.stderr_closed.load(Ordering::SeqCst)
            });
        }
        status
    }
}

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        let mut workers = self.worker_pids();
        workers.extend(&self.seen_workers);
        if self.master != self.child.id() {
            // The master under `unshare`: killed first (its namespace with it), so that
            // unshare reaps it and exits.
            if let Some(master) = rustix::process::Pid::from_raw(self.master as i32) {
                let _ = rustix::process::kill_process(master, rustix::process::Signal::KILL);
            }
            wait_until(Duration::from_secs(5), || {
                self.child.try_wait().is_ok_and(|status| status.is_some())
            });
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in workers {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

/// Whether `pid` names a live process (a zombie counts as gone).
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_fields(&stat).is_some_and(|(state, _)| state != "Z"),
        Err(_) => false,
    }
}

/// How often waits check their condition.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Checks a condition against a deadline: `Some(held)` once the wait is over.
struct Deadline(Instant);

impl Deadline {
    fn after(timeout: Duration) -> Self {
        Deadline(Instant::now() + timeout)
    }

    fn check(&self, condition: &mut impl FnMut() -> bool) -> Option<bool> {
        if condition() {
            Some(true)
        } else if Instant::now() >= self.0 {
            Some(false)
        } else {
            None
        }
    }
}

/// Waits up to `timeout` for `condition`, blocking the thread; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Deadline::after(timeout);
    loop {
        if let Some(held) = deadline.check(&mut condition) {
            return held;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The async twin of [`wait_until`], for tests whose runtime must keep running meanwhile.
pub async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Deadline::after(timeout);
    loop {
        if let Some(held) = deadline.check(&mut condition) {
            return held;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Waits up to `timeout` for every process in `pids` to be gone.
pub fn wait_all_gone(pids: &[u32], timeout: Duration) -> bool {
    wait_until(timeout, || pids.iter().all(|pid| !is_alive(*pid)))
}

/// Sends `signal` to process `pid`.
pub fn signal_pid(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a valid pid");
    rustix::process::kill_process(pid, signal).expect("signal the process");
}

/// The `field` of `/proc/PID/status` (`VmRSS`, `VmHWM`…), in KiB (0 when unknown).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(field)?.strip_prefix(':')?;
                value.trim().trim_end_matches(" kB").trim().parse().ok()
            })
        })
        .unwrap_or(0)
}

/// Bytes process `pid` has written so far (`wchar` in `/proc/PID/io`; 0 when unknown).
pub fn bytes_written(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|line| line.strip_prefix("wchar:"))
                .and_then(|bytes| bytes.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `SCHED_OTHER`, as [`scheduling_policies`] reports it.
pub const SCHED_OTHER: u32 = 0;
/// `SCHED_BATCH`, as [`scheduling_policies`] reports it.
pub const SCHED_BATCH: u32 = 3;

/// The scheduling policy of every thread of `pid` (field 41 of `/proc/PID/task/TID/stat`);
/// empty once it is gone.
pub fn scheduling_policies(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter_map(|stat| {
            // The fields after the command name, which may hold spaces: field 41 is the 39th.
            let after_name = &stat[stat.rfind(')')? + 1..];
            after_name.split_whitespace().nth(38)?.parse().ok()
        })
        .collect()
}

/// Whether every thread of `pid` runs under `policy` (and it has any).
pub fn runs_as(pid: u32, policy: u32) -> bool {
    let policies = scheduling_policies(pid);
    !policies.is_empty() && policies.iter().all(|each| *each == policy)
}

/// The live children of `parent`, from `/proc`.
pub fn children_of(parent: u32) -> Vec<u32> {
    children_in_state(parent, |state| state != "Z")
}

/// The children of `parent` that are zombies (exited, not waited for), from `/proc`.
pub fn zombie_children_of(parent: u32) -> Vec<u32> {
    children_in_state(parent, |state| state == "Z")
}

/// The children of `parent` whose state (`R`, `S`, `Z`…) `wanted` picks, in order.
fn children_in_state(parent: u32, wanted: impl Fn(&str) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat_fields(&stat)
                    .is_some_and(|(state, ppid)| wanted(&state) && ppid == parent.to_string())
            })
        })
        .collect();
    children.sort_unstable();
    children
}

/// (state, ppid) from a `/proc/PID/stat` line; the command name may contain spaces.
fn stat_fields(stat: &str) -> Option<(String, String)> {
    let after_name = &stat[stat.rfind(')')? + 2..];
    let mut fields = after_name.split(' ');
    let state = fields.next()?.to_owned();
    let ppid = fields.next()?.to_owned();
    Some((state, ppid))
}
