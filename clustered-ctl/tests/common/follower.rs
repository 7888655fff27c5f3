//! Following `clusterctl logs -f` in a test (shared by the tests that do; a module of its own
//! so that the others do not build it).

use std::process::{Command, Stdio};

use crate::common::SocketPath;

/// `clusterctl --socket SOCKET logs -f ARGS…` running, each line it prints as it comes; killed
/// and reaped when dropped, so a failing test leaves no process behind.
pub(crate) struct Follower {
    child: std::process::Child,
    /// The lines it printed, in order.
    pub(crate) lines: std::sync::mpsc::Receiver<String>,
}

impl Follower {
    pub(crate) fn start(socket: &SocketPath, args: &[&str]) -> Follower {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clusterctl"))
            .args(["--socket", socket.as_str(), "logs", "-f"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("clusterctl logs -f");
        let stdout = child.stdout.take().expect("its stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Follower { child, lines }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
