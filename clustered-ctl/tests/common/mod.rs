//! What the tests that drive `clusterctl` share: a socket path per test, running `clusterctl`
//! against it, and reading what `--json` printed.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A socket path of its own for each test, removed when dropped.
pub(crate) struct SocketPath(pub(crate) PathBuf);

impl SocketPath {
    pub(crate) fn new(test: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("clusterctl-{}-{test}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }

    pub(crate) fn as_str(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `clusterctl --socket SOCKET ARGS…` (as `uid` when given), for at most 30 s.
pub(crate) fn clusterctl(socket: &Path, args: &[&str], uid: Option<u32>) -> Output {
    // Another user may not reach the build directory (a checkout under a 0700 directory): it
    // runs a copy in the temporary directory, removed afterwards.
    let copy = uid.map(|_| AnyoneMayRun::copy_of(Path::new(env!("CARGO_BIN_EXE_clusterctl"))));
    let program = copy
        .as_ref()
        .map_or(Path::new(env!("CARGO_BIN_EXE_clusterctl")), |copy| &copy.0);
    let mut command = Command::new(program);
    command
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let child = command.spawn().expect("clusterctl starts");
    let pid = rustix::process::Pid::from_child(&child);
    // Its pipes are read while it runs (a long `--json` would fill them and block it).
    let (sender, output) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    let finished = output.recv_timeout(Duration::from_secs(30));
    let finished = finished.unwrap_or_else(|_| {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        output.recv().expect("its output once killed")
    });
    finished.expect("clusterctl's output")
}

/// What a `clusterctl --json` printed: one JSON object, with `ok` a boolean.
pub(crate) fn json(output: &Output) -> serde_json::Value {
    let reply: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("one JSON object ({error}): {}", text(&output.stdout)));
    assert!(reply.is_object(), "an object: {reply}");
    assert!(reply["ok"].is_boolean(), "with ok: {reply}");
    reply
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of an executable that every user may run, removed when dropped.
struct AnyoneMayRun(PathBuf);

impl AnyoneMayRun {
    fn copy_of(program: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let name = program.file_name().expect("a file name").to_string_lossy();
        let copy = std::env::temp_dir().join(format!("{name}-{}-for-anyone", std::process::id()));
        let _ = std::fs::remove_file(&copy);
        std::fs::copy(program, &copy).expect("copy the program");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Self(copy)
    }
}

impl Drop for AnyoneMayRun {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
