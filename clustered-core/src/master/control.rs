//! [`ClusterControl`]: reload, stop and inspect a running cluster from user code.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use super::cluster_event::{ClusterEvent, EventStream};
use super::command::{Command, CommandBus, PendingAnswer, Scale, Target};
use super::handle::WorkerHandle;
use super::inbox::{Inbox, InboxSlot};
use super::logs::LogBook;
use super::registry::Registry;
use crate::IpcError;
use crate::shared_metrics::MetricsBook;

/// Events kept for slow readers.
const EVENT_CAPACITY: usize = 1024;

/// A handle on the cluster's master, from [`crate::Cluster::control`], or given to the
/// [`crate::Cluster::on_master`] hook. In a worker process it does nothing (there is no master
/// in this process).
///
/// ```no_run
/// # async fn example() -> Result<(), clustered_core::Error> {
/// use clustered_core::Cluster;
///
/// let cluster = Cluster::new().on_master(|control| async move {
///     let mut events = control.events();
///     while let Some(event) = events.recv().await {
///         println!("{event}");
///     }
/// });
/// # let worker_main = |_worker| async { Ok::<_, clustered_core::Error>(()) };
/// cluster.run(worker_main).await
/// # }
/// ```
#[derive(Clone)]
pub struct ClusterControl {
    shared: Arc<Shared>,
}

struct Shared {
    commands: CommandBus,
    events: broadcast::Sender<ClusterEvent>,
    registry: Registry,
    inbox: Arc<InboxSlot>,
    logs: LogBook,
    metrics: MetricsBook,
}

impl ClusterControl {
    pub(crate) fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                commands: CommandBus::new(),
                events: broadcast::Sender::new(EVENT_CAPACITY),
                registry: Registry::default(),
                inbox: Arc::new(InboxSlot::new()),
                logs: LogBook::default(),
                metrics: MetricsBook::default(),
            }),
        }
    }

    /// Starts a rolling reload (as SIGHUP does). A request during a reload is coalesced into
    /// one more reload after it. The answer comes once the reload has finished (done) or been
    /// aborted (failed, saying why); a reload asked before the cluster serves, or once it
    /// stops, is refused. Awaiting the answer is optional.
    ///
    /// ```no_run
    /// # async fn example(control: clustered_core::ClusterControl) {
    /// let answer = control.reload().await;
    /// println!("{answer}"); // done: reloaded: every worker was replaced (4 now serve)
    /// # }
    /// ```
    pub fn reload(&self) -> PendingAnswer {
        self.shared.commands.ask(Command::Reload)
    }

    /// Upgrades the master itself (as SIGUSR2 does): starts a new master from the executable
    /// on disk, which takes over the sockets, the counters, the metrics' totals and the
    /// restart counts; this master then drains and exits. Answered once the new master's
    /// workers serve (with both pids), or when the upgrade failed (this master serves on);
    /// refused during a reload, another upgrade or a stop.
    pub fn upgrade(&self) -> PendingAnswer {
        self.shared.commands.ask(Command::Upgrade)
    }

    /// Tells every worker to load its TLS certificate again from its files (`clusterctl tls
    /// reload`): new handshakes get the new one, the session-ticket keys stay. Answered once
    /// every worker has said how it went (or exited, or stayed silent for 10 s): done when all
    /// load it; failed, naming each worker that kept the one before and why (the file), when
    /// any could not; refused when no worker serves TLS.
    pub fn reload_certificates(&self) -> PendingAnswer {
        self.shared.commands.ask(Command::ReloadCertificates)
    }

    /// Starts a graceful shutdown (as SIGTERM does); answered at once (refused when a stop is
    /// already under way).
    pub fn shutdown(&self) -> PendingAnswer {
        self.shared.commands.ask(Command::Shutdown)
    }

    /// Changes the worker count: new slots start workers at once, removed slots (the highest)
    /// drain and are not replaced. Answered once the new workers serve; refused during a
    /// rolling reload or a stop.
    pub fn scale(&self, scale: Scale) -> PendingAnswer {
        self.shared.commands.ask(Command::Scale(scale))
    }

    /// Replaces the worker serving slot `id` (`clusterctl kill`): it drains and exits, and its
    /// successor starts at once, without counting as a crash (the agent's once it has exited).
    /// Answered once the successor serves; refused when no worker serves that slot or a
    /// reload is under way.
    pub fn restart(&self, id: usize) -> PendingAnswer {
        self.shared.commands.ask(Command::Restart(id))
    }

    /// Every live worker, in slot order (during a reload a slot may have two, oldest first).
    pub fn workers(&self) -> Vec<WorkerHandle> {
        self.shared.registry.workers()
    }

    /// A stream of every event from now on.
    pub fn events(&self) -> EventStream {
        EventStream::new(self.shared.events.subscribe())
    }

    /// The messages and requests workers send to the master (`ipc::send`, `ipc::request`).
    ///
    /// One worker's messages and requests come in the order it sent them; workers take turns,
    /// one whose next is a request first (see [`Inbox::recv`]).
    ///
    /// One per cluster: a second call is [`IpcError::AlreadyTaken`]. Until it is taken (and once
    /// it is dropped) workers' sends fail with [`IpcError::InboxUnread`]; a worker 1,024 items
    /// ahead of the reader waits (`send_wait`, `request`) or is told
    /// [`IpcError::Backpressure`] (`send`).
    pub fn inbox(&self) -> Result<Inbox, IpcError> {
        self.shared.inbox.take()
    }

    /// Sends `message` to every live worker (their `ipc::messages()`); with a fleet
    /// (`CLUSTER_REDIS_URL`), to every worker of every master in its namespace too, failing
    /// with [`IpcError::FleetDown`] while its Redis is unreachable (nothing is sent).
    pub fn broadcast(&self, message: impl Serialize) -> Result<(), IpcError> {
        if self.shared.registry.fleet().is_some_and(|fleet| !fleet.up) {
            return Err(IpcError::FleetDown);
        }
        let data = serde_json::to_value(message)?;
        self.shared.commands.send(Command::Deliver {
            to: Target::All,
            data,
        });
        Ok(())
    }

    /// The value of the cluster-wide counter `name` (0 if never touched).
    pub fn counter(&self, name: &str) -> i64 {
        self.shared.registry.counter(name)
    }

    pub(crate) fn commands(&self) -> &CommandBus {
        &self.shared.commands
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// The workers' recent output.
    pub(crate) fn logs(&self) -> &LogBook {
        &self.shared.logs
    }

    /// Every process's metrics.
    pub(crate) fn metrics(&self) -> &MetricsBook {
        &self.shared.metrics
    }

    pub(crate) fn inbox_slot(&self) -> &InboxSlot {
        &self.shared.inbox
    }

    pub(crate) fn emit(&self, event: ClusterEvent) {
        tracing::debug!(%event, "cluster event");
        // No subscriber is fine: nobody is listening.
        let _ = self.shared.events.send(event);
    }
}

impl std::fmt::Debug for ClusterControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterControl")
            .field("workers", &self.workers())
            .finish()
    }
}
