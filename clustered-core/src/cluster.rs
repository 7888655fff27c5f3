//! [`Cluster`]: the builder users configure once; the same code runs in master and workers.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::Policy;
use clustered_ipc::{HEARTBEAT_PERIOD, ListenAddr};

use crate::error::{BoxError, Error};
use crate::limits::raise_open_files_limit;
use crate::master::hooks::HookFuture;
use crate::master::{self, ClusterControl, MasterHook, ReadyHook, RestartPolicy};
use crate::role::{AGENT_ID, Role};

use self::agent_main::AgentMain;
pub use self::groups::{Recycling, Timeouts};
use self::operations::Operations;
use crate::worker::Worker;

mod agent_main;
mod groups;
mod operations;
mod settings;

/// The scheduling policy when neither the environment nor the builder sets one.
const DEFAULT_POLICY: Policy = Policy::Rr;

/// Slots a reload replaces at a time when neither the environment nor the builder says.
const DEFAULT_RELOAD_BATCH: usize = 1;

/// Whether workers say when they are ready, when neither the environment nor the builder says.
const DEFAULT_WAIT_READY: bool = false;

/// The shortest hang timeout: three heartbeat periods, so that one late heartbeat on a busy
/// machine never gets a live worker killed.
pub const MIN_HANG_TIMEOUT: Duration = HEARTBEAT_PERIOD.saturating_mul(3);

/// Runs in each worker, as a task, once it has joined the master.
type WorkerHook = Arc<dyn Fn(Worker) -> HookFuture + Send + Sync>;

/// A user function the cluster calls back (shown as `Fn` by `Debug`).
#[derive(Clone)]
struct Hook<F>(F);

impl<F> std::fmt::Debug for Hook<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fn")
    }
}

/// The user functions the cluster runs, each in its process.
#[derive(Clone, Debug, Default)]
struct Hooks {
    on_ready: Option<Hook<ReadyHook>>,
    on_master: Option<Hook<MasterHook>>,
    on_worker: Option<Hook<WorkerHook>>,
    agent: Option<Hook<AgentMain>>,
}

/// A cluster of worker processes running the same program.
///
/// The program calls [`Cluster::run`] in every process: in the master it spawns and supervises
/// the workers (and never calls `worker_main`); in a worker it joins the master and runs
/// `worker_main`.
///
/// Every setting has its environment variable ([`crate::env`]), and an operator's variable
/// overrides the program's value: the master runs with the variable's value, else the
/// builder's, else the default, and its start-up line (`tracing`, info level) says each value
/// and where it came from.
///
/// ```no_run
/// use clustered_core::Cluster;
///
/// # async fn example() -> Result<(), clustered_core::Error> {
/// Cluster::new()
///     .workers(2)
///     .run(|worker| async move {
///         let mut listener = worker.listen("127.0.0.1:4000").await?;
///         while let Some((stream, peer)) = listener.accept().await {
///             // serve `stream` ...
/// #           drop((stream, peer));
///         }
///         Ok::<_, clustered_core::Error>(())
///     })
///     .await
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Cluster {
    /// `None`: one per core.
    workers: Option<usize>,
    policy: Policy,
    addresses: Vec<String>,
    timeouts: Timeouts,
    restart: RestartPolicy,
    recycling: Recycling,
    reload_batch: usize,
    wait_ready: bool,
    raise_open_files: bool,
    operations: Operations,
    hooks: Hooks,
    control: ClusterControl,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            workers: None,
            policy: DEFAULT_POLICY,
            addresses: Vec::new(),
            timeouts: Timeouts::default(),
            restart: RestartPolicy::default(),
            recycling: Recycling::default(),
            reload_batch: DEFAULT_RELOAD_BATCH,
            wait_ready: DEFAULT_WAIT_READY,
            raise_open_files: true,
            operations: Operations::default(),
            hooks: Hooks::default(),
            control: ClusterControl::new(),
        }
    }
}

impl Cluster {
    /// A cluster with one worker per core, round-robin, the default [`Timeouts`],
    /// [`RestartPolicy`] and [`Recycling`] (off), reloading one slot at a time; each setting
    /// overridden by its environment variable when that is set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of worker processes, 1 to [`crate::MAX_WORKERS`] (another count stops
    /// [`Cluster::run`] with an error saying so). `CLUSTER_WORKERS` overrides it; default: one
    /// per core.
    pub fn workers(mut self, count: usize) -> Self {
        self.workers = Some(count);
        self
    }

    /// How the master hands connections to workers. `CLUSTER_SCHED_POLICY` overrides it;
    /// default [`Policy::Rr`].
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The policy this cluster will use: `CLUSTER_SCHED_POLICY`, else the builder's, else
    /// round-robin. An unknown name is an error listing the valid ones.
    pub fn scheduling_policy(&self) -> Result<Policy, Error> {
        self.policy_from(&settings::process_env)
    }

    /// How workers that die on their own are restarted. Each field has its variable, which
    /// overrides it (`CLUSTER_RESTART_BACKOFF`, `CLUSTER_RESTART_MAX_BACKOFF`,
    /// `CLUSTER_MIN_UPTIME`, `CLUSTER_MAX_RESTARTS`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use clustered_core::{Cluster, RestartPolicy};
    ///
    /// let cluster = Cluster::new().restart_policy(RestartPolicy {
    ///     max_restarts: 3,
    ///     min_uptime: Duration::from_secs(5),
    ///     ..RestartPolicy::default()
    /// });
    /// ```
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// Whether the master and workers raise their open-files limit (`RLIMIT_NOFILE`) to the
    /// hard limit when they start, as Go and nginx do (default yes; the log says when it
    /// does). A server holds a descriptor per connection, and the common soft limit of 1024 is
    /// far below what a busy one needs.
    pub fn raise_open_files_limit(mut self, raise: bool) -> Self {
        self.raise_open_files = raise;
        self
    }

