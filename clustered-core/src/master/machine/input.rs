//! [`Input`]: everything that can happen to the master, as the driver reports it.

use clustered_ipc::ListenAddr;
use std::io;

use clustered_ipc::{ListenKey, Message, WireError};

use super::conn::Conn;
use crate::Error;
use crate::handoff_acks::LoadReport;
use crate::master::command::{Command, Scale};
use crate::master::ids::WorkerKey;
use crate::master::process_exit::ProcessExit;

/// One thing that happened. The driver hands each to `Machine::handle` with the time.
#[derive(Debug)]
pub(crate) enum Input {
    /// The driver is up: bind the configured addresses, then start the workers.
    Start,
    /// The driver tried to bind `address` (asked by `Action::Bind`).
    Bound {
        address: String,
        result: io::Result<ListenAddr>,
    },
    /// A worker process was started (asked by `Action::Spawn`).
    Spawned { worker: WorkerKey, pid: u32 },
    /// A worker process could not be started.
    SpawnFailed { worker: WorkerKey, error: Error },
    /// A listener accepted connections; the driver holds their descriptors.
    Connections(Vec<Conn>),
    /// A handoff could not even be queued for the worker (its send queue is full or closed);
    /// the connection is still the master's.
    HandoffFailed { worker: WorkerKey, seq: u64 },
    /// The worker recorded handoff `seq` as taken in its acknowledgement ring (the driver
    /// reads the rings before each input): as an `accepted` frame saying it took it.
    Taken { worker: WorkerKey, seq: u64 },
    /// The worker counted a heartbeat in its region since the driver last looked (the
    /// driver reads the counts before each input), its load as the region says it now: as a
    /// heartbeat frame.
    Beat { worker: WorkerKey, load: LoadReport },
    /// The listening socket of `key` could not be copied for the worker's `serverAck {seq}`
    /// (the `shared` policy): nothing was sent.
    ShareFailed {
        worker: WorkerKey,
        seq: u64,
        key: ListenKey,
        error: io::Error,
    },
    /// A worker sent a message (any descriptors with it were closed by the driver).
    Message { worker: WorkerKey, message: Message },
    /// A worker's IPC channel closed: cleanly (`None`) or because of an error.
    ChannelClosed {
        worker: WorkerKey,
        error: Option<WireError>,
    },
    /// A worker process exited and was reaped.
    Exited {
        worker: WorkerKey,
        exit: ProcessExit,
    },
    /// User code asked for something; answered with `Action::Answer` to `reply`, when given.
    Command {
        command: Command,
        reply: Option<ReplyId>,
    },
    /// A signal arrived.
    Signal(SignalAction),
    /// The time `Machine::poll_timeout` named has come: every
    /// timer due by now expires.
    Timeout,
    /// The listening sockets are closed (asked by `Action::CloseListeners`) and every
    /// connection accepted before has been reported.
    ListenersClosed,
    /// The new master an upgrade started failed (it could not start, exited, refused the
    /// handover); why.
    UpgradeFailed { reason: String },
    /// Every worker of the new master serves.
    NewMasterServing { old_pid: u32, new_pid: u32 },
    /// The new master's answer to a counter operation forwarded to it.
    ForwardedCounter {
        worker: WorkerKey,
        seq: u64,
        outcome: clustered_ipc::Outcome,
    },
    /// A master an upgrade started: its predecessor's counters (none when its state could
    /// not be had).
    Adopt {
        counters: std::collections::BTreeMap<String, i64>,
    },
    /// A master an upgrade started: a counter operation of a draining worker of its
    /// predecessor.
    ForeignCounter {
        id: u64,
        name: String,
        op: clustered_ipc::CounterOp,
    },
    /// What the fleet's Redis (driver/fleet.rs) says.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Fleet(FleetInput),
}

/// What the fleet's Redis says, as the driver's fleet task reports it.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[derive(Debug)]
pub(crate) enum FleetInput {
    /// Redis became reachable (and subscribed to) or not.
    Up(bool),
    /// Another master of the fleet broadcast `data`.
    Message { data: serde_json::Value },
    /// The answer to a worker's counter operation (a `FleetAction::Counter`).
    Reply {
        worker: WorkerKey,
        seq: u64,
        outcome: clustered_ipc::Outcome,
    },
    /// A fleet-wide counter changed (anywhere in the fleet).
    CounterValue { name: String, value: i64 },
    /// This master holds the fleet's lease, with this fencing token (`None`: not any more).
    Lease(Option<u64>),
    /// Another master (`master`, its fleet id) asks the agent, which runs here.
    AgentAsk {
        master: String,
        id: u64,
        data: serde_json::Value,
    },
}

/// Where the answer to one command goes (the driver's number for its waiting caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ReplyId(pub(crate) u64);

/// What a received signal asks of the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignalAction {
    /// SIGTERM or SIGINT: stop gracefully (a second one stops at once).
    Stop(&'static str),
    /// SIGHUP: rolling reload.
    Reload(&'static str),
    /// SIGUSR2: upgrade the master itself (nginx's and Gunicorn's signal).
    Upgrade(&'static str),
    /// SIGTTIN or SIGTTOU: one worker more or fewer (Gunicorn's).
    Scale(&'static str, Scale),
}

/// Something the master waits for, armed by the machine itself (see `timers.rs`). A timer is
/// never cancelled: when it expires the machine checks whether it still matters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer {
    /// A slot's restart backoff has passed.
    RestartDue { slot: usize },
    /// A busy worker has rested.
    Rested { worker: WorkerKey },
    /// A disconnected worker's time to finish has run out.
    DisconnectTimeout { worker: WorkerKey },
    /// A reload's replacement must be listening by now.
    ReloadDeadline { worker: WorkerKey },
    /// Time to look for silent workers.
    Liveness,
    /// A worker must be listening by now.
    BootDeadline { worker: WorkerKey },
    /// Time to push changed counters to their subscribers.
    PushCounters,
    /// The stop has waited long enough for the workers to be reaped.
    ShutdownDeadline,
    /// The new master of upgrade `attempt` must serve by now.
    UpgradeDeadline { attempt: u64 },
    /// Time to look at the workers' served counts again (max-requests; the driver reads the
    /// regions before every input, this one included).
    ServedLook,
    /// The workers told to load their certificates again (`reloadCertificates` `id`) must
    /// have answered by now.
    CertificatesDeadline { id: u64 },
}
