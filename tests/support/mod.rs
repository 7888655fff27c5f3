//! Shared by the integration tests: start an example as a real cluster, find its workers, talk
//! HTTP to it with hyper, and make sure no process outlives the test, even a failing one.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// How long a cluster may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one HTTP exchange may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The path of a built example, building it first if `cargo test` has not.
pub fn example(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("test executable path");
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --example {name} failed");
    }
    path
}

/// A running master process started from an example, with its output captured.
pub struct ClusterProcess {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    seen_workers: Vec<u32>,
}

impl ClusterProcess {
    /// Starts `example` with `env` (plus `PORT=0`, `HOST=127.0.0.1` unless given).
    pub fn spawn(example_name: &str, env: &[(&str, &str)]) -> ClusterProcess {
        let mut command = Command::new(example(example_name));
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
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr_text = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr_text);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read @ 1..) = stderr.read(&mut buffer) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
        ClusterProcess {
            child,
            stdout: line_rx,
            stderr: stderr_text,
            seen_workers: Vec::new(),
        }
    }

    /// Starts `example` and waits for its `listening on <scheme>://ADDR` line.
    pub fn start(example_name: &str, env: &[(&str, &str)]) -> (ClusterProcess, SocketAddr) {
        let mut cluster = Self::spawn(example_name, env);
        let address = cluster.wait_listening();
        cluster.seen_workers = cluster.worker_pids();
        (cluster, address)
    }

    /// Waits (bounded) for the one `listening on` line and returns the address in it.
    pub fn wait_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once("listening on ") {
                        let address = rest.split_once("://").map_or(rest, |(_, a)| a);
                        return address.trim().parse().expect("an address in the line");
                    }
                }
                Err(_) => panic!(
                    "no `listening on` line within {START_TIMEOUT:?}; stderr:\n{}",
                    self.stderr()
                ),
            }
        }
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

    pub fn pid(&self) -> u32 {
        self.child.id()
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

    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).unwrap();
        rustix::process::kill_process(pid, signal).expect("signal the master");
    }

    /// Waits up to `timeout` for the master to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        let mut workers = self.worker_pids();
        workers.extend(&self.seen_workers);
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

/// Waits up to `timeout` for every process in `pids` to be gone.
pub fn wait_all_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if pids.iter().all(|pid| !is_alive(*pid)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    pids.iter().all(|pid| !is_alive(*pid))
}

/// The live children of `parent`, from `/proc`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat_fields(&stat)
                    .is_some_and(|(state, ppid)| state != "Z" && ppid == parent.to_string())
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

/// What a test needs of an HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub worker_id: Option<String>,
    pub body: String,
}

/// `GET path` over a new HTTP/1.1 connection.
pub async fn get(address: SocketAddr, path: &str) -> Reply {
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1 handshake");
        tokio::spawn(connection);
        send(&mut sender, address, path).await
    })
    .await
    .unwrap_or_else(|_| panic!("GET {path} timed out"))
}

/// `GET path` over a new HTTP/2 prior-knowledge (`h2c`) connection, `count` times on it.
pub async fn get_h2(address: SocketAddr, path: &str, count: usize) -> Vec<Reply> {
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        let mut replies = Vec::new();
        for _ in 0..count {
            let request = hyper::Request::get(format!("http://{address}{path}"))
                .body(Empty::<Bytes>::new())
                .unwrap();
            let response = sender.send_request(request).await.expect("HTTP/2 request");
            replies.push(reply_of(response).await);
        }
        replies
    })
    .await
    .unwrap_or_else(|_| panic!("h2c GET {path} timed out"))
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    address: SocketAddr,
    path: &str,
) -> Reply {
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, address.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.expect("HTTP/1 request");
    reply_of(response).await
}

async fn reply_of(response: hyper::Response<hyper::body::Incoming>) -> Reply {
    let status = response.status().as_u16();
    let worker_id = response
        .headers()
        .get("x-worker-id")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        worker_id,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}