    /// How many slots a rolling reload replaces at a time, at least 1. `CLUSTER_RELOAD_BATCH`
    /// overrides it; default 1.
    pub fn reload_batch(mut self, slots: usize) -> Self {
        self.reload_batch = slots;
        self
    }

    /// Whether workers say when they are ready after warming up (PM2's `wait_ready` and
    /// `process.send('ready')`): with it, a worker gets no connection until it calls
    /// [`crate::Worker::ready`] (or [`crate::worker::ipc::ready`]), a rolling reload moves on
    /// only once the replacement is ready, and a worker not ready within the boot timeout is
    /// killed and replaced (a reload's replacement: within the reload timeout). Without it,
    /// listening means ready. `CLUSTER_WAIT_READY` (`1` or `0`) overrides it; default off.
    pub fn wait_ready(mut self, wait: bool) -> Self {
        self.wait_ready = wait;
        self
    }

    /// A handle to reload or stop the cluster and read its events from master-side code. Take
    /// it before [`Cluster::run`].
    pub fn control(&self) -> ClusterControl {
        self.control.clone()
    }

    /// Binds `address` in the master before any worker starts, so that a taken port fails at
    /// once with [`Error::Bind`] naming it. Workers then listen on it with [`Worker::listen`].
    pub fn bind(mut self, address: impl Into<String>) -> Self {
        self.addresses.push(address.into());
        self
    }

    /// Calls `hook` once in the master when every worker is listening, with the bound
    /// addresses (real ports, also when port 0 was asked for; a Unix socket shows as
    /// `unix:PATH`).
    ///
    /// ```
    /// let cluster = clustered_core::Cluster::new()
    ///     .on_ready(|addresses| println!("listening on http://{}", addresses[0]));
    /// ```
    pub fn on_ready(mut self, hook: impl Fn(&[ListenAddr]) + Send + Sync + 'static) -> Self {
        self.hooks.on_ready = Some(Hook(Arc::new(hook)));
        self
    }

    /// Runs `hook` in the master only, as a task of its own, once the master starts: the place
    /// for master-side code (an inbox handler, an event reader) without asking which process
    /// this is.
    ///
    /// ```
    /// let cluster = clustered_core::Cluster::new().on_master(|control| async move {
    ///     let mut events = control.events();
    ///     while let Some(event) = events.recv().await {
    ///         println!("{event}");
    ///     }
    /// });
    /// ```
    pub fn on_master<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(ClusterControl) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks.on_master = Some(Hook(Arc::new(move |control| Box::pin(hook(control)))));
        self
    }

    /// Runs `hook` in each worker only, as a task of its own, once the worker has joined the
    /// master (before its main function runs): the place for worker-side background work such
    /// as reading `ipc::messages()`.
    ///
    /// ```
    /// let cluster = clustered_core::Cluster::new().on_worker(|worker| async move {
    ///     println!("worker {} is up", worker.id());
    /// });
    /// ```
    pub fn on_worker<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Worker) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks.on_worker = Some(Hook(Arc::new(move |worker| Box::pin(hook(worker)))));
        self
    }

    /// The worker count this cluster will start: `CLUSTER_WORKERS`, else the builder's, else
    /// the number of cores; an error when the setting is out of range (1 to
    /// [`crate::MAX_WORKERS`]), naming where it came from.
    pub fn worker_count(&self) -> Result<usize, Error> {
        self.worker_count_from(&settings::process_env)
    }

    /// Runs this process's part of the cluster.
    ///
    /// In the master: binds the [`Cluster::bind`] addresses, spawns the workers, hands them
    /// connections and supervises them (restarting those that die, reloading them all on
    /// SIGHUP; on SIGUSR2 handing everything to a new master started from the executable on
    /// disk) until SIGTERM or SIGINT, then stops them gracefully.
    /// In a worker: joins the master and runs `worker_main` to completion.
    ///
    /// In both, the cluster's own warnings and errors go to stderr (`RUST_LOG` filters them)
    /// when the program has installed no `tracing` subscriber of its own before this.
    pub async fn run<F, Fut, E>(self, worker_main: F) -> Result<(), Error>
    where
        F: FnOnce(Worker) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Into<BoxError>,
    {
        crate::logging::install_default();
        if self.raise_open_files {
            raise_open_files_limit();
        }
        match Role::detect()? {
            Role::Master => {
                let (settings, origins) = self.into_settings()?;
                tracing::info!("master starting: {origins}");
                master::run(settings).await
            }
            Role::Worker(env) if env.info.id == AGENT_ID => self.run_agent(env).await,
            Role::Worker(env) => {
                let worker = Worker::join(env).await?;
                if let Some(Hook(hook)) = &self.hooks.on_worker {
                    tokio::spawn(hook(worker.clone()));
                }
                worker_main(worker)
                    .await
                    .map_err(|error| Error::Worker(error.into()))
            }
        }
    }
}
