//! The signals the master acts on. SIGUSR1 reopens the log files here (for logrotate); the
//! machine hears of the others.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::Error;
use crate::master::command::Scale;
use crate::master::control::ClusterControl;
use crate::master::machine::SignalAction;

/// The master's signal handlers.
pub(crate) struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
    user2: Signal,
    more: Signal,
    fewer: Signal,
    user1: Signal,
    control: ClusterControl,
}

impl Signals {
    pub(crate) fn install(control: ClusterControl) -> Result<Self, Error> {
        let install = |kind| signal(kind).map_err(Error::Signal);
        Ok(Self {
            terminate: install(SignalKind::terminate())?,
            interrupt: install(SignalKind::interrupt())?,
            hangup: install(SignalKind::hangup())?,
            user2: install(SignalKind::user_defined2())?,
            more: install(SignalKind::from_raw(rustix::process::Signal::TTIN.as_raw()))?,
            fewer: install(SignalKind::from_raw(rustix::process::Signal::TTOU.as_raw()))?,
            user1: install(SignalKind::user_defined1())?,
            control,
        })
    }

    /// The next signal received.
    pub(crate) async fn next(&mut self) -> SignalAction {
        loop {
            return tokio::select! {
                _ = self.terminate.recv() => SignalAction::Stop("SIGTERM"),
                _ = self.interrupt.recv() => SignalAction::Stop("SIGINT"),
                _ = self.hangup.recv() => SignalAction::Reload("SIGHUP"),
                _ = self.user2.recv() => SignalAction::Upgrade("SIGUSR2"),
                _ = self.more.recv() => SignalAction::Scale("SIGTTIN", Scale::By(1)),
                _ = self.fewer.recv() => SignalAction::Scale("SIGTTOU", Scale::By(-1)),
                _ = self.user1.recv() => {
                    tracing::info!("received SIGUSR1; reopening the log files");
                    self.control.logs().reopen_files();
                    continue;
                }
            };
        }
    }
}
