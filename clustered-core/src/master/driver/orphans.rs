//! Orphans, when the master is PID 1 (a container's entry point, `unshare --pid --fork`):
//! every process of the PID namespace whose parent dies is re-parented to the master, and
//! one that exits stays a zombie until the master waits for it. Nobody else will, so the
//! master reaps them, or the process table fills up with the grandchildren of its workers
//! (a worker that runs `sh -c 'cmd &'` leaves one each time).
//!
//! Only when the master's pid is 1, and then on every SIGCHLD (tokio delivers it here as well
//! as to its own reapers) and once at start (for what exited before the handler was
//! installed): the master's children are listed (`/proc/self/task/*/children`) and each
//! that the driver did not spawn and that is a zombie is waited for by its own pid
//! (`waitpid(PID, WNOHANG)`). Never `waitpid(-1)`: that would take a worker's exit status
//! from the task that reaps it (`spawn.rs`). The driver's workers are known by their links,
//! which exist from the spawn (in the driver's loop, before it looks at the next SIGCHLD)
//! until after their reaper has waited for them. A SIGCHLD that comes while the master is
//! busy stays pending for the next look, and each look takes every zombie there is.
//!
//! The limit: a child that the program's own code in the master process starts (not a
//! worker) and waits for later can be reaped here first, when the master is PID 1; that code's
//! wait then fails (`ECHILD`) instead of reading the exit status. Code that needs it should
//! run its command in a worker or the agent, or wait for it at once (`Command::output`).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

use rustix::process::{Pid, WaitOptions, getpid, waitpid};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::Error;
use crate::master::process_exit::ProcessExit;

/// Reaps the master's orphaned children, when the master is PID 1.
pub(crate) struct Orphans {
    /// SIGCHLD, while the master is PID 1 and `/proc` shows its children; none otherwise.
    child_exited: Option<Signal>,
}

impl Orphans {
    /// Listens for SIGCHLD and reaps the orphans already there, when the master is PID 1
    /// (saying so once); does nothing otherwise. Call it before the first worker is spawned.
    pub(crate) fn install() -> Result<Self, Error> {
        if !getpid().is_init() {
            return Ok(Self { child_exited: None });
        }
        if let Err(why) = proc_shows_children() {
            tracing::warn!(
                "running as PID 1 but {why}; orphaned processes will not be reaped (mount a /proc of this PID namespace, e.g. `unshare --mount-proc`)"
            );
            return Ok(Self { child_exited: None });
        }
        let orphans = Self {
            child_exited: Some(signal(SignalKind::child()).map_err(Error::Signal)?),
        };
        tracing::info!("running as PID 1: reaping orphaned processes");
        // Before the handler existed, an exit raised no SIGCHLD that tokio kept.
        orphans.reap(|_| false);
        Ok(orphans)
    }

    /// Whether it reaps (the master is PID 1).
    pub(crate) fn is_on(&self) -> bool {
        self.child_exited.is_some()
    }

