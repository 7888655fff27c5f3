//! The messages master and workers exchange (modelled on Node's `NODE_CLUSTER` messages).
//!
//! On the wire each message is one JSON object tagged by `kind` (but `newConn`, `newConns` and
//! `accepted`, which are binary); see [`crate::codec`] for the framing. A frame that carries descriptors also says how many (`"fds": n`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

pub use crate::listen_key::{ListenAddr, ListenKey, ListenMode};
pub use crate::ticket_keys::{TicketKey, TicketKeys};

/// How often a worker sends a `heartbeat` at the least (it also sends one when its load
/// changes). A worker the master has not heard from for two periods is suspect. Every 2 s: an
/// idle worker wakes once every 2 s, its master once per worker.
pub const HEARTBEAT_PERIOD: std::time::Duration = std::time::Duration::from_secs(2);

/// Messages and requests for the master's inbox a worker may have sent and not yet had
/// accounted for by an [`Message::InboxCredit`]. A worker starts with this much credit, spends
/// one per message or request for the inbox (it waits, or hears it is busy, when it has none)
/// and gets it back as the master takes them out of the inbox; so the master never holds more
/// than this many of one worker's, and refuses nothing a worker sends within its credit.
pub const INBOX_WINDOW: u32 = 1024;

/// The protocol version a worker announces in [`Message::Online`]; a master refuses workers of
/// another version with a clear error rather than misreading their frames. Version 2: a
/// `sendmsg` carries the descriptors of one frame at most, and a refused handoff says whether
/// the worker is draining. Version 3: `newConn` and `accepted` travel in a compact binary
/// layout. Version 4: `ready`, the agent's `agentRequest`/`agentAsk`/`agentAnswer`, a
/// heartbeat's `rss` and a `serverAck`'s `wait_ready` (so a worker of an older build, started
/// by watch mode under this master, is refused by name rather than cut off mid-protocol).
/// Version 5: `stopping`, and credit for the master's inbox (`inboxCredit` instead of
/// `throttle`). Version 6: a `serverAck` says how connections arrive (`mode`) rather than the
/// master's policy. Version 7: a `serverAck`'s `address` is a TCP address or a Unix socket's
/// path. Version 8: `ticketKeys` and `reloadCertificates`. Version 9: `reloadCertificates` carries
/// an `id` that the worker's `certificatesReloaded` answers. Version 10: `fleetStatus`; and a
/// worker with a metrics region records there the handoffs it takes, instead of sending
/// `accepted` frames. Version 11: `newConns`, several connections with their descriptors in one
/// frame. Version 12: a worker with a metrics region says every heartbeat there, its load
/// included, and sends no `heartbeat` frame.
pub const PROTOCOL_VERSION: u32 = 12;

/// One connection of a [`Message::NewConns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// Matches the [`Message::Accepted`] acknowledgement.
    pub seq: u64,
    /// The client's address, when known.
    pub peer: Option<SocketAddr>,
}

/// Where a user message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Route {
    /// The master's inbox.
    Master,
    /// The worker in this slot.
    Worker(usize),
    /// Every live worker (the sender included), and with a fleet (Redis) every worker of
    /// every other master in its namespace.
    All,
    /// Every live worker of this master only (the sender included).
    AllLocal,
}

