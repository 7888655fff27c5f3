//! The messages master and workers exchange (modelled on Node's `NODE_CLUSTER` messages).
//!
//! On the wire each message is one JSON object tagged by `kind` (but `newConn` and `accepted`,
//! which are binary); see [`crate::codec`] for the framing. A frame that carries descriptors also says how many (`"fds": n`).

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// How often a worker sends a `heartbeat` at the least (it also sends one when its load
/// changes). A worker the master has not heard from for two periods is suspect. Every 2 s, so
/// an idle worker wakes about once a second (tokio's timer wheel reaches a deadline this far
/// off in two or three steps).
pub const HEARTBEAT_PERIOD: std::time::Duration = std::time::Duration::from_secs(2);

/// The protocol version a worker announces in [`Message::Online`]; a master refuses workers of
/// another version with a clear error rather than misreading their frames. Version 2: a
/// `sendmsg` carries the descriptors of one frame at most, and a refused handoff says whether
/// the worker is draining. Version 3: `newConn` and `accepted` travel in a compact binary
/// layout.
pub const PROTOCOL_VERSION: u32 = 3;

/// Names one listening address across the cluster: the address as the worker asked for it.
///
/// ```
/// use cluster_ipc::ListenKey;
/// let key = ListenKey::from("127.0.0.1:3000");
/// assert_eq!(key.as_str(), "127.0.0.1:3000");
/// ```
///
/// Cloning one is cheap (a shared string): the master copies the key into every handoff.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ListenKey(Arc<str>);

impl ListenKey {
    /// The address text this key stands for.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ListenKey {
    fn from(address: &str) -> Self {
        ListenKey(Arc::from(address))
    }
}

impl From<String> for ListenKey {
    fn from(address: String) -> Self {
        ListenKey(Arc::from(address))
    }
}

impl std::fmt::Display for ListenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How connections for a listen key reach the workers (`CLUSTER_SCHED_POLICY`).
///
/// ```
/// use cluster_ipc::Policy;
/// assert_eq!("sticky".parse::<Policy>(), Ok(Policy::Sticky));
/// assert!("fifo".parse::<Policy>().unwrap_err().contains("rr, sticky"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// The master accepts and hands each connection to the next worker in turn (pipelined).
    Rr,
    /// The master accepts and hands each connection to a worker chosen by the client's IP,
    /// so a client keeps reaching the same worker while it lives.
    Sticky,
    /// The master sends the listening socket itself; workers accept (Node's `SCHED_NONE`).
    Shared,
    /// Each worker binds its own socket with `SO_REUSEPORT`; the kernel balances.
    Reuseport,
    /// The master accepts and hands each connection to the worker with the fewest open
    /// connections and in-flight requests (from the workers' heartbeats).
    Least,
}

impl Policy {
    /// Every policy, by the name `CLUSTER_SCHED_POLICY` takes.
    pub const ALL: &'static [(&'static str, Policy)] = &[
        ("rr", Policy::Rr),
        ("sticky", Policy::Sticky),
        ("shared", Policy::Shared),
        ("reuseport", Policy::Reuseport),
        ("least", Policy::Least),
    ];

    /// Whether the master accepts connections and hands them over (else workers accept).
    pub fn master_accepts(self) -> bool {
        matches!(self, Policy::Rr | Policy::Sticky | Policy::Least)
    }
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(name: &str) -> Result<Policy, String> {
        Policy::ALL
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name.trim()))
            .map(|(_, policy)| *policy)
            .ok_or_else(|| {
                let names: Vec<&str> = Policy::ALL.iter().map(|(known, _)| *known).collect();
                format!(
                    "unknown policy `{name}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Where a user message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Route {
    /// The master's inbox.
    Master,
    /// The worker in this slot.
    Worker(usize),
    /// Every live worker (the sender included).
    All,
}

/// Who sent a delivered user message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Peer {
    /// The master.
    Master,
    /// The worker in this slot.
    Worker(usize),
}

/// The answer to a request: a value, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The answer.
    Ok(serde_json::Value),
    /// Why the request failed, in one line.
    Error(String),
}

/// An operation on a counter held by the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CounterOp {
    /// Add this (possibly negative) amount; answers the new value.
    Add(i64),
    /// Answers the current value.
    Get,
    /// Answers the current value and pushes later changes to this worker
    /// ([`Message::CounterValue`]), coalesced.
    Subscribe,
}

