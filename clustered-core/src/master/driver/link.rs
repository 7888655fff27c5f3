//! [`WorkerLink`]: the driver's ends towards one live worker: its IPC sender, its queue of
//! user messages, and the handle user code sees.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clustered_ipc::{self as ipc, Message, Sender};
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;

use super::handoff_groups::Handoff;
use crate::handoff_acks::AckRing;
use crate::master::handle::WorkerHandle;
use crate::master::ids::WorkerKey;
use crate::worker_request::send_to_worker;

/// User messages waiting for a worker's delivery task, at most.
const DELIVERY_QUEUE: usize = 8192;
/// Bytes of user messages waiting for a worker's delivery task, at most (about: JSON size).
const DELIVERY_BYTES: usize = 16 * 1024 * 1024;

/// Every worker's link, by key (the master's own ids: a fast hash is safe here).
pub(crate) type Links = FxHashMap<WorkerKey, WorkerLink>;

/// One live worker, as the driver reaches it.
#[derive(Debug)]
pub(crate) struct WorkerLink {
    sender: Sender,
    /// User messages for this worker, sent in order by a task of their own so that a slow
    /// reader never blocks the master.
    deliveries: mpsc::Sender<(Message, usize)>,
    /// Bytes of what waits in `deliveries`.
    queued_bytes: Arc<AtomicUsize>,
    pub(crate) handle: WorkerHandle,
    /// Where the worker records the handoffs it takes (none without a metrics region: then
    /// it answers each by a frame).
    pub(crate) acks: Option<AckRing>,
    /// The ring's heartbeat count when the driver last looked.
    pub(crate) beats_seen: u64,
}

impl WorkerLink {
    /// Starts the worker's delivery task.
    pub(crate) fn new(sender: Sender, handle: WorkerHandle, acks: Option<AckRing>) -> Self {
        let (deliveries, mut pending) = mpsc::channel::<(Message, usize)>(DELIVERY_QUEUE);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let (writer, queued) = (sender.clone(), Arc::clone(&queued_bytes));
        tokio::spawn(async move {
            while let Some((message, bytes)) = pending.recv().await {
                queued.fetch_sub(bytes, Ordering::Relaxed);
                if writer.send(&message).await.is_err() {
                    return;
                }
            }
        });
        Self {
            sender,
            deliveries,
            queued_bytes,
            handle,
            acks,
            beats_seen: 0,
        }
    }

    /// Queues the handoffs of `frame` (one listener's, not empty) with their descriptors,
    /// shared (the master keeps them until the worker answers) as one frame: `newConn` for
    /// one, `newConns` for more; `false` when it cannot be queued now.
    pub(crate) fn hand_off(
        &self,
        frame: &[Handoff],
        fds: impl IntoIterator<Item = Arc<OwnedFd>>,
    ) -> bool {
        let message = match frame {
            [] => return true,
            [one] => Message::NewConn {
                seq: one.seq,
                key: one.conn.key.clone(),
                peer: Some(one.conn.peer),
            },
            [first, ..] => Message::NewConns {
                key: first.conn.key.clone(),
                conns: frame
                    .iter()
                    .map(|handoff| ipc::Handoff {
                        seq: handoff.seq,
                        peer: Some(handoff.conn.peer),
                    })
                    .collect(),
            },
        };
        self.sender.try_send_with_shared_fds(&message, fds).is_ok()
    }

    /// Sends a control frame or reply, never dropped: when the queue is full it waits in a
    /// task of its own.
    pub(crate) fn send(&self, message: Message, fds: Vec<OwnedFd>) {
        send_to_worker(&self.sender, message, fds);
    }

    /// Queues a user message, in order. A worker that does not keep up with its messages (8192
    /// or 16 MiB waiting) loses this one: the error says so, for the sender's receipt.
    pub(crate) fn deliver(&self, message: Message) -> Result<(), String> {
        let bytes = approximate_size(&message);
        let queued = self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if queued.saturating_add(bytes) <= DELIVERY_BYTES
            && self.deliveries.try_send((message, bytes)).is_ok()
        {
            return Ok(());
        }
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        let reason = format!(
            "worker {} does not keep up with its messages; this one was dropped",
            self.handle.id()
        );
        tracing::warn!("{reason}");
        Err(reason)
    }
}

/// About the size of `message` as JSON, without encoding it: the size of its user data.
fn approximate_size(message: &Message) -> usize {
    match message {
        Message::Deliver { data, .. } => value_size(data),
        _ => 64,
    }
}

fn value_size(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(text) => text.len() + 2,
        Value::Array(items) => items.iter().map(value_size).sum::<usize>() + items.len() + 2,
        Value::Object(fields) => {
            let fields: usize = fields
                .iter()
                .map(|(key, value)| key.len() + 4 + value_size(value))
                .sum();
            fields + 2
        }
    }
}
