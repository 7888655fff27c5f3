//! Graceful stop: close the listeners, hand out what they accepted, ask every worker to finish
//! and exit, kill those past the shutdown timeout (or all at once on a second stop signal),
//! and finish once every worker is gone.

use std::time::Duration;

use super::action::{Action, Notice};
use super::input::Timer;
use super::reload::Reload;
use super::state::{Machine, Phase};
use crate::Error;
use crate::master::process_exit::ExitReason;

/// How long killed workers may take to be reaped at the end of a stop.
pub(super) const REAP_GRACE: Duration = Duration::from_secs(5);

impl Machine {
    /// A stop signal: the first stops gracefully, the second at once.
    pub(super) fn on_stop_signal(&mut self, name: &str) {
        if !self.is_stopping() {
            tracing::info!("received {name}; stopping gracefully");
            return self.begin_stop();
        }
        if self.stop.forced.is_some() || self.phase == Phase::Finished {
            return;
        }
        tracing::warn!("received {name} again; stopping at once");
        let keys: Vec<_> = self.workers.keys().copied().collect();
        self.stop.forced = Some(keys.len());
        for worker in keys {
            self.kill(worker, ExitReason::Stopped);
        }
        self.arm(REAP_GRACE, Timer::ShutdownDeadline);
    }

    /// Begins the stop (once): no reload, no restart, close the listeners.
    pub(super) fn begin_stop(&mut self) {
        if self.is_stopping() {
            return;
        }
        self.phase = Phase::Closing;
        self.reload = Reload::default();
        self.fail_answers("the master is stopping");
        self.notify(Notice::ShutdownStarted);
        self.push(Action::CloseListeners);
    }

    /// Every accepted connection is handed out: every worker is asked to finish and exit.
    pub(super) fn on_listeners_closed(&mut self) {
        if self.phase != Phase::Closing {
            return;
        }
        self.phase = Phase::Stopping;
        let keys: Vec<_> = self.workers.keys().copied().collect();
        for key in keys {
            self.retire(key);
        }
        self.arm(
            self.config.shutdown_timeout.saturating_add(REAP_GRACE),
            Timer::ShutdownDeadline,
        );
        self.finish_if_stopped();
    }

    /// Finishes once the last worker is gone.
    pub(super) fn finish_if_stopped(&mut self) {
        if self.phase == Phase::Stopping && self.workers.is_empty() {
            self.finish();
        }
    }

    /// The workers were given all the time there is.
    pub(super) fn on_shutdown_deadline(&mut self) {
        if self.phase == Phase::Stopping {
            tracing::error!(left = self.workers.len(), "workers could not be reaped");
            self.finish();
        }
    }

    fn finish(&mut self) {
        self.phase = Phase::Finished;
        let dropped = self.dispatcher.take_backlog();
        if !dropped.is_empty() {
            tracing::warn!(
                dropped = dropped.len(),
                "closed connections no worker could take"
            );
        }
        for conn in dropped {
            self.push(Action::CloseConn(conn.id));
        }
        let result = self.outcome();
        if result.is_ok() {
            tracing::info!("all workers stopped");
        }
        self.push(Action::Finish(result));
    }

    fn outcome(&mut self) -> Result<(), Error> {
        if let Some(error) = self.stop.fatal.take() {
            return Err(error);
        }
        if let Some(count @ 1..) = self.stop.forced {
            return Err(Error::ForcedStop { count });
        }
        if self.stop.killed_at_timeout > 0 {
            return Err(Error::ShutdownTimeout {
                count: self.stop.killed_at_timeout,
                timeout: self.config.shutdown_timeout,
            });
        }
        Ok(())
    }
}
