//! What user code asks of the master ([`crate::ClusterControl`], [`crate::WorkerHandle`]), and
//! the channel that carries it.

use std::sync::Mutex;

use tokio::sync::mpsc;

use super::ids::WorkerKey;
use crate::sync::lock;

/// The most workers a cluster scales to.
pub const MAX_WORKERS: usize = 1024;

/// A change of the worker count at run time ([`crate::ClusterControl::scale`], `clusterctl
/// scale`, SIGTTIN and SIGTTOU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// This many workers.
    To(usize),
    /// This many more (or fewer, when negative).
    By(i64),
}

impl Scale {
    /// The worker count this asks for when there are `current`, within 1 to [`MAX_WORKERS`].
    pub fn target(self, current: usize) -> usize {
        let wanted = match self {
            Scale::To(count) => count,
            Scale::By(delta) => {
                let magnitude = usize::try_from(delta.unsigned_abs()).unwrap_or(usize::MAX);
                match delta < 0 {
                    true => current.saturating_sub(magnitude),
                    false => current.saturating_add(magnitude),
                }
            }
        };
        wanted.clamp(1, MAX_WORKERS)
    }
}

/// Which workers a message from master code goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Every live worker.
    All,
    /// One worker process.
    One(WorkerKey),
}

/// One request from user code to the master.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// A rolling reload (as SIGHUP).
    Reload,
    /// A graceful stop (as SIGTERM).
    Shutdown,
    /// Stop routing to this worker, let it finish and exit; it is not replaced.
    Disconnect(WorkerKey),
    /// User code signalled this worker itself: its exit is intended, it is not replaced.
    Release(WorkerKey),
    /// A user message from master code.
    Deliver { to: Target, data: serde_json::Value },
    /// Change the worker count.
    Scale(Scale),
}

/// The command channel: any number of senders, one master that takes the receiver.
#[derive(Debug)]
pub(crate) struct CommandBus {
    sender: mpsc::UnboundedSender<Command>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
}

impl CommandBus {
    pub(crate) fn new() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
        }
    }

    /// Sends `command`; one sent when no master runs (yet, or any more) is dropped with it.
    pub(crate) fn send(&self, command: Command) {
        let _ = self.sender.send(command);
    }

    /// A sender for one worker's handle.
    pub(crate) fn sender(&self) -> mpsc::UnboundedSender<Command> {
        self.sender.clone()
    }

    /// The master's end; there is one master per cluster, later calls get `None`.
    pub(crate) fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<Command>> {
        lock(&self.receiver).take()
    }
}
