//! The master's record of one worker process.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use cluster_ipc::{ListenKey, Message, Sender};
use rustix::process::Signal;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::dispatch::Handoff;
use super::handle::WorkerHandle;
use super::spawn::Spawned;

/// Handoffs a worker may have unacknowledged at once: the master never waits one round trip
/// per connection, and a stuck worker cannot hoard connections. Far below the IPC send queue
/// (1024 frames), so control messages always find room.
const HANDOFF_WINDOW: usize = 64;
/// User messages waiting for a worker's delivery task.
const DELIVERY_QUEUE: usize = 8192;

/// One live worker process as the master sees it.
#[derive(Debug)]
pub(super) struct WorkerRecord {
    pub(super) slot: usize,
    pub(super) pid: u32,
    /// What user code sees of this worker.
    pub(super) handle: WorkerHandle,
    pub(super) started: Instant,
    sender: Sender,
    /// User messages for this worker, sent in order by a task of their own so that a slow
    /// reader never blocks the master.
    deliveries: mpsc::Sender<Message>,
    /// The master asked it to stop.
    pub(super) disconnecting: bool,
    pub(super) listening: HashSet<ListenKey>,
    inflight: HashMap<u64, Handoff>,
    next_seq: u64,
    /// Open connections plus in-flight requests, from the last heartbeat.
    reported_load: u64,
}

impl WorkerRecord {
    pub(super) fn new(slot: usize, spawned: Spawned, handle: WorkerHandle) -> Self {
        let (deliveries, mut pending) = mpsc::channel::<Message>(DELIVERY_QUEUE);
        let sender = spawned.sender.clone();
        tokio::spawn(async move {
            while let Some(message) = pending.recv().await {
                if sender.send(&message).await.is_err() {
                    return;
                }
            }
        });
        Self {
            deliveries,
            slot,
            pid: spawned.pid,
            handle,
            started: Instant::now(),
            sender: spawned.sender,
            disconnecting: false,
            listening: HashSet::new(),
            inflight: HashMap::new(),
            next_seq: 1,
            reported_load: 0,
        }
    }

    /// Sends the connection's descriptor to this worker, keeping the master's copy until it is
    /// acknowledged. Gives the handoff back when the worker has no room or cannot be reached.
    pub(super) fn offer(&mut self, handoff: Handoff) -> Result<(), Handoff> {
        if !self.handle.is_connected()
            || self.disconnecting
            || self.inflight.len() >= HANDOFF_WINDOW
        {
            return Err(handoff);
        }
        let fd = match handoff.stream.as_fd().try_clone_to_owned() {
            Ok(fd) => fd,
            Err(error) => {
                tracing::warn!(%error, "cannot duplicate a connection's descriptor");
                return Err(handoff);
            }
        };
        let seq = self.next_seq;
        let message = Message::NewConn {
            seq,
            key: handoff.key.clone(),
            peer: Some(handoff.peer),
        };
        match self.sender.try_send_with_fds(&message, vec![fd]) {
            Ok(()) => {
                self.next_seq += 1;
                self.inflight.insert(seq, handoff);
                Ok(())
            }
            Err(_) => Err(handoff),
        }
    }

    /// Records a heartbeat: `load` open connections and in-flight requests.
    pub(super) fn report_load(&mut self, load: u64) {
        self.reported_load = load;
    }

    /// The load estimate the `least` policy compares: the last report, plus the handoffs the
    /// worker has not acknowledged yet (which no report can include). Acknowledged ones show
    /// in the next heartbeat, 10 ms later at most.
    pub(super) fn estimated_load(&self) -> u64 {
        self.reported_load + self.inflight.len() as u64
    }

    /// The handoff `seq`, now acknowledged (`None` if there is no such handoff).
    pub(super) fn acknowledge(&mut self, seq: u64) -> Option<Handoff> {
        self.inflight.remove(&seq)
    }

    /// Every handoff not yet acknowledged, to give to other workers.
    pub(super) fn take_unacknowledged(&mut self) -> Vec<Handoff> {
        self.inflight.drain().map(|(_, handoff)| handoff).collect()
    }

    /// Queues a user message for this worker, in order; `false` (and a warning) when the
    /// worker does not keep up with its messages.
    pub(super) fn deliver(&self, message: Message) -> bool {
        let queued = self.deliveries.try_send(message).is_ok();
        if !queued {
            tracing::warn!(
                slot = self.slot,
                "worker does not keep up with its messages; one was dropped"
            );
        }
        queued
    }

    /// The sending half of the worker's IPC channel.
    pub(super) fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Sends a control message without waiting; a worker that cannot take it is going away.
    pub(super) fn send(&self, message: &Message) {
        self.send_with_fds(message, Vec::new());
    }

    /// [`WorkerRecord::send`] with descriptors attached.
    pub(super) fn send_with_fds(&self, message: &Message, fds: Vec<std::os::fd::OwnedFd>) {
        if let Err(error) = self.sender.try_send_with_fds(message, fds) {
            tracing::debug!(slot = self.slot, %error, kind = message.kind(), "not sent");
        }
    }

    /// Asks the worker to finish its work and exit.
    pub(super) fn disconnect(&mut self) {
        if !self.disconnecting {
            self.disconnecting = true;
            self.handle.set_exited_after_disconnect();
            self.send(&Message::Disconnect);
        }
    }

    /// Kills a worker that is not wanted (it is not replaced).
    pub(super) fn abandon(&mut self) {
        self.disconnecting = true;
        self.handle.set_exited_after_disconnect();
        self.kill();
    }

    /// Kills the worker process at once.
    pub(super) fn kill(&self) {
        if let Err(error) = self.handle.signal(Signal::KILL) {
            tracing::debug!(slot = self.slot, %error, "kill failed (already gone?)");
        }
    }
}

/// How a process ended, in words: `exit code 1`, `killed by signal 9 (SIGKILL)`.
pub(super) fn describe_exit(status: &io::Result<ExitStatus>) -> String {
    let status = match status {
        Ok(status) => status,
        Err(error) => return format!("exit status unknown ({error})"),
    };
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    match status.signal() {
        Some(signal) => format!("killed by signal {signal} ({})", signal_name(signal)),
        None => "ended in an unknown way".to_owned(),
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
