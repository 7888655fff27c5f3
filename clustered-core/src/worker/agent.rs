//! Talking to the agent ([`crate::Cluster::agent`]): workers ask it ([`request`]) or tell it
//! ([`send`]); the agent answers what it is asked ([`requests`]) and reaches every worker with
//! [`crate::worker::ipc::broadcast`]. The master relays both ways. While no agent runs (it is starting,
//! or being restarted after it died) a request fails at once with [`Error::Remote`] saying so,
//! and one it had not answered when it died fails the same way: a request never hangs (and
//! never waits longer than its timeout).
//!
//! ```no_run
//! # async fn example() -> Result<(), clustered_core::Error> {
//! // In a worker:
//! let ticks: u64 = clustered_core::agent::request("ticks").await?;
//!
//! // In the agent:
//! let mut requests = clustered_core::agent::requests()?;
//! while let Some(request) = requests.recv().await {
//!     request.reply(ticks)?;
//! }
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use clustered_ipc::{Message, Outcome};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::role::{AGENT_ID, WorkerInfo};
use crate::worker::ipc::{DEFAULT_TIMEOUT, ask, link};
use crate::worker::{Asked, mailbox};

/// Asks the agent and waits up to [`DEFAULT_TIMEOUT`] for its answer.
pub async fn request<T: DeserializeOwned>(message: impl Serialize) -> Result<T, Error> {
    request_timeout(message, DEFAULT_TIMEOUT).await
}

/// [`request`] with its own timeout.
pub async fn request_timeout<T: DeserializeOwned>(
    message: impl Serialize,
    timeout: Duration,
) -> Result<T, Error> {
    let data = serde_json::to_value(message)?;
    ask(|seq| Message::AgentRequest { seq, data }, timeout).await
}

/// Sends `message` to the agent (its [`crate::worker::ipc::messages`]), waiting for the master's
/// receipt: no agent running is an error.
pub async fn send(message: impl Serialize) -> Result<(), Error> {
    crate::worker::ipc::send_to(AGENT_ID, message).await
}

/// The requests workers send this agent. One stream per agent: a second call is
/// [`Error::AlreadyTaken`]; outside the agent it is [`Error::NotAWorker`]. Until it is taken,
/// up to 1024 requests wait; past that, requests fail at once saying the agent is overloaded.
pub fn requests() -> Result<AgentRequests, Error> {
    if WorkerInfo::current().is_none_or(|info| info.id != AGENT_ID) {
        return Err(Error::NotAWorker);
    }
    let receiver = mailbox().take_asked().ok_or(Error::AlreadyTaken(
        "the agent's requests (agent::requests)",
    ))?;
    Ok(AgentRequests { receiver })
}

/// The stream of requests for this agent.
#[derive(Debug)]
pub struct AgentRequests {
    receiver: mpsc::Receiver<Asked>,
}

impl AgentRequests {
    /// The next request; `None` once the agent has left the cluster.
    pub async fn recv(&mut self) -> Option<AgentRequest> {
        let (id, from, data) = self.receiver.recv().await?;
        Some(AgentRequest { id, from, data })
    }
}

/// A worker's request for the agent: answer it with [`AgentRequest::reply`] or
/// [`AgentRequest::fail`] (dropped unanswered, the worker's request times out).
#[derive(Debug)]
pub struct AgentRequest {
    id: u64,
    from: usize,
    data: serde_json::Value,
}

impl AgentRequest {
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
    pub fn reply(self, value: impl Serialize) -> Result<(), Error> {
        let outcome = Outcome::Ok(serde_json::to_value(value)?);
        self.answer(outcome)
    }

    /// Answers with an error saying `reason` (the worker gets [`Error::Remote`]).
    pub fn fail(self, reason: impl Into<String>) -> Result<(), Error> {
        self.answer(Outcome::Error(reason.into()))
    }

    fn answer(self, outcome: Outcome) -> Result<(), Error> {
        link()?.try_send(&Message::AgentAnswer {
            id: self.id,
            outcome,
        })
    }
}
