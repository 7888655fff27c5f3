//! [`Action`]: what the machine asks the driver to do, and the [`Notice`]s it publishes.

use clustered_ipc::ListenAddr;
use std::time::Duration;

use clustered_ipc::{ListenKey, Message};

use super::conn::Conn;
use super::input::ReplyId;
use crate::Error;
use crate::master::command::Answer;
use crate::master::handle::{ReportedLoad, WorkerStatus};
use crate::master::ids::{ConnId, WorkerKey};
use crate::master::process_exit::ExitReason;

/// One thing for the driver to do, in order.
#[derive(Debug)]
pub(crate) enum Action {
    /// Bind `address` once for the cluster; answer with [`Input::Bound`](super::input::Input::Bound).
    Bind { address: String },
    /// Start a worker process for `slot`; answer with [`Input::Spawned`](super::input::Input::Spawned) or
    /// [`Input::SpawnFailed`](super::input::Input::SpawnFailed).
    Spawn { worker: WorkerKey, slot: usize },
    /// Send `newConn {seq}` with a copy of the connection's descriptor; the master keeps its
    /// own until [`Action::CloseConn`]. If it cannot be queued, answer with
    /// [`Input::HandoffFailed`](super::input::Input::HandoffFailed).
    HandOff {
        worker: WorkerKey,
        seq: u64,
        conn: Conn,
    },
    /// Send a control frame or a reply, never dropped (it waits when the queue is full), with
    /// a copy of the listening socket of `share` when set (the `shared` policy: `message` is
    /// then a `serverAck`; if the copy cannot be made, nothing is sent, and the driver answers
    /// with [`Input::ShareFailed`](super::input::Input::ShareFailed)).
    Send {
        worker: WorkerKey,
        message: Message,
        share: Option<ListenKey>,
    },
    /// Queue a user message for the worker, in order behind the ones before it; with a
    /// `receipt` (the sending worker and its `seq`), answer it: delivered, or dropped because
    /// the worker does not keep up with its messages.
    Deliver {
        worker: WorkerKey,
        message: Message,
        receipt: Option<(WorkerKey, u64)>,
    },
    /// Close the master's copy of a connection (acknowledged by a worker, or abandoned).
    CloseConn(ConnId),
    /// SIGKILL the worker process.
    Kill { worker: WorkerKey },
    /// Stop accepting and close the listening sockets; answer with
    /// [`Input::ListenersClosed`](super::input::Input::ListenersClosed) once every connection accepted before is reported.
    CloseListeners,
    /// Tell user code (events, the ready hook).
    Notify(Notice),
    /// The worker's handle says `status` from now on (`clusterctl ls`); given before any
    /// notice about it.
    WorkerStatus {
        worker: WorkerKey,
        status: WorkerStatus,
    },
    /// What the worker's last heartbeat said, for its handle (`clusterctl ls`, `/metrics`),
    /// which shows it for a worker without a region (one with a region has its handle read
    /// the load there, live) and once the worker is dead.
    WorkerLoad {
        worker: WorkerKey,
        load: ReportedLoad,
    },
    /// The worker's IPC channel closed: its handle says it is not connected.
    WorkerDisconnected { worker: WorkerKey },
    /// The worker was asked to stop: its handle says it exits after disconnect.
    ExitIntended { worker: WorkerKey },
    /// The worker process exited: what its metrics region counted is kept for good. Given
    /// first, before anything can scrape it as gone or hear of its exit.
    RetireMetrics { worker: WorkerKey },
    /// The worker process exited: it leaves the registry's live workers, and its slot's last
    /// exit is `reason`. Given before its exit notice.
    WorkerGone {
        worker: WorkerKey,
        slot: usize,
        reason: ExitReason,
    },
    /// The driver drops its ends towards the worker (its exit was told).
    Unlink { worker: WorkerKey },
    /// A worker of `slot` died on its own and is restarted: its slot's restarts count one
    /// more. Given before the restart notice.
    SlotRestarted { slot: usize },
    /// Tell the caller waiting on `reply` what became of its command.
    Answer { reply: ReplyId, answer: Answer },
    /// `queued` accepted connections wait for a worker with room now (given when it changes).
    Backlog { queued: usize },
    /// Whether the cluster takes traffic, for `/readyz` (given when it changes): `Ok` while a
    /// worker serves every address and no stop has begun, else why not.
    Readiness(Result<(), &'static str>),
    /// The cluster-wide counter `name` now has `value` (for [`crate::ClusterControl::counter`]).
    PublishCounter { name: String, value: i64 },
    /// Start the new master of an upgrade; answer with
    /// [`Input::NewMasterServing`](super::input::Input::NewMasterServing) or
    /// [`Input::UpgradeFailed`](super::input::Input::UpgradeFailed).
    StartUpgrade,
    /// Kill the new master of an upgrade that failed.
    AbortUpgrade,
    /// Hand this master's state (these counters, and what the driver keeps: restarts,
    /// metrics) to the new master, which serves the control and admin sockets from now on.
    HandOver {
        counters: std::collections::BTreeMap<String, i64>,
    },
    /// Give a worker's counter operation to the new master; answer with
    /// [`Input::ForwardedCounter`](super::input::Input::ForwardedCounter).
    ForwardCounter {
        worker: WorkerKey,
        seq: u64,
        name: String,
        op: clustered_ipc::CounterOp,
    },
    /// Answer the old master's forwarded counter operation `id`.
    AnswerForeign {
        id: u64,
        outcome: clustered_ipc::Outcome,
    },
    /// Something for the fleet's Redis (driver/fleet.rs), done in a task of its own.
    Fleet(FleetAction),
    /// The master is done: return this.
    Finish(Result<(), Error>),
}

/// What the machine asks of the fleet's Redis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FleetAction {
    /// Broadcast `data` to the other masters (after the ones before it).
    Publish { data: serde_json::Value },
    /// Apply a worker's counter operation in Redis; answer with
    /// [`FleetInput::Reply`](super::input::FleetInput::Reply).
    Counter {
        worker: WorkerKey,
        seq: u64,
        name: String,
        op: clustered_ipc::CounterOp,
    },
    /// A worker's request for the agent, which runs under the master holding the fleet's
    /// lease: sent to that master; answer with `FleetInput::Reply`.
    AgentRequest {
        worker: WorkerKey,
        seq: u64,
        data: serde_json::Value,
    },
    /// The agent's answer to another master's request `id`, sent back to it.
    AgentAnswer {
        master: String,
        id: u64,
        outcome: clustered_ipc::Outcome,
    },
}

