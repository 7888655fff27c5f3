//! The signals the master acts on.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::Error;

/// What a received signal asks of the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SignalAction {
    /// SIGTERM or SIGINT: stop gracefully (a second one stops at once).
    Stop(&'static str),
    /// SIGHUP or SIGUSR2: rolling reload.
    Reload(&'static str),
}

/// The master's signal handlers.
pub(super) struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
    user2: Signal,
}

impl Signals {
    pub(super) fn install() -> Result<Self, Error> {
        let install = |kind| signal(kind).map_err(Error::Signal);
        Ok(Self {
            terminate: install(SignalKind::terminate())?,
            interrupt: install(SignalKind::interrupt())?,
            hangup: install(SignalKind::hangup())?,
            user2: install(SignalKind::user_defined2())?,
        })
    }

    /// The next signal received.
    pub(super) async fn next(&mut self) -> SignalAction {
        tokio::select! {
            _ = self.terminate.recv() => SignalAction::Stop("SIGTERM"),
            _ = self.interrupt.recv() => SignalAction::Stop("SIGINT"),
            _ = self.hangup.recv() => SignalAction::Reload("SIGHUP"),
            _ = self.user2.recv() => SignalAction::Reload("SIGUSR2"),
        }
    }
}
