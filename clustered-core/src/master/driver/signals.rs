//! The signals the master acts on, listened to by a task of their own. SIGUSR1 reopens the log
//! files there (for logrotate); the driver hears of the others as [`SignalAction`]s over a
//! channel.
//!
//! The seven signal streams are polled only when a signal arrives, in their task, and not on
//! every turn of the driver's loop: polling them there cost the master about 3,400 of its
//! 19,400 instructions per connection (callgrind, `rr`, `ab -c8`), where the channel costs it
//! one queue poll.

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::Error;
use crate::master::command::Scale;
use crate::master::control::ClusterControl;
use crate::master::machine::SignalAction;

/// Actions that the task has read from its streams and the driver has not taken yet. One:
/// while the driver has not taken it, the task waits and the streams coalesce what else
/// arrives, as they did when the driver polled them itself.
const PENDING: usize = 1;

/// The driver's end of the signal task: the actions it sends, and the task, stopped when
/// this is dropped.
pub(crate) struct Signals {
    actions: mpsc::Receiver<SignalAction>,
    task: JoinHandle<()>,
}

impl Signals {
    /// Installs the handlers (at once, so a failure stops the master before anything starts)
    /// and starts the task that listens to them.
    pub(crate) fn install(control: ClusterControl) -> Result<Self, Error> {
        let handlers = Handlers::install(control)?;
        let (sender, actions) = mpsc::channel(PENDING);
        let task = tokio::spawn(handlers.forward(sender));
        Ok(Self { actions, task })
    }

    /// The next signal received.
    pub(crate) async fn next(&mut self) -> SignalAction {
        match self.actions.recv().await {
            Some(action) => action,
            // The task only ends when this end is dropped (or the runtime shuts down).
            None => std::future::pending().await,
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The master's signal handlers, read by the signal task.
struct Handlers {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
    user2: Signal,
    more: Signal,
    fewer: Signal,
    user1: Signal,
    control: ClusterControl,
}

impl Handlers {
    fn install(control: ClusterControl) -> Result<Self, Error> {
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

    /// Sends every signal received to the driver, in the order they are read, until the
    /// driver's end is gone.
    async fn forward(mut self, actions: mpsc::Sender<SignalAction>) {
        loop {
            let action = self.next().await;
            if actions.send(action).await.is_err() {
                return;
            }
        }
    }

    /// The next signal received for the driver; SIGUSR1 is handled here.
    async fn next(&mut self) -> SignalAction {
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
