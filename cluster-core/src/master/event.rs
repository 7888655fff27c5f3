//! What the master's supervisor loop reacts to.

use std::io;
use std::process::ExitStatus;

use cluster_ipc::{IpcError, Received};

use super::dispatch::Handoff;

/// Identifies one worker process for its whole life (a replacement in the same slot gets a new
/// key), so late events from a dead worker never touch its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct WorkerKey(pub(super) u64);

/// One thing that happened, reported by a listener, a worker reader or a worker reaper task.
#[derive(Debug)]
pub(super) enum Event {
    /// A listener accepted a connection.
    Connection(Handoff),
    /// A worker sent a message.
    Message {
        worker: WorkerKey,
        received: Received,
    },
    /// A worker's IPC channel closed: cleanly (`None`) or because of an error.
    ChannelClosed {
        worker: WorkerKey,
        error: Option<IpcError>,
    },
    /// A worker process exited and was reaped.
    Exited {
        worker: WorkerKey,
        status: io::Result<ExitStatus>,
    },
    /// A slot's restart backoff has passed.
    RestartDue { slot: usize },
    /// A disconnected worker's time to finish has run out.
    DisconnectTimeout { worker: WorkerKey },
    /// Time to push changed counters to their subscribers.
    PushCounters,
}
