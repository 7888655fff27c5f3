//! How a worker process ended ([`ProcessExit`]), and why ([`ExitReason`]).

use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// How a process ended: an exit code, a signal, or a status that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProcessExit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// Waiting for it failed; the reason.
    Unknown(String),
}

impl ProcessExit {
    /// The exit of a reaped child, as `wait` reported it.
    pub(crate) fn from_wait(status: &io::Result<ExitStatus>) -> Self {
        match status {
            Err(error) => ProcessExit::Unknown(error.to_string()),
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => ProcessExit::Code(code),
                (None, Some(signal)) => ProcessExit::Signal(signal),
                (None, None) => ProcessExit::Unknown("ended in an unknown way".into()),
            },
        }
    }

    /// The exit code, if it exited.
    pub(crate) fn code(&self) -> Option<i32> {
        match self {
            ProcessExit::Code(code) => Some(*code),
            _ => None,
        }
    }

    /// The signal that killed it, if one did.
    pub(crate) fn signal(&self) -> Option<i32> {
        match self {
            ProcessExit::Signal(signal) => Some(*signal),
            _ => None,
        }
    }
}

/// `exit code 1`, `killed by signal 9 (SIGKILL)`, `exit status unknown (...)`.
impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessExit::Code(code) => write!(f, "exit code {code}"),
            ProcessExit::Signal(signal) => {
                write!(f, "killed by signal {signal} ({})", signal_name(*signal))
            }
            ProcessExit::Unknown(reason) => write!(f, "exit status unknown ({reason})"),
        }
    }
}

/// Why a worker process ended, as the master saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitReason {
    /// It died on its own (a crash, a panic, an exit of its own): it is replaced, and it
    /// counts as a crash.
    Unexpected,
    /// It was asked to stop (disconnect, reload, shutdown, scale down, or a kill through its
    /// handle).
    Stopped,
    /// It was stopped from outside (`clusterctl kill`, or a SIGTERM sent to it by hand): it
    /// drained and was replaced at once, and it does not count as a crash.
    Requested,
    /// The master killed it: no heartbeat for the hang timeout. It is replaced.
    Hung,
    /// The master killed it: not listening (or, with readiness on, not ready) within the boot
    /// timeout. It is replaced.
    BootTimeout,
    /// The master killed it: it broke the IPC protocol (a malformed, oversize or unknown
    /// frame, or a message only the master may send). It is replaced.
    Protocol,
    /// The master killed it: it speaks another version of the IPC protocol (a binary of
    /// another build). It is replaced.
    ProtocolVersion,
    /// The master killed it: asked to stop, it was still there after the shutdown timeout.
    DrainTimeout,
    /// It served its `CLUSTER_MAX_REQUESTS` (plus its jitter) and was replaced, the
    /// replacement first, then it drained.
    MaxRequests,
    /// Its resident memory passed `CLUSTER_MAX_MEMORY` and it was replaced, the replacement
    /// first, then it drained.
    MaxMemory,
}

impl ExitReason {
    /// The reason in a few words, for a sentence ("the new worker was killed: …").
    pub fn describe(self) -> &'static str {
        match self {
            ExitReason::Unexpected => "it died on its own",
            ExitReason::Stopped => "it was asked to stop",
            ExitReason::Requested => "it was stopped from outside (clusterctl kill or SIGTERM)",
            ExitReason::Hung => "it sent no heartbeat for the hang timeout",
            ExitReason::BootTimeout => "it was not serving within the boot timeout",
            ExitReason::Protocol => "it broke the IPC protocol",
            ExitReason::ProtocolVersion => {
                "it speaks another IPC protocol version (a binary of another build)"
            }
            ExitReason::DrainTimeout => "it did not stop within the shutdown timeout",
            ExitReason::MaxRequests => "it served its max-requests",
            ExitReason::MaxMemory => "its memory passed max-memory",
        }
    }
}

/// `unexpected`, `stopped`, `requested`, `hung`, `boot-timeout`, `protocol`,
/// `protocol-version`, `drain-timeout`, `max-requests`, `max-memory`.
impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExitReason::Unexpected => "unexpected",
            ExitReason::Stopped => "stopped",
            ExitReason::Requested => "requested",
            ExitReason::Hung => "hung",
            ExitReason::BootTimeout => "boot-timeout",
            ExitReason::Protocol => "protocol",
            ExitReason::ProtocolVersion => "protocol-version",
            ExitReason::DrainTimeout => "drain-timeout",
            ExitReason::MaxRequests => "max-requests",
            ExitReason::MaxMemory => "max-memory",
        })
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "other signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_read_as_one_phrase() {
        let killed = ProcessExit::from_wait(&Ok(ExitStatus::from_raw(9)));
        assert_eq!(killed.to_string(), "killed by signal 9 (SIGKILL)");
        assert_eq!((killed.code(), killed.signal()), (None, Some(9)));
        let exited = ProcessExit::from_wait(&Ok(ExitStatus::from_raw(3 << 8)));
        assert_eq!(exited.to_string(), "exit code 3");
        let unknown = ProcessExit::from_wait(&Err(io::Error::other("gone")));
        assert_eq!(unknown.to_string(), "exit status unknown (gone)");
    }
}