/// Who sent a delivered user message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Peer {
    /// The master.
    Master,
    /// The worker in this slot.
    Worker(usize),
    /// A worker or the master code of another master of the fleet (Redis).
    Fleet,
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
    /// Master → worker: the address is bound; connections will arrive by `mode`.
    ServerAck {
        /// The `seq` of the [`Message::QueryServer`] answered.
        seq: u64,
        /// The key under which connections will be delivered.
        key: ListenKey,
        /// How connections will arrive.
        mode: ListenMode,
        /// The socket actually bound (with the real port when port 0 was asked for).
        address: ListenAddr,
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
    /// Master → worker, with one descriptor per connection in the order of `conns`:
    /// connections accepted by the master on one listener and handed over together (under a
    /// burst, one `sendmsg` for several). When the worker ran out of descriptor numbers the
    /// kernel delivered the first ones only: the worker refuses exactly the connections whose
    /// descriptors did not arrive, each as it would refuse a [`Message::NewConn`].
    NewConns {
        /// Which listener accepted them.
        key: ListenKey,
        /// The connections, one per descriptor (at most [`crate::MAX_FDS_PER_SEND`]).
        conns: Vec<Handoff>,
    },
    /// Worker → master: handoff `seq` is done (`ok`), or refused (the master gives the
    /// connection to another worker). Sent before the worker reads from the connection. A
    /// worker whose master gave it a metrics region says `ok` in the region's acknowledgement
    /// words instead (no frame, so the master is not woken for it), and sends this frame
    /// only to refuse.
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
    /// Worker → master: this worker drains of its own accord (it received SIGTERM: from
    /// `clusterctl kill`, or sent by hand). The master routes nothing more to it and starts its
    /// successor at once; its exit is not a crash.
    Stopping,
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
    /// so a blocked event loop stops it. Only by a worker without a metrics region: one with
    /// a region says the same there.
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
    /// Master → worker: `granted` of this worker's messages and requests for the inbox have
    /// left it (master code took them, or the master refused them: `refused` of them): that much
    /// credit again (see [`INBOX_WINDOW`]). Sent in batches, at once when the worker's lane of
    /// the inbox empties, and with `granted: 0` whenever `open` changes (when the worker joins,
    /// too).
    InboxCredit {
        /// Credit given back.
        granted: u32,
        /// Whether master code reads the inbox; while it does not, messages for it are refused,
        /// and the worker fails them at once.
        open: bool,
        /// Of `granted`, how many messages were refused rather than taken (lost: the worker
        /// says so).
        #[serde(default, skip_serializing_if = "is_zero")]
        refused: u32,
    },
    /// Master → worker: the TLS session-ticket keys, when the worker joins and at every
    /// rotation (they never leave the master's IPC sockets).
    TicketKeys {
        /// The keys in use.
        keys: TicketKeys,
    },
    /// Master → worker: load the TLS certificate again from its files (`clusterctl tls
    /// reload`); new handshakes get it, the ticket keys stay. Answered by
    /// [`Message::CertificatesReloaded`].
    ReloadCertificates {
        /// Matches the answer.
        id: u64,
    },
    /// Worker → master: how [`Message::ReloadCertificates`] `id` went. A worker that serves no
    /// TLS answers `loaded: 0` and no errors.
    CertificatesReloaded {
        /// The `id` answered.
        id: u64,
        /// How many of this worker's TLS servers load the new certificate now.
        loaded: u32,
        /// Why the others kept the one before, a line each (naming the file).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        errors: Vec<String>,
    },
    /// Master → worker: whether the fleet's Redis is reachable (sent when it changes and when
    /// the worker comes online, by a master with a fleet only); while it is not, a fleet
    /// broadcast fails at once in the worker.
    FleetStatus {
        /// Reachable.
        up: bool,
    },
    /// Master → worker: the new value of a counter this worker subscribed to.
    CounterValue {
        /// The counter's name.
        name: String,
        /// Its value.
        value: i64,
    },
    /// Worker → master: a request for the agent; answered by a [`Message::Reply`] with the
    /// agent's answer, or at once with an error when no agent is running.
    AgentRequest {
        /// Matches the reply.
        seq: u64,
        /// The request.
        data: serde_json::Value,
    },
    /// Master → agent: a worker's request, to answer with [`Message::AgentAnswer`].
    AgentAsk {
        /// Matches the answer (the master's number, not the worker's `seq`).
        id: u64,
        /// The asking worker's slot.
        from: usize,
        /// The request.
        data: serde_json::Value,
    },
    /// Agent → master: the answer to [`Message::AgentAsk`] `id`, relayed to the worker.
    AgentAnswer {
        /// The `id` answered.
        id: u64,
        /// The answer.
        outcome: Outcome,
    },
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &u32) -> bool {
    *value == 0
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
        "newConns",
        "accepted",
        "disconnect",
        "stopping",
        "user",
        "deliver",
        "request",
        "reply",
        "counter",
        "counterValue",
        "fleetStatus",
        "ticketKeys",
        "reloadCertificates",
        "certificatesReloaded",
        "heartbeat",
        "inboxCredit",
        "ready",
        "agentRequest",
        "agentAsk",
        "agentAnswer",
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
                | Message::AgentRequest { .. }
                | Message::AgentAsk { .. }
                | Message::AgentAnswer { .. }
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
            Message::NewConns { .. } => "newConns",
            Message::Accepted { .. } => "accepted",
            Message::Disconnect => "disconnect",
            Message::Stopping => "stopping",
            Message::User { .. } => "user",
            Message::Deliver { .. } => "deliver",
            Message::Request { .. } => "request",
            Message::Reply { .. } => "reply",
            Message::Counter { .. } => "counter",
            Message::CounterValue { .. } => "counterValue",
            Message::FleetStatus { .. } => "fleetStatus",
            Message::TicketKeys { .. } => "ticketKeys",
            Message::ReloadCertificates { .. } => "reloadCertificates",
            Message::CertificatesReloaded { .. } => "certificatesReloaded",
            Message::Heartbeat { .. } => "heartbeat",
            Message::InboxCredit { .. } => "inboxCredit",
            Message::AgentRequest { .. } => "agentRequest",
            Message::AgentAsk { .. } => "agentAsk",
            Message::AgentAnswer { .. } => "agentAnswer",
        }
    }
}
