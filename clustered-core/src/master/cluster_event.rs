//! [`ClusterEvent`]: what happens to the cluster, as a stream user code can read in the master.

use clustered_ipc::ListenAddr;
use std::fmt;
use std::time::Duration;

use tokio::sync::broadcast;

use super::handle::WorkerHandle;
use super::process_exit::ExitReason;

/// One step in the life of a worker or of the cluster (Node's `fork`, `online`, `listening`,
/// `disconnect`, `exit`, plus restart, reload and shutdown progress).
///
/// Each prints as one line, e.g.
/// `exit worker=2 pid=4711 code=0 signal=- reason=stopped after_disconnect=true`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClusterEvent {
    /// A worker process was started.
    Fork(WorkerHandle),
    /// A worker joined the master.
    Online(WorkerHandle),
    /// A worker takes connections for `address`; only now does the master route to it.
    Listening(WorkerHandle, ListenAddr),
    /// A worker was asked to stop (it finishes its in-flight requests first).
    Disconnect(WorkerHandle),
    /// A worker process exited.
    #[non_exhaustive]
    Exit {
        /// The worker.
        worker: WorkerHandle,
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
        /// Whether it exited because it was asked to (it is then not replaced).
        exited_after_disconnect: bool,
        /// Why it ended: on its own, asked to, or killed by the master (hung, too slow to
        /// boot).
        reason: ExitReason,
    },
    /// A worker died on its own; its slot is restarted after `delay`.
    Restarting {
        /// The slot.
        id: usize,
        /// The backoff before the new worker starts.
        delay: Duration,
    },
    /// A rolling reload began.
    ReloadStarted,
    /// One slot was reloaded: its replacement listens and the old worker is draining.
    Reloaded {
        /// The slot.
        id: usize,
        /// The old worker's pid.
        old_pid: u32,
        /// The new worker's pid.
        new_pid: u32,
    },
    /// The rolling reload finished: every slot runs a new worker.
    ReloadFinished,
    /// The agent ([`crate::Cluster::agent`]) is ready; the first time, the workers start now.
    /// Its other events are a worker's, with id [`crate::AGENT_ID`] (0).
    AgentReady(WorkerHandle),
    /// A worker past `CLUSTER_MAX_REQUESTS` or `CLUSTER_MAX_MEMORY` is being replaced: its
    /// replacement starts, and once that one listens this one drains (its `Exit` then says the
    /// same reason). One worker at a time.
    Recycling(WorkerHandle, ExitReason),
    /// The rolling reload stopped; the old worker of `id` (and every slot not yet reloaded)
    /// keeps serving.
    ReloadFailed {
        /// The slot whose replacement failed.
        id: usize,
        /// Why, in one line.
        reason: String,
    },
    /// Graceful shutdown began.
    ShutdownStarted,
    /// The worker count changed (new slots start workers, removed ones drain).
    Scaled {
        /// The count before.
        from: usize,
        /// The count now.
        to: usize,
    },
}

impl fmt::Display for ClusterEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let worker = |f: &mut fmt::Formatter<'_>, name: &str, w: &WorkerHandle| {
            write!(f, "{name} worker={} pid={}", w.id(), w.pid())
        };
        match self {
            ClusterEvent::Fork(w) => worker(f, "fork", w),
            ClusterEvent::Online(w) => worker(f, "online", w),
            ClusterEvent::Listening(w, address) => {
                worker(f, "listening", w)?;
                write!(f, " address={address}")
            }
            ClusterEvent::Disconnect(w) => worker(f, "disconnect", w),
            ClusterEvent::Exit {
                worker: w,
                code,
                signal,
                exited_after_disconnect,
                reason,
            } => {
                worker(f, "exit", w)?;
                let or_dash = |n: &Option<i32>| n.map_or("-".to_owned(), |n| n.to_string());
                write!(
                    f,
                    " code={} signal={} reason={reason} after_disconnect={exited_after_disconnect}",
                    or_dash(code),
                    or_dash(signal)
                )
            }
            ClusterEvent::Restarting { id, delay } => {
                write!(f, "restarting worker={id} delay_ms={}", delay.as_millis())
            }
            ClusterEvent::ReloadStarted => f.write_str("reload-started"),
            ClusterEvent::Reloaded {
                id,
                old_pid,
                new_pid,
            } => write!(
                f,
                "reloaded worker={id} old_pid={old_pid} new_pid={new_pid}"
            ),
            ClusterEvent::ReloadFinished => f.write_str("reload-finished"),
            ClusterEvent::AgentReady(w) => write!(f, "agent-ready pid={}", w.pid()),
            ClusterEvent::Recycling(w, reason) => {
                worker(f, "recycling", w)?;
                write!(f, " reason={reason}")
            }
            ClusterEvent::ReloadFailed { id, reason } => {
                write!(f, "reload-failed worker={id} reason={reason}")
            }
            ClusterEvent::ShutdownStarted => f.write_str("shutdown-started"),
            ClusterEvent::Scaled { from, to } => write!(f, "scaled from={from} to={to}"),
        }
    }
}

/// The events of one subscriber, from [`crate::ClusterControl::events`].
///
/// Events are kept for slow readers up to a bound (1024); a reader that falls further behind
/// skips the oldest and is told how many with [`broadcast::error::RecvError::Lagged`].
#[derive(Debug)]
pub struct EventStream {
    receiver: broadcast::Receiver<ClusterEvent>,
}

impl EventStream {
    pub(crate) fn new(receiver: broadcast::Receiver<ClusterEvent>) -> Self {
        Self { receiver }
    }

    /// The next event; `None` once the master has stopped and every
    /// [`crate::ClusterControl`] is dropped. A task reading events should be awaited before
    /// `main` returns, or the last events (the workers' exits) may go unread.
    pub async fn recv(&mut self) -> Option<ClusterEvent> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::warn!(skipped, "a slow event reader skipped events");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
