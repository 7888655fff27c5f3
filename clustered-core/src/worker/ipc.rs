//! User messages between the processes of a cluster, from worker code (Node's `process.send`,
//! `process.on('message')`, plus what Node lacks: request/reply and shared counters).
//!
//! Messages are any `Serialize` value (a plain `&str` works as in Node) and arrive as JSON
//! values. Messages from one sender keep their order. Sending never drops a message silently.
//! A worker may send [`INBOX_WINDOW`] messages and requests ahead of the master's
//! inbox reader (credit the master gives back as it takes them): past that, or with a full
//! send queue, [`send`] and [`broadcast`] (which never wait, as in Node) say
//! [`IpcError::Backpressure`] while [`send_wait`], [`broadcast_wait`] and [`request`] wait. An
//! inbox nobody reads is [`IpcError::InboxUnread`], an oversize message
//! [`IpcError::Channel`], an unknown or dead target an error; once the
//! master is gone every call fails at once with [`IpcError::MasterGone`].
//!
//! ```no_run
//! # async fn example() -> Result<(), clustered_core::IpcError> {
//! use clustered_core::ipc;
//!
//! ipc::send("count")?;                          // to the master
//! ipc::broadcast(serde_json::json!({"reload": "config"}))?; // to every worker
//! let total: u64 = ipc::request("total").await?; // the master's handler answers
//! let visits = ipc::counter("visits").add(1).await?; // cluster-wide, held by the master
//! # let _ = (total, visits);
//! # Ok(())
//! # }
//! ```
//!
//! On the master side, [`crate::ClusterControl::inbox`] receives messages and requests, and
//! [`crate::ClusterControl::broadcast`] / [`crate::WorkerHandle::send`] send to workers.

use std::sync::Arc;
use std::time::Duration;

use clustered_ipc::{CounterOp, Message, Outcome, Route, WireError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};

use crate::error::IpcError;

use crate::role::WorkerInfo;
use crate::worker::{Letter, Link, installed_link, mailbox};
pub use clustered_ipc::{INBOX_WINDOW, Peer};

/// How long [`request`], [`send_to`] and counter operations wait for the master by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn link() -> Result<&'static Arc<Link>, IpcError> {
    installed_link().ok_or(IpcError::NotAWorker)
}

fn user(to: Route, message: impl Serialize, seq: Option<u64>) -> Result<Message, IpcError> {
    Ok(Message::User {
        to,
        data: serde_json::to_value(message)?,
        seq,
    })
}

/// Says this worker has warmed up: [`crate::Worker::ready`], from anywhere in the worker.
pub async fn ready() -> Result<(), IpcError> {
    link()?.declare_ready().await
}

/// Sends `message` to the master's inbox, without waiting.
pub fn send(message: impl Serialize) -> Result<(), IpcError> {
    link()?.try_send_to_inbox(&user(Route::Master, message, None)?)
}

/// Sends `message` to every live worker (this one included) through the master, without
/// waiting; with a fleet (`CLUSTER_REDIS_URL`), to every worker of every master in its
/// namespace too, each once, in the order this worker sent them. While the fleet's Redis is
/// unreachable it fails at once with [`IpcError::FleetDown`] (nothing is sent).
pub fn broadcast(message: impl Serialize) -> Result<(), IpcError> {
    fleet_up()?;
    link()?.try_send(&user(Route::All, message, None)?)
}

/// Sends `message` to every live worker of this master only (this one included), without
/// waiting, whether or not the cluster is part of a fleet.
pub fn broadcast_local(message: impl Serialize) -> Result<(), IpcError> {
    link()?.try_send(&user(Route::AllLocal, message, None)?)
}

/// Fails when the master said its fleet's Redis is unreachable.
fn fleet_up() -> Result<(), IpcError> {
    match mailbox().fleet_down() {
        true => Err(IpcError::FleetDown),
        false => Ok(()),
    }
}

/// [`send`], waiting for credit and for room in the send queue instead of failing: a worker
/// sends at most [`INBOX_WINDOW`] messages ahead of the master's inbox reader,
/// so every message it sends is taken.
pub async fn send_wait(message: impl Serialize) -> Result<(), IpcError> {
    link()?
        .send_to_inbox(&user(Route::Master, message, None)?)
        .await
}

/// [`broadcast`], waiting for room in the send queue instead of failing when it is full.
pub async fn broadcast_wait(message: impl Serialize) -> Result<(), IpcError> {
    fleet_up()?;
    link()?.send(&user(Route::All, message, None)?).await
}

/// Sends `message` to the worker in slot `worker`, waiting for the master's receipt: an
/// unknown or dead worker is an error.
pub async fn send_to(worker: usize, message: impl Serialize) -> Result<(), IpcError> {
    let data = serde_json::to_value(message)?;
    let make = |seq| Message::User {
        to: Route::Worker(worker),
        data,
        seq: Some(seq),
    };
    ask::<serde_json::Value>(make, DEFAULT_TIMEOUT, Spends::Nothing)
        .await
        .map(drop)
}

/// Asks the master's request handler and waits up to [`DEFAULT_TIMEOUT`] for its answer.
pub async fn request<T: DeserializeOwned>(message: impl Serialize) -> Result<T, IpcError> {
    request_timeout(message, DEFAULT_TIMEOUT).await
}

/// [`request`] with its own timeout.
pub async fn request_timeout<T: DeserializeOwned>(
    message: impl Serialize,
    timeout: Duration,
) -> Result<T, IpcError> {
    let frame = |seq, data| Message::Request { seq, data };
    request_with(message, timeout, frame, Spends::InboxCredit).await
}

