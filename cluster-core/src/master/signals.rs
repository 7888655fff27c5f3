//! The signals the master acts on.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::Error;

/// SIGTERM and SIGINT: stop gracefully (a second one stops at once).
pub(super) struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    pub(super) fn install() -> Result<Self, Error> {
        Ok(Self {
            terminate: signal(SignalKind::terminate()).map_err(Error::Signal)?,
            interrupt: signal(SignalKind::interrupt()).map_err(Error::Signal)?,
        })
    }

    /// The name of the next stop signal received.
    pub(super) async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
