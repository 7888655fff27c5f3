//! The master's inbox: user messages and requests from workers, for master-side code.

use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use cluster_ipc::{Message, Outcome, Sender, TrySendError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::Error;
use crate::sync::lock;

/// Messages and requests waiting in the master's inbox.
const INBOX_CAPACITY: usize = 4096;

/// Something a worker sent to the master.
#[derive(Debug)]
pub enum Incoming {
    /// A message (`ipc::send`).
    Message {
        /// The sender's slot.
        from: usize,
        /// The message.
        data: serde_json::Value,
    },
    /// A request (`ipc::request`): answer it with [`Request::reply`] or [`Request::fail`].
    Request(Request),
}

/// A worker's request, waiting for the master's answer. Dropping it unanswered answers with
/// an error, so the worker never waits for nothing (unless this is kept forever: then the
/// worker's own timeout applies).
#[derive(Debug)]
pub struct Request {
    from: usize,
    data: serde_json::Value,
    seq: u64,
    worker: Sender,
    answered: bool,
}

impl Request {
    pub(crate) fn new(from: usize, data: serde_json::Value, seq: u64, worker: Sender) -> Self {
        Self {
            from,
            data,
            seq,
            worker,
            answered: false,
        }
    }

    /// The asking worker's slot.
    pub fn from(&self) -> usize {
        self.from
    }

    /// The request.
    pub fn data(&self) -> &serde_json::Value {
        &self.data
    }

    /// The request as a `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(T::deserialize(&self.data)?)
    }

    /// Answers with `value`.
    pub fn reply(mut self, value: impl Serialize) -> Result<(), Error> {
        let value = serde_json::to_value(value)?;
        self.answer(Outcome::Ok(value));
        Ok(())
    }

    /// Answers with an error the worker sees as [`Error::Remote`].
    pub fn fail(mut self, reason: impl Into<String>) {
        self.answer(Outcome::Error(reason.into()));
    }

    fn answer(&mut self, outcome: Outcome) {
        self.answered = true;
        let reply = Message::Reply {
            seq: self.seq,
            outcome,
        };
        send_to_worker(&self.worker, reply, Vec::new());
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if !self.answered {
            self.answer(Outcome::Error(
                "the master dropped the request without answering".into(),
            ));
        }
    }
}

/// Sends to a worker without blocking the caller and without dropping the message: when the
/// queue is full it waits in a task of its own.
pub(crate) fn send_to_worker(worker: &Sender, message: Message, fds: Vec<OwnedFd>) {
    if fds.is_empty() {
        match worker.try_send(&message) {
            Ok(()) => return,
            Err(TrySendError::Ipc(error)) => {
                return tracing::debug!(%error, kind = message.kind(), "not sent");
            }
            // Full: wait for room below.
            Err(_) => {}
        }
    }
    let worker = worker.clone();
    tokio::spawn(async move {
        if let Err(error) = worker.send_with_fds(&message, fds).await {
            tracing::debug!(%error, kind = message.kind(), "not sent");
        }
    });
}

/// What the master's inbox receives, for master-side code. From
/// [`crate::ClusterControl::inbox`].
#[derive(Debug)]
pub struct Inbox {
    receiver: mpsc::Receiver<Incoming>,
}

impl Inbox {
    /// The next message or request; `None` once the master has stopped.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.receiver.recv().await
    }
}

/// The inbox's two ends: worker readers put, master code takes the receiving end once.
#[derive(Debug)]
pub(crate) struct InboxSlot {
    sender: mpsc::Sender<Incoming>,
    receiver: Mutex<Option<mpsc::Receiver<Incoming>>>,
    taken: AtomicBool,
}

impl InboxSlot {
    pub(crate) fn new() -> Self {
        let (sender, receiver) = mpsc::channel(INBOX_CAPACITY);
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            taken: AtomicBool::new(false),
        }
    }

    /// The inbox, the first time; [`Error::AlreadyTaken`] after.
    pub(crate) fn take(&self) -> Result<Inbox, Error> {
        let receiver = lock(&self.receiver).take().ok_or(Error::AlreadyTaken(
            "the master's inbox (ClusterControl::inbox)",
        ))?;
        self.taken.store(true, Ordering::SeqCst);
        Ok(Inbox { receiver })
    }

    /// Puts a worker's message or request in the inbox without waiting; gives it back when
    /// the inbox is full, or when nobody has taken it or its reader is gone.
    pub(crate) fn try_put(&self, incoming: Incoming) -> Result<(), NotPut> {
        if !self.taken.load(Ordering::SeqCst) {
            return Err(NotPut::Unread(incoming));
        }
        self.sender.try_send(incoming).map_err(|error| match error {
            mpsc::error::TrySendError::Full(incoming) => NotPut::Full(incoming),
            mpsc::error::TrySendError::Closed(incoming) => NotPut::Unread(incoming),
        })
    }

    /// Room for one more in the inbox, once there is; `None` when its reader is gone.
    pub(crate) async fn room(&self) -> Option<mpsc::Permit<'_, Incoming>> {
        self.sender.reserve().await.ok()
    }
}

/// Why [`InboxSlot::try_put`] gave a message back.
#[derive(Debug)]
pub(crate) enum NotPut {
    /// The inbox is full for now.
    Full(Incoming),
    /// Nobody reads the inbox.
    Unread(Incoming),
}