    /// Waits for the next SIGCHLD (for ever when off).
    pub(crate) async fn child_exited(&mut self) {
        match &mut self.child_exited {
            Some(child_exited) => {
                child_exited.recv().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Waits for every zombie child of the master but those `ours` names (the workers,
    /// which their own tasks reap).
    pub(crate) fn reap(&self, ours: impl Fn(u32) -> bool) {
        for pid in children().into_iter().filter(|&pid| !ours(pid)) {
            let stat = std::fs::read(format!("/proc/{pid}/stat"));
            if !stat.is_ok_and(|stat| state(&stat) == Some(b'Z')) {
                continue;
            }
            let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
                continue;
            };
            match waitpid(Some(raw), WaitOptions::NOHANG) {
                Ok(Some((_, status))) => {
                    let status = ExitStatus::from_raw(status.as_raw());
                    let exit = ProcessExit::from_wait(&Ok(status));
                    tracing::debug!(pid, %exit, "reaped an orphaned process");
                }
                Ok(None) => {}
                // Someone else waited for it first (code of the program's own, say).
                Err(error) => tracing::debug!(pid, %error, "orphan already reaped"),
            }
        }
    }
}

/// Whether `/proc` lists this process's children, as PID 1 of its namespace; why not.
fn proc_shows_children() -> Result<(), String> {
    match std::fs::read_link("/proc/self") {
        Ok(link) if link == Path::new("1") => {}
        Ok(link) => {
            return Err(format!(
                "/proc belongs to another PID namespace (it calls this process {})",
                link.display()
            ));
        }
        Err(error) => return Err(format!("/proc/self cannot be read ({error})")),
    }
    match std::fs::metadata("/proc/self/task/1/children") {
        Ok(_) => Ok(()),
        Err(error) => Err(format!(
            "/proc/self/task/1/children cannot be read ({error})"
        )),
    }
}

/// The master's children now, from every thread's `children` file (an orphan is re-parented
/// to one of the threads).
fn children() -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read(task.ok()?.path().join("children")).ok())
        .flat_map(|list| pids(&list))
        .collect()
}

/// The pids of a `children` file: numbers separated by spaces (anything else skipped).
fn pids(list: &[u8]) -> Vec<u32> {
    String::from_utf8_lossy(list)
        .split_ascii_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

/// The state letter of a `/proc/PID/stat` line (`R`, `S`, `Z`…), read after the command name,
/// which may hold spaces, parentheses and bytes that are not UTF-8.
fn state(stat: &[u8]) -> Option<u8> {
    let name_end = stat.iter().rposition(|&byte| byte == b')')?;
    match stat.get(name_end + 1..)? {
        [b' ', state, ..] => Some(*state),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_comes_after_the_last_parenthesis_of_the_name() {
        assert_eq!(state(b"42 (sleep) Z 1 42 42 0 -1"), Some(b'Z'));
        assert_eq!(state(b"42 (a b) (c) S 1 42"), Some(b'S'));
        assert_eq!(state(b"42 (evil) R (x) Z 1 42"), Some(b'Z'));
        assert_eq!(state(b"42 ()) Z 1"), Some(b'Z'));
        assert_eq!(state(b"42 (\xff\xfe) Z 1"), Some(b'Z'));
    }

    #[test]
    fn a_stat_line_without_a_state_has_none() {
        assert_eq!(state(b""), None);
        assert_eq!(state(b"42 sleep Z"), None);
        assert_eq!(state(b"42 (sleep)"), None);
        assert_eq!(state(b"42 (sleep) "), None);
        assert_eq!(state(b"42 (sleep)Z"), None);
    }

    #[test]
    fn a_children_file_is_pids_separated_by_spaces() {
        assert_eq!(pids(b"12 345 6789 \n"), [12, 345, 6789]);
        assert_eq!(pids(b""), [] as [u32; 0]);
        assert_eq!(pids(b"12 x -3 4\xff 99999999999 7"), [12, 7]);
    }

    /// Starts `true` and waits (bounded) until it is a zombie, not reaped.
    fn zombie() -> std::process::Child {
        let child = std::process::Command::new("true").spawn().unwrap();
        let path = format!("/proc/{}/stat", child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !std::fs::read(&path).is_ok_and(|stat| state(&stat) == Some(b'Z')) {
            assert!(std::time::Instant::now() < deadline, "`true` did not exit");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child
    }

    #[test]
    fn a_zombie_child_not_ours_is_reaped_and_ours_is_left_to_its_waiter() {
        let (mut orphan, mut worker) = (zombie(), zombie());
        let listed = children();
        assert!(
            listed.contains(&orphan.id()) && listed.contains(&worker.id()),
            "{listed:?}"
        );
        // Every other child of the test process counts as ours: other tests wait for theirs.
        let orphan_pid = orphan.id();
        Orphans { child_exited: None }.reap(|pid| pid != orphan_pid);
        let taken = orphan.try_wait().unwrap_err();
        assert_eq!(
            taken.raw_os_error(),
            Some(rustix::io::Errno::CHILD.raw_os_error())
        );
        assert!(!children().contains(&orphan_pid));
        assert!(
            worker.wait().unwrap().success(),
            "its status is still its waiter's"
        );
    }
}
