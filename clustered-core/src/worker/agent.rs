//! Talking to the agent ([`crate::Cluster::agent`]): workers ask it ([`request`]) or tell it
//! ([`send`]); the agent answers what it is asked ([`requests`]) and reaches every worker with
//! [`crate::worker::ipc::broadcast`]. The master relays both ways. While no agent runs (it is starting,
//! or being restarted after it died) a request fails at once with [`IpcError::Remote`] saying so,
//! and one it had not answered when it died fails the same way: a request never hangs (and
//! never waits longer than its timeout).
//!
//! ```no_run
//! # async fn example() -> Result<(), clustered_core::IpcError> {
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

use clustered_ipc::{Message, Sender};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::error::IpcError;
use crate::role::{AGENT_ID, WorkerInfo};
use crate::worker::ipc::{DEFAULT_TIMEOUT, Spends, link, request_with};
use crate::worker::{Asked, mailbox};
use crate::worker_request::{AnswerTo, WorkerRequest};

/// Asks the agent and waits up to [`DEFAULT_TIMEOUT`] for its answer.
pub async fn request<T: DeserializeOwned>(message: impl Serialize) -> Result<T, IpcError> {
    request_timeout(message, DEFAULT_TIMEOUT).await
}

/// [`request`] with its own timeout.
pub async fn request_timeout<T: DeserializeOwned>(
    message: impl Serialize,
    timeout: Duration,
) -> Result<T, IpcError> {
    let frame = |seq, data| Message::AgentRequest { seq, data };
    request_with(message, timeout, frame, Spends::Nothing).await
}

/// Sends `message` to the agent (its [`crate::worker::ipc::messages`]), waiting for the master's
/// receipt: no agent running is an error.
pub async fn send(message: impl Serialize) -> Result<(), IpcError> {
    crate::worker::ipc::send_to(AGENT_ID, message).await
}

/// The requests workers send this agent. One stream per agent: a second call is
/// [`IpcError::AlreadyTaken`]; outside the agent it is [`IpcError::NotAWorker`]. Until it is taken,
/// up to 1024 requests wait; past that, requests fail at once saying the agent is overloaded.
pub fn requests() -> Result<AgentRequests, IpcError> {
    if WorkerInfo::current().is_none_or(|info| info.id != AGENT_ID) {
        return Err(IpcError::NotAWorker);
    }
    let answers = link()?.sender().clone();
    let receiver = mailbox().take_asked().ok_or(IpcError::AlreadyTaken(
        "the agent's requests (agent::requests)",
    ))?;
    Ok(AgentRequests { receiver, answers })
}

/// The stream of requests for this agent.
#[derive(Debug)]
pub struct AgentRequests {
    receiver: mpsc::Receiver<Asked>,
    /// The channel the answers go back on (the agent's to its master).
    answers: Sender,
}

impl AgentRequests {
    /// The next request; `None` once the agent has left the cluster.
    pub async fn recv(&mut self) -> Option<WorkerRequest> {
        let (id, from, data) = self.receiver.recv().await?;
        let answer = AnswerTo {
            channel: self.answers.clone(),
            id,
            frame: |id, outcome| Message::AgentAnswer { id, outcome },
            answerer: "the agent",
        };
        Some(WorkerRequest::new(from, data, answer))
    }
}