/// What user code hears of, by worker key (the driver turns it into a
/// [`crate::ClusterEvent`] with the worker's handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    /// A worker process was started.
    Fork(WorkerKey),
    /// A worker joined the master.
    Online(WorkerKey),
    /// A worker takes connections for `address`.
    Listening(WorkerKey, ListenAddr),
    /// A worker was asked to stop.
    Disconnect(WorkerKey),
    /// A worker process exited.
    Exit {
        worker: WorkerKey,
        code: Option<i32>,
        signal: Option<i32>,
        exited_after_disconnect: bool,
        reason: ExitReason,
    },
    /// A slot is restarted after `delay`.
    Restarting { slot: usize, delay: Duration },
    /// A rolling reload began.
    ReloadStarted,
    /// One slot was reloaded.
    Reloaded {
        slot: usize,
        old_pid: u32,
        new_pid: u32,
    },
    /// The rolling reload finished.
    ReloadFinished,
    /// The agent joined (and said it is ready): the workers start, the first time.
    AgentReady(WorkerKey),
    /// A worker past a limit is being replaced (its replacement starts; it drains once the
    /// replacement listens).
    Recycling {
        worker: WorkerKey,
        reason: ExitReason,
    },
    /// The rolling reload stopped; the old workers keep serving.
    ReloadFailed { slot: usize, reason: String },
    /// Graceful shutdown began.
    ShutdownStarted,
    /// The worker count changed.
    Scaled { from: usize, to: usize },
    /// Every worker listens on every address: run the ready hook, once.
    Ready(Vec<ListenAddr>),
    /// An upgrade's new master (pid `to`) took over; this master drains and exits.
    HandedOver { to: u32 },
}
