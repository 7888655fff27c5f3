//! [`WorkerRequest`]: a worker's request waiting for its answer, wherever it is answered (the
//! master's inbox or the agent), and [`send_to_worker`], how answers travel without ever
//! blocking the answerer or being dropped.

use std::os::fd::OwnedFd;

use clustered_ipc::{Message, Outcome, Sender, TrySendError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::IpcError;

/// A worker's request, waiting for an answer: [`WorkerRequest::reply`] or
/// [`WorkerRequest::fail`]. Dropped unanswered, it fails with an error saying so, so the
/// worker never waits for nothing (one kept forever meets the worker's own timeout).
#[derive(Debug)]
pub struct WorkerRequest {
    from: usize,
    data: serde_json::Value,
    answer: AnswerTo,
    answered: bool,
}

/// Where a request's answer goes.
#[derive(Debug)]
pub(crate) struct AnswerTo {
    /// The channel the answer is sent on.
    pub(crate) channel: Sender,
    /// The number the asker knows the request by.
    pub(crate) id: u64,
    /// The answer's frame, from the id and the outcome.
    pub(crate) frame: fn(u64, Outcome) -> Message,
    /// Who drops it unanswered, for the error then: `the master`, `the agent`.
    pub(crate) answerer: &'static str,
}

impl WorkerRequest {
    pub(crate) fn new(from: usize, data: serde_json::Value, answer: AnswerTo) -> Self {
        Self {
            from,
            data,
            answer,
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
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, IpcError> {
        Ok(T::deserialize(&self.data)?)
    }

    /// Answers with `value` (an error only when `value` cannot be made JSON: then the request
    /// is failed saying so).
    pub fn reply(mut self, value: impl Serialize) -> Result<(), IpcError> {
        match serde_json::to_value(value) {
            Ok(value) => {
                self.answer(Outcome::Ok(value));
                Ok(())
            }
            Err(error) => {
                self.answer(Outcome::Error(format!("the answer is not JSON: {error}")));
                Err(error.into())
            }
        }
    }

    /// Answers with an error saying `reason` (the asker gets [`IpcError::Remote`]).
    pub fn fail(mut self, reason: impl Into<String>) {
        self.answer(Outcome::Error(reason.into()));
    }

    /// The frame that fails it, saying `why`, for the caller to send: it counts as answered.
    pub(crate) fn refusal(mut self, why: &str) -> Message {
        self.answered = true;
        (self.answer.frame)(self.answer.id, Outcome::Error(why.into()))
    }

    fn answer(&mut self, outcome: Outcome) {
        if !std::mem::replace(&mut self.answered, true) {
            let to = &self.answer;
            send_to_worker(&to.channel, (to.frame)(to.id, outcome), Vec::new());
        }
    }
}

impl Drop for WorkerRequest {
    fn drop(&mut self) {
        let answerer = self.answer.answerer;
        self.answer(Outcome::Error(format!(
            "{answerer} dropped the request without answering"
        )));
    }
}

/// Sends without blocking the caller and without dropping the message: when the queue is full
/// it waits in a task of its own (outside a runtime, it is logged and dropped).
pub(crate) fn send_to_worker(channel: &Sender, message: Message, fds: Vec<OwnedFd>) {
    if fds.is_empty() {
        match channel.try_send(&message) {
            Ok(()) => return,
            Err(TrySendError::Ipc(error)) => {
                return tracing::debug!(%error, kind = message.kind(), "not sent");
            }
            // Full: wait for room below.
            Err(_) => {}
        }
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return tracing::warn!(
            kind = message.kind(),
            "not sent: no async runtime to wait in"
        );
    };
    let channel = channel.clone();
    runtime.spawn(async move {
        if let Err(error) = channel.send_with_fds(&message, fds).await {
            tracing::debug!(%error, kind = message.kind(), "not sent");
        }
    });
}

#[cfg(test)]
mod tests {
    use clustered_ipc::{Channel, Message, Outcome};

    use super::{AnswerTo, WorkerRequest};

    /// A request answered through a real channel, and what the asker then receives.
    async fn answered(answer: impl FnOnce(WorkerRequest)) -> Outcome {
        let (ours, theirs) = Channel::pair().expect("a socketpair");
        let (sender, _receiver) = ours.split();
        let (_, mut asker) = theirs.split();
        let to = AnswerTo {
            channel: sender,
            id: 7,
            frame: |id, outcome| Message::AgentAnswer { id, outcome },
            answerer: "the agent",
        };
        answer(WorkerRequest::new(3, serde_json::json!("ticks"), to));
        let received = asker.recv().await.expect("a frame").expect("not closed");
        match received.message {
            Message::AgentAnswer { id: 7, outcome } => outcome,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_reply_reaches_the_asker_with_its_id() {
        let outcome = answered(|request| {
            assert_eq!(
                (request.from(), request.parse::<String>().ok()),
                (3, Some("ticks".into()))
            );
            request.reply(42).expect("42 is JSON");
        })
        .await;
        assert_eq!(outcome, Outcome::Ok(serde_json::json!(42)));
    }

    #[tokio::test]
    async fn a_failure_says_why() {
        let outcome = answered(|request| request.fail("no ticks today")).await;
        assert_eq!(outcome, Outcome::Error("no ticks today".into()));
    }

    #[tokio::test]
    async fn one_dropped_unanswered_fails_saying_who_dropped_it() {
        let outcome = answered(drop).await;
        assert_eq!(
            outcome,
            Outcome::Error("the agent dropped the request without answering".into())
        );
    }
}
