//! The master's inbox: user messages and requests from workers, for master-side code.

use cluster_ipc::{Message, Outcome, Sender, TrySendError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::Error;

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
    pub(super) fn new(from: usize, data: serde_json::Value, seq: u64, worker: Sender) -> Self {
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
        send_to_worker(
            &self.worker,
            Message::Reply {
                seq: self.seq,
                outcome,
            },
        );
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

/// Sends to a worker without blocking the caller: a full queue waits in a task of its own.
pub(super) fn send_to_worker(worker: &Sender, message: Message) {
    match worker.try_send(&message) {
        Ok(()) => {}
        Err(TrySendError::Full) => {
            let worker = worker.clone();
            tokio::spawn(async move {
                let _ = worker.send(&message).await;
            });
        }
        Err(TrySendError::Ipc(error)) => tracing::debug!(%error, "reply not sent"),
    }
}

/// What the master's inbox receives, for master-side code. From
/// [`crate::ClusterControl::inbox`].
#[derive(Debug)]
pub struct Inbox {
    pub(super) receiver: mpsc::Receiver<Incoming>,
}

impl Inbox {
    /// The next message or request; `None` once the master has stopped.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.receiver.recv().await
    }
}
