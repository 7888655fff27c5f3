//! [`ClusterControl`]: reload, stop and inspect a running cluster from user code.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cluster_ipc::CounterOp;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use super::inbox::{Inbox, Incoming};
use crate::Error;

use crate::sync::lock;

use super::event::WorkerKey;
use super::events::{ClusterEvent, EventStream};
use super::handle::WorkerHandle;

/// Events kept for slow readers.
const EVENT_CAPACITY: usize = 1024;
/// Messages and requests waiting in the master's inbox.
const INBOX_CAPACITY: usize = 4096;

/// Which workers a message from master code goes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    All,
    One(WorkerKey),
}

/// What user code asks of the master.
#[derive(Debug)]
pub(crate) enum Command {
    Reload,
    Shutdown,
    Disconnect(WorkerKey),
    Deliver { to: Target, data: serde_json::Value },
}

/// A handle on the cluster's master, from [`crate::Cluster::control`]: take it before
/// [`crate::Cluster::run`] and use it from another task. In a worker process it does nothing
/// (there is no master in this process).
///
/// ```no_run
/// # async fn example() -> Result<(), cluster_core::Error> {
/// use cluster_core::Cluster;
///
/// let cluster = Cluster::new();
/// let control = cluster.control();
/// let mut events = control.events();
/// tokio::spawn(async move {
///     while let Some(event) = events.recv().await {
///         println!("{event}");
///     }
/// });
/// # let worker_main = |_worker| async { Ok::<_, cluster_core::Error>(()) };
/// cluster.run(worker_main).await
/// # }
/// ```
#[derive(Clone)]
pub struct ClusterControl {
    shared: Arc<Shared>,
}

struct Shared {
    commands: mpsc::UnboundedSender<Command>,
    command_receiver: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    events: broadcast::Sender<ClusterEvent>,
    workers: Mutex<BTreeMap<WorkerKey, WorkerHandle>>,
    inbox: mpsc::Sender<Incoming>,
    inbox_receiver: Mutex<Option<mpsc::Receiver<Incoming>>>,
    inbox_taken: AtomicBool,
    counters: Mutex<HashMap<String, i64>>,
}

impl ClusterControl {
    pub(crate) fn new() -> Self {
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let (inbox, inbox_receiver) = mpsc::channel(INBOX_CAPACITY);
        Self {
            shared: Arc::new(Shared {
                commands,
                command_receiver: Mutex::new(Some(command_receiver)),
                events: broadcast::Sender::new(EVENT_CAPACITY),
                workers: Mutex::new(BTreeMap::new()),
                inbox,
                inbox_receiver: Mutex::new(Some(inbox_receiver)),
                inbox_taken: AtomicBool::new(false),
                counters: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts a rolling reload (as SIGHUP does). A request during a reload is coalesced into
    /// one more reload after it.
    pub fn reload(&self) {
        let _ = self.shared.commands.send(Command::Reload);
    }

    /// Starts a graceful shutdown (as SIGTERM does).
    pub fn shutdown(&self) {
        let _ = self.shared.commands.send(Command::Shutdown);
    }

    /// Every live worker, in slot order (during a reload a slot may have two, oldest first).
    pub fn workers(&self) -> Vec<WorkerHandle> {
        let mut workers: Vec<WorkerHandle> = lock(&self.shared.workers).values().cloned().collect();
        workers.sort_by_key(|worker| (worker.id(), worker.key()));
        workers
    }

    /// A stream of every event from now on.
    pub fn events(&self) -> EventStream {
        EventStream::new(self.shared.events.subscribe())
    }

    /// The messages and requests workers send to the master (`ipc::send`, `ipc::request`).
    /// There is one inbox: later calls get `None`. Take it before [`crate::Cluster::run`]:
    /// until then, messages are discarded and requests fail. Once taken, a full inbox (4096)
    /// makes the sending workers wait, so nothing is lost.
    pub fn inbox(&self) -> Option<Inbox> {
        let receiver = lock(&self.shared.inbox_receiver).take()?;
        self.shared.inbox_taken.store(true, Ordering::SeqCst);
        Some(Inbox { receiver })
    }

    /// Sends `message` to every live worker (their `ipc::messages()`).
    pub fn broadcast(&self, message: impl Serialize) -> Result<(), Error> {
        let data = serde_json::to_value(message)?;
        let _ = self.shared.commands.send(Command::Deliver {
            to: Target::All,
            data,
        });
        Ok(())
    }

    /// The value of the cluster-wide counter `name` (0 if never touched).
    pub fn counter(&self, name: &str) -> i64 {
        lock(&self.shared.counters).get(name).copied().unwrap_or(0)
    }

    /// Applies a worker's counter operation; returns the value after it.
    pub(super) fn apply_counter(&self, name: String, op: CounterOp) -> i64 {
        let mut counters = lock(&self.shared.counters);
        let value = counters.entry(name).or_insert(0);
        if let CounterOp::Add(by) = op {
            *value = value.saturating_add(by);
        }
        *value
    }

    /// Puts a worker's message or request in the inbox, waiting while it is full; gives it
    /// back when nobody has taken the inbox or its reader is gone.
    pub(super) async fn to_inbox(&self, incoming: Incoming) -> Result<(), Incoming> {
        if !self.shared.inbox_taken.load(Ordering::SeqCst) {
            return Err(incoming);
        }
        self.shared
            .inbox
            .send(incoming)
            .await
            .map_err(|error| error.0)
    }

    pub(super) fn commands(&self) -> mpsc::UnboundedSender<Command> {
        self.shared.commands.clone()
    }

    /// The master's end of the command channel; there is one master per cluster.
    pub(super) fn take_command_receiver(&self) -> Option<mpsc::UnboundedReceiver<Command>> {
        lock(&self.shared.command_receiver).take()
    }

    pub(super) fn emit(&self, event: ClusterEvent) {
        tracing::debug!(%event, "cluster event");
        // No subscriber is fine: nobody is listening.
        let _ = self.shared.events.send(event);
    }

    pub(super) fn add_worker(&self, worker: WorkerHandle) {
        lock(&self.shared.workers).insert(worker.key(), worker);
    }

    pub(super) fn remove_worker(&self, key: WorkerKey) {
        lock(&self.shared.workers).remove(&key);
    }
}

impl std::fmt::Debug for ClusterControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterControl")
            .field("workers", &self.workers())
            .finish()
    }
}
