//! [`WorkerLink`]: the driver's ends towards one live worker: its IPC sender, its queue of
//! user messages, and the handle user code sees.

use std::os::fd::{AsFd, OwnedFd};

use cluster_ipc::{Message, Sender};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::master::handle::WorkerHandle;
use crate::master::inbox::send_to_worker;
use crate::master::machine::Conn;

/// User messages waiting for a worker's delivery task.
const DELIVERY_QUEUE: usize = 8192;

/// One live worker, as the driver reaches it.
#[derive(Debug)]
pub(crate) struct WorkerLink {
    sender: Sender,
    /// User messages for this worker, sent in order by a task of their own so that a slow
    /// reader never blocks the master.
    deliveries: mpsc::Sender<Message>,
    pub(crate) handle: WorkerHandle,
}

impl WorkerLink {
    /// Starts the worker's delivery task.
    pub(crate) fn new(sender: Sender, handle: WorkerHandle) -> Self {
        let (deliveries, mut pending) = mpsc::channel::<Message>(DELIVERY_QUEUE);
        let writer = sender.clone();
        tokio::spawn(async move {
            while let Some(message) = pending.recv().await {
                if writer.send(&message).await.is_err() {
                    return;
                }
            }
        });
        Self {
            sender,
            deliveries,
            handle,
        }
    }

    /// Queues `newConn {seq}` with a copy of the connection's descriptor (the master keeps
    /// its own); `false` when it cannot be queued now.
    pub(crate) fn hand_off(&self, seq: u64, conn: &Conn, stream: &TcpStream) -> bool {
        let fd = match stream.as_fd().try_clone_to_owned() {
            Ok(fd) => fd,
            Err(error) => {
                tracing::warn!(%error, "cannot duplicate a connection's descriptor");
                return false;
            }
        };
        let message = Message::NewConn {
            seq,
            key: conn.key.clone(),
            peer: Some(conn.peer),
        };
        self.sender.try_send_with_fds(&message, vec![fd]).is_ok()
    }

    /// Sends a control frame or reply, never dropped: when the queue is full it waits in a
    /// task of its own.
    pub(crate) fn send(&self, message: Message, fds: Vec<OwnedFd>) {
        send_to_worker(&self.sender, message, fds);
    }

    /// Queues a user message, in order; a worker that does not keep up loses it, with a
    /// warning.
    pub(crate) fn deliver(&self, message: Message) {
        if self.deliveries.try_send(message).is_err() {
            tracing::warn!(
                slot = self.handle.id(),
                "worker does not keep up with its messages; one was dropped"
            );
        }
    }
}
