//! A real `redis-server` for the fleet's tests: on a Unix socket in a directory of its own,
//! killed with SIGKILL and started again on the same socket on demand, killed and reaped when
//! dropped. When `redis-server` is missing and the tests run as root, Debian's package is
//! installed (once, under a file lock, so parallel test processes do not race); otherwise the
//! test fails saying what to install. A test never skips silently.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::process::wait_until;

/// How long a server may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A `redis-server` process on a Unix socket.
#[derive(Debug)]
pub struct RedisServer {
    dir: PathBuf,
    socket: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server (installing `redis-server` first if needed and possible).
    pub fn start() -> RedisServer {
        let binary = ensure_installed();
        static MADE: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "clustered-redis-{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the Redis test directory");
        let socket = dir.join("redis.sock");
        let mut server = RedisServer {
            dir,
            socket,
            child: None,
        };
        server.spawn(&binary);
        server
    }

    /// `redis+unix:///…/redis.sock`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILLs the server and reaps it (its data is gone: it keeps nothing on disk).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Starts the server again on the same socket (after [`RedisServer::kill9`]).
    pub fn restart(&mut self) {
        self.kill9();
        let binary = ensure_installed();
        self.spawn(&binary);
    }

    /// Runs `redis-cli ARGS` against the server; its output, trimmed.
    pub fn command(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run redis-cli (it comes with redis-server: apt-get install redis-server)");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn spawn(&mut self, binary: &Path) {
        let child = Command::new(binary)
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&self.socket)
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let up = wait_until(START_TIMEOUT, || self.command(&["PING"]) == "PONG");
        assert!(
            up,
            "redis-server on {} did not answer PING",
            self.socket.display()
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The path of `redis-server`, installed with apt-get when missing and this runs as root.
fn ensure_installed() -> PathBuf {
    if let Some(path) = find("redis-server") {
        return path;
    }
    let root = rustix::process::geteuid().is_root();
    assert!(
        root,
        "redis-server is missing: apt-get install redis-server (the fleet tests need it)"
    );
    let lock = std::fs::File::create(std::env::temp_dir().join("clustered-redis-install.lock"))
        .expect("create the install lock");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("take the lock");
    if let Some(path) = find("redis-server") {
        return path;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "redis-server"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !install() {
        let updated = Command::new("apt-get")
            .args(["update", "-qq"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            updated && install(),
            "apt-get install redis-server failed: install it by hand"
        );
    }
    find("redis-server").expect("redis-server installed but not on PATH")
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
