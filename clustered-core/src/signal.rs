//! [`Signal`]: the signals user code sends to a worker ([`crate::WorkerHandle::kill`]).

use std::fmt;

/// A signal to send to a worker process, Node's `worker.kill('SIGTERM')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGTERM`: drain and exit (what [`crate::WorkerHandle::disconnect`] asks for, without
    /// the shutdown timeout's kill).
    Term,
    /// `SIGINT`.
    Int,
    /// `SIGHUP`.
    Hup,
    /// `SIGQUIT`.
    Quit,
    /// `SIGKILL`: end it at once.
    Kill,
    /// `SIGUSR1`.
    Usr1,
    /// `SIGUSR2`.
    Usr2,
    /// `SIGSTOP`: pause it (it stops answering; the master finds it out and routes around it).
    Stop,
    /// `SIGCONT`: resume a stopped one.
    Cont,
}

impl Signal {
    /// The signal as the OS names it.
    pub(crate) fn to_os(self) -> rustix::process::Signal {
        use rustix::process::Signal as Os;
        match self {
            Self::Term => Os::TERM,
            Self::Int => Os::INT,
            Self::Hup => Os::HUP,
            Self::Quit => Os::QUIT,
            Self::Kill => Os::KILL,
            Self::Usr1 => Os::USR1,
            Self::Usr2 => Os::USR2,
            Self::Stop => Os::STOP,
            Self::Cont => Os::CONT,
        }
    }

    /// Its name, `SIGTERM` and so on.
    pub fn name(self) -> &'static str {
        match self {
            Self::Term => "SIGTERM",
            Self::Int => "SIGINT",
            Self::Hup => "SIGHUP",
            Self::Quit => "SIGQUIT",
            Self::Kill => "SIGKILL",
            Self::Usr1 => "SIGUSR1",
            Self::Usr2 => "SIGUSR2",
            Self::Stop => "SIGSTOP",
            Self::Cont => "SIGCONT",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
