//! Descriptors: the open-files limit, raised at start as Go and nginx do, the share of it the
//! master may spend on connections it holds, and what to do when `accept` runs out.

use std::io;
use std::time::Duration;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (workers inherit it); logs
/// what it did.
pub(crate) fn raise_open_files_limit() {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let (Some(current), Some(maximum)) = (current, maximum) else {
        return; // unlimited already
    };
    if current >= maximum {
        return;
    }
    let raised = Rlimit {
        current: Some(maximum),
        maximum: Some(maximum),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::info!("raised the open-files limit from {current} to {maximum}"),
        Err(error) => tracing::warn!(%error, current, maximum, "cannot raise the open-files limit"),
    }
}

/// How many accepted connections the master may hold at once (each not yet acknowledged by a
/// worker): at most 4096, and at most about a third of its open-files limit, so that copying
/// each for its handoff, and the master's own sockets, always find a descriptor. Past it the
/// master stops accepting and clients wait in the kernel's listen backlog.
pub(crate) fn connection_budget() -> usize {
    let limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let share = usize::try_from(limit / 3).unwrap_or(usize::MAX);
    share.saturating_sub(32).clamp(16, 4096)
}

/// Whether `error` says this process or the system is out of descriptors or memory.
pub(crate) fn is_out_of_resources(error: &io::Error) -> bool {
    let errno = error
        .raw_os_error()
        .map(rustix::io::Errno::from_raw_os_error);
    matches!(
        errno,
        Some(
            rustix::io::Errno::MFILE
                | rustix::io::Errno::NFILE
                | rustix::io::Errno::NOMEM
                | rustix::io::Errno::NOBUFS
                | rustix::io::Errno::AGAIN
        )
    )
}

/// How long to wait after `accept` fails. Out of descriptors it backs off (10 ms doubling to
/// 1 s), so clients wait in the kernel's backlog and nothing spins, and says so once per
/// episode; any other error (a client that gave up during the handshake) is retried soon.
#[derive(Debug)]
pub(crate) struct AcceptErrors {
    delay: Duration,
    exhausted: bool,
}

const FIRST_DELAY: Duration = Duration::from_millis(10);
const LONGEST_DELAY: Duration = Duration::from_secs(1);

impl AcceptErrors {
    pub(crate) fn new() -> Self {
        Self {
            delay: FIRST_DELAY,
            exhausted: false,
        }
    }

    /// `accept` failed with `error` on `what`: how long to wait before the next one.
    pub(crate) fn after(&mut self, error: &io::Error, what: &str) -> Duration {
        if !is_out_of_resources(error) {
            tracing::debug!(what, %error, "accept failed; retrying");
            return FIRST_DELAY;
        }
        if !self.exhausted {
            tracing::warn!(
                what,
                %error,
                "out of file descriptors: not accepting for a while (clients wait in the backlog)"
            );
            self.exhausted = true;
        }
        let delay = self.delay;
        self.delay = (self.delay * 2).min(LONGEST_DELAY);
        delay
    }

    /// `accept` worked: back to normal.
    pub(crate) fn succeeded(&mut self, what: &str) {
        if std::mem::take(&mut self.exhausted) {
            tracing::info!(what, "accepting again");
        }
        self.delay = FIRST_DELAY;
    }

    /// Whether the last failure was for lack of descriptors.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.exhausted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_backs_off_to_a_second_and_recovers() {
        let mut errors = AcceptErrors::new();
        let emfile = io::Error::from_raw_os_error(24);
        let delays: Vec<Duration> = (0..10).map(|_| errors.after(&emfile, "test")).collect();
        assert_eq!(delays[0], Duration::from_millis(10));
        assert_eq!(delays[1], Duration::from_millis(20));
        assert_eq!(*delays.last().unwrap(), Duration::from_secs(1));
        assert!(errors.is_exhausted());
        errors.succeeded("test");
        assert!(!errors.is_exhausted());
        assert_eq!(errors.after(&emfile, "test"), Duration::from_millis(10));
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(errors.after(&reset, "test"), Duration::from_millis(10));
    }

    #[test]
    fn the_budget_leaves_room_for_handoff_copies() {
        let budget = connection_budget();
        assert!((16..=4096).contains(&budget));
    }
}