/// One protocol message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Message {
    /// Worker → master: the worker has joined.
    Online {
        /// The worker's [`PROTOCOL_VERSION`].
        version: u32,
        /// The worker's process id.
        pid: u32,
    },
    /// Worker → master: "I want to listen on `address`".
    QueryServer {
        /// Matches the reply to the request.
        seq: u64,
        /// The address as the user wrote it, e.g. `127.0.0.1:3000`.
        address: String,
    },
    /// Master → worker: the address is bound; connections will arrive by `policy`.
    ServerAck {
        /// The `seq` of the [`Message::QueryServer`] answered.
        seq: u64,
        /// The key under which connections will be delivered.
        key: ListenKey,
        /// How connections will arrive.
        policy: Policy,
        /// The address actually bound (with the real port when port 0 was asked for).
        address: SocketAddr,
        /// The master routes to a worker only once it has sent [`Message::Ready`] (and under
        /// `shared`/`reuseport` the worker accepts only from then on).
        #[serde(default)]
        wait_ready: bool,
    },
    /// Master → worker: the address could not be served.
    ServerError {
        /// The `seq` of the [`Message::QueryServer`] answered.
        seq: u64,
        /// Why, in one line.
        message: String,
    },
    /// Worker → master: ready to take connections on `key`; only now does the master route to it.
    Listening {
        /// The key from [`Message::ServerAck`].
        key: ListenKey,
    },
    /// Worker → master: warmed up (PM2's `process.send('ready')`). When the master waits for
    /// readiness, it routes to a worker, and a reload moves on, only after this.
    Ready,
    /// Master → worker, with one descriptor: a connection accepted by the master.
    NewConn {
        /// Matches the [`Message::Accepted`] acknowledgement.
        seq: u64,
        /// Which listener accepted it.
        key: ListenKey,
        /// The client's address, when known.
        peer: Option<SocketAddr>,
    },
    /// Worker → master: handoff `seq` is done (`ok`), or refused (the master gives the
    /// connection to another worker). Sent before the worker reads from the connection.
    Accepted {
        /// The `seq` of the [`Message::NewConn`].
        seq: u64,
        /// `false` when the worker refused the connection.
        ok: bool,
        /// With a refusal: the worker is draining (or never listened on that key) and takes no
        /// more connections for it; without, it is only busy for now.
        #[serde(default, skip_serializing_if = "is_false")]
        draining: bool,
    },
    /// Master → worker: stop taking connections, finish in-flight requests, exit 0.
    Disconnect,
    /// Worker → master: a user message for `to`, relayed by the master. With a `seq`, the
    /// master answers with a [`Message::Reply`] once it is delivered (or cannot be).
    User {
        /// Where it goes.
        to: Route,
        /// The message.
        data: serde_json::Value,
        /// Asks for a delivery receipt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    },
    /// Master → worker: a user message.
    Deliver {
        /// Who sent it.
        from: Peer,
        /// The message.
        data: serde_json::Value,
    },
    /// Worker → master: a request for the master's handler; answered by [`Message::Reply`].
    Request {
        /// Matches the reply.
        seq: u64,
        /// The request.
        data: serde_json::Value,
    },
    /// Master → worker: the answer to request `seq` (a user request, a receipt, a counter).
    Reply {
        /// The `seq` answered.
        seq: u64,
        /// The answer.
        outcome: Outcome,
    },
    /// Worker → master: an operation on the cluster-wide counter `name`; answered by a
    /// [`Message::Reply`] with the value.
    Counter {
        /// Matches the reply.
        seq: u64,
        /// The counter's name.
        name: String,
        /// What to do.
        op: CounterOp,
    },
    /// Worker → master: this worker is alive, and its load; sent every [`HEARTBEAT_PERIOD`]
    /// and when the load changes (at most every 10 ms), from a task of the worker's runtime,
    /// so a blocked event loop stops it.
    Heartbeat {
        /// Open connections.
        conns: u64,
        /// Requests being handled.
        inflight: u64,
        /// Requests finished since the worker started.
        #[serde(default)]
        served: u64,
        /// The worker's resident memory in bytes, read at most once a second (0: unknown).
        #[serde(default)]
        rss: u64,
    },
    /// Master → worker: the master's inbox is full (`paused`) or has room again. A paused
    /// worker sends no message or request for the inbox until it is resumed.
    Throttle {
        /// Whether to hold messages for the inbox back.
        paused: bool,
    },
    /// Master → worker: the new value of a counter this worker subscribed to.
    CounterValue {
        /// The counter's name.
        name: String,
        /// Its value.
        value: i64,
    },
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Message {
    /// Every `kind` tag this version knows, to tell an unknown kind from a bad message.
    pub const KINDS: &'static [&'static str] = &[
        "online",
        "queryServer",
        "serverAck",
        "serverError",
        "listening",
        "newConn",
        "accepted",
        "disconnect",
        "user",
        "deliver",
        "request",
        "reply",
        "counter",
        "counterValue",
        "heartbeat",
        "throttle",
    ];

    /// Whether this is a control frame, which never waits behind user messages (see
    /// [`crate::Sender`]): everything but user messages, requests, their replies and counters.
    pub fn is_control(&self) -> bool {
        !matches!(
            self,
            Message::User { .. }
                | Message::Deliver { .. }
                | Message::Request { .. }
                | Message::Reply { .. }
                | Message::Counter { .. }
                | Message::CounterValue { .. }
        )
    }

    /// This message's `kind` tag, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Online { .. } => "online",
            Message::QueryServer { .. } => "queryServer",
            Message::ServerAck { .. } => "serverAck",
            Message::ServerError { .. } => "serverError",
            Message::Listening { .. } => "listening",
            Message::Ready => "ready",
            Message::NewConn { .. } => "newConn",
            Message::Accepted { .. } => "accepted",
            Message::Disconnect => "disconnect",
            Message::User { .. } => "user",
            Message::Deliver { .. } => "deliver",
            Message::Request { .. } => "request",
            Message::Reply { .. } => "reply",
            Message::Counter { .. } => "counter",
            Message::CounterValue { .. } => "counterValue",
            Message::Heartbeat { .. } => "heartbeat",
            Message::Throttle { .. } => "throttle",
        }
    }
}