/// A request whose frame `frame` makes from a fresh `seq` and `message`, answered within
/// `timeout`: [`request_timeout`]'s and [`crate::agent::request_timeout`]'s.
pub(crate) async fn request_with<T: DeserializeOwned>(
    message: impl Serialize,
    timeout: Duration,
    frame: fn(u64, serde_json::Value) -> Message,
    spends: Spends,
) -> Result<T, IpcError> {
    let data = serde_json::to_value(message)?;
    ask(|seq| frame(seq, data), timeout, spends).await
}

/// Whether a request goes to the master's inbox, and so spends a credit for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spends {
    /// It goes to the master's inbox: it waits for credit first (within its timeout).
    InboxCredit,
    /// The master answers or relays it itself.
    Nothing,
}

/// Sends the message `make` builds with a fresh `seq` and waits up to `timeout` in all (for
/// inbox credit first, when it `spends` one) for the reply's value, as a `T`.
pub(crate) async fn ask<T: DeserializeOwned>(
    make: impl FnOnce(u64) -> Message,
    timeout: Duration,
    spends: Spends,
) -> Result<T, IpcError> {
    let link = link()?;
    let started = tokio::time::Instant::now();
    let credit = match spends {
        Spends::Nothing => None,
        Spends::InboxCredit => Some(
            tokio::time::timeout(timeout, link.inbox_credit())
                .await
                .map_err(|_| IpcError::Timeout {
                    what: "request",
                    after: timeout,
                })??,
        ),
    };
    let left = timeout.saturating_sub(started.elapsed());
    let reply = link
        .call(make, left, credit)
        .await
        .map_err(|error| match error {
            IpcError::Timeout { what, .. } => IpcError::Timeout {
                what,
                after: timeout,
            },
            other => other,
        })?;
    value_of(reply.message)
}

/// The value of a reply, as a `T`, or the master's error.
fn value_of<T: DeserializeOwned>(reply: Message) -> Result<T, IpcError> {
    Ok(serde_json::from_value(answer(reply)?)?)
}

/// The value of a request's reply, or the master's error.
fn answer(reply: Message) -> Result<serde_json::Value, IpcError> {
    match reply {
        Message::Reply {
            outcome: Outcome::Ok(value),
            ..
        } => Ok(value),
        Message::Reply {
            outcome: Outcome::Error(reason),
            ..
        } => Err(IpcError::Remote(reason)),
        other => Err(IpcError::Channel(WireError::InvalidMessage {
            kind: other.kind().into(),
            reason: "the master answered a request with it".into(),
        })),
    }
}

/// A message delivered to this worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// Who sent it: the master, or a worker's slot.
    pub from: Peer,
    /// The message.
    pub data: serde_json::Value,
}

impl Delivered {
    /// The message as a `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, IpcError> {
        Ok(T::deserialize(&self.data)?)
    }
}

/// The messages delivered to this worker, in order per sender.
#[derive(Debug)]
pub struct Messages {
    receiver: mpsc::Receiver<Letter>,
}

impl Messages {
    /// The next message; `None` once the worker has left the cluster.
    pub async fn recv(&mut self) -> Option<Delivered> {
        let (from, data) = self.receiver.recv().await?;
        Some(Delivered { from, data })
    }
}

/// The stream of messages delivered to this worker; it may be taken before the worker has
/// joined the master. There is one per worker: a second call is [`IpcError::AlreadyTaken`], and
/// in a process that is not a worker it is [`IpcError::NotAWorker`]. Until it is taken, up to
/// 1024 messages wait; past that, with nobody reading, new ones are dropped with a warning.
pub fn messages() -> Result<Messages, IpcError> {
    WorkerInfo::current().ok_or(IpcError::NotAWorker)?;
    let receiver = mailbox().take_messages().ok_or(IpcError::AlreadyTaken(
        "this worker's messages (ipc::messages)",
    ))?;
    Ok(Messages { receiver })
}

/// A cluster-wide counter held by the master: exact across workers, and it survives worker
/// restarts.
#[derive(Debug, Clone)]
pub struct Counter {
    name: String,
}

/// The counter called `name`.
pub fn counter(name: impl Into<String>) -> Counter {
    Counter { name: name.into() }
}

impl Counter {
    /// Adds `by` (may be negative) and returns the new value.
    pub async fn add(&self, by: i64) -> Result<i64, IpcError> {
        self.apply(CounterOp::Add(by)).await
    }

    /// The current value (0 for a counter never touched).
    pub async fn get(&self) -> Result<i64, IpcError> {
        self.apply(CounterOp::Get).await
    }

    /// Follows this counter: the master pushes its changes to this worker (coalesced, at most
    /// every 50 ms, always ending with the latest value).
    pub async fn subscribe(&self) -> Result<CounterWatch, IpcError> {
        let receiver = mailbox().follow(&self.name);
        let value = self.apply(CounterOp::Subscribe).await?;
        mailbox().counter_changed(&self.name, value);
        Ok(CounterWatch { receiver })
    }

    async fn apply(&self, op: CounterOp) -> Result<i64, IpcError> {
        let name = self.name.clone();
        ask(
            |seq| Message::Counter { seq, name, op },
            DEFAULT_TIMEOUT,
            Spends::Nothing,
        )
        .await
    }
}

/// A counter this worker follows ([`Counter::subscribe`]).
#[derive(Debug, Clone)]
pub struct CounterWatch {
    receiver: watch::Receiver<i64>,
}

impl CounterWatch {
    /// The latest value the master pushed.
    pub fn value(&self) -> i64 {
        *self.receiver.borrow()
    }

    /// Waits for the next pushed change and returns it; `None` once this worker has left.
    pub async fn changed(&mut self) -> Option<i64> {
        self.receiver.changed().await.ok()?;
        Some(*self.receiver.borrow_and_update())
    }
}
