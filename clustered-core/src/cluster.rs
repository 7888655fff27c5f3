//! [`Cluster`]: the builder users configure once; the same code runs in master and workers.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clustered_ipc::{HEARTBEAT_PERIOD, Policy};

use crate::error::{BoxError, Error};
use crate::limits::raise_open_files_limit;
use crate::master::hooks::HookFuture;
use crate::master::{self, ClusterControl, MasterHook, ReadyHook, RestartPolicy};
use crate::role::{AGENT_ID, Role};

use self::agent_main::AgentMain;
use crate::worker::Worker;

mod agent_main;
mod operations;
mod settings;

/// The hang timeout when neither the builder nor the environment sets one (Gunicorn's).
const DEFAULT_HANG_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest hang timeout: three heartbeat periods, so that one late heartbeat on a busy
/// machine never gets a live worker killed.
pub const MIN_HANG_TIMEOUT: Duration = HEARTBEAT_PERIOD.saturating_mul(3);

/// Runs in each worker, as a task, once it has joined the master.
type WorkerHook = Arc<dyn Fn(Worker) -> HookFuture + Send + Sync>;

/// A cluster of worker processes running the same program.
///
/// The program calls [`Cluster::run`] in every process: in the master it spawns and supervises
/// the workers (and never calls `worker_main`); in a worker it joins the master and runs
/// `worker_main`.
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
#[derive(Clone)]
pub struct Cluster {
    workers: Option<usize>,
    policy: Option<Policy>,
    shutdown_timeout: Duration,
    addresses: Vec<String>,
    on_ready: Option<ReadyHook>,
    on_master: Option<MasterHook>,
    on_worker: Option<WorkerHook>,
    agent: Option<AgentMain>,
    restart: RestartPolicy,
    reload_timeout: Duration,
    reload_batch: usize,
    hang_timeout: Option<Duration>,
    boot_timeout: Duration,
    raise_open_files: bool,
    control_socket: Option<PathBuf>,
    log_file: Option<PathBuf>,
    error_log_file: Option<PathBuf>,
    metrics_addr: Option<String>,
    max_requests: Option<u64>,
    max_requests_jitter: Option<u64>,
    max_memory: Option<u64>,
    wait_ready: Option<bool>,
    watch: Option<bool>,
    watch_paths: Vec<PathBuf>,
    control: ClusterControl,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("workers", &self.workers)
            .field("policy", &self.policy)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("addresses", &self.addresses)
            .field("restart", &self.restart)
            .field("reload_timeout", &self.reload_timeout)
            .field("reload_batch", &self.reload_batch)
            .field("hang_timeout", &self.hang_timeout)
            .field("boot_timeout", &self.boot_timeout)
            .field("raise_open_files", &self.raise_open_files)
            .finish_non_exhaustive()
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Self::new()
    }
}

impl Cluster {
    /// A cluster with one worker per core (or [`crate::env::WORKERS`], `CLUSTER_WORKERS`, when set), a
    /// 30 s shutdown timeout, the default [`RestartPolicy`], and reloads one slot at a time
    /// with 30 s for each replacement to listen.
    pub fn new() -> Self {
        Self {
            workers: None,
            policy: None,
            shutdown_timeout: Duration::from_secs(30),
            addresses: Vec::new(),
            on_ready: None,
            on_master: None,
            on_worker: None,
            agent: None,
            restart: RestartPolicy::default(),
            reload_timeout: Duration::from_secs(30),
            reload_batch: 1,
            hang_timeout: None,
            boot_timeout: Duration::from_secs(60),
            raise_open_files: true,
            control_socket: None,
            log_file: None,
            error_log_file: None,
            metrics_addr: None,
            max_requests: None,
            max_requests_jitter: None,
            max_memory: None,
            wait_ready: None,
            watch: None,
            watch_paths: Vec::new(),
            control: ClusterControl::new(),
        }
    }

    /// Sets the number of worker processes, 1 to [`crate::MAX_WORKERS`] (another count stops
    /// [`Cluster::run`] with an error saying so).
    pub fn workers(mut self, count: usize) -> Self {
        self.workers = Some(count);
        self
    }

    /// How the master hands connections to workers ([`Policy::Rr`] by default, or
    /// `CLUSTER_SCHED_POLICY`).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The policy this cluster will use: the configured one, else `CLUSTER_SCHED_POLICY`,
    /// else round-robin. An unknown name is an error listing the valid ones.
    pub fn scheduling_policy(&self) -> Result<Policy, Error> {
        self.policy_from(&settings::process_env)
    }

    /// How long a stopping worker may take to finish its in-flight work before it is killed
    /// (at shutdown, at reload, and after [`crate::WorkerHandle::disconnect`]).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How workers that die on their own are restarted.
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

    /// How long a replacement may take to listen during a rolling reload before the reload is
    /// aborted (the old worker keeps serving).
    pub fn reload_timeout(mut self, timeout: Duration) -> Self {
        self.reload_timeout = timeout;
        self
    }

    /// How long a worker may stay silent (no heartbeat: its event loop is blocked, or the
    /// process is stopped) before it is killed and replaced, as Gunicorn's `--timeout`.
    /// `Duration::ZERO` turns hang detection off. Default: `CLUSTER_HANG_TIMEOUT` seconds, else
    /// 30 s; at least [`MIN_HANG_TIMEOUT`] (a shorter one, from here or from
    /// `CLUSTER_HANG_TIMEOUT`, stops [`Cluster::run`] with an error saying so). Whatever this says, a
    /// worker silent for 4 s (or for 0.5 s while it owes an answer to a handoff) gets no new
    /// connections until it answers again.
    pub fn hang_timeout(mut self, timeout: Duration) -> Self {
        self.hang_timeout = Some(timeout);
        self
    }

    /// How long a worker (not a reload's replacement, which has the reload timeout) may take
    /// from its start to listening on every address before it is killed and replaced; such
    /// deaths count towards the crash-loop guard. Default 60 s.
    pub fn boot_timeout(mut self, timeout: Duration) -> Self {
        self.boot_timeout = timeout;
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

    /// How many slots a rolling reload replaces at a time (at least 1; default 1).
    pub fn reload_batch(mut self, slots: usize) -> Self {
        self.reload_batch = slots;
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
    /// addresses (real ports, also when port 0 was asked for).
    ///
    /// ```
    /// let cluster = clustered_core::Cluster::new()
    ///     .on_ready(|addresses| println!("listening on http://{}", addresses[0]));
    /// ```
    pub fn on_ready(mut self, hook: impl Fn(&[SocketAddr]) + Send + Sync + 'static) -> Self {
        self.on_ready = Some(Arc::new(hook));
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
        self.on_master = Some(Arc::new(move |control| Box::pin(hook(control))));
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
        self.on_worker = Some(Arc::new(move |worker| Box::pin(hook(worker))));
        self
    }

    /// The worker count this cluster will start: the configured one, else `CLUSTER_WORKERS`,
    /// else the number of cores; an error when the setting is out of range (1 to
    /// [`crate::MAX_WORKERS`]), naming where it came from.
    pub fn worker_count(&self) -> Result<usize, Error> {
        self.worker_count_from(&settings::process_env)
    }

    /// Runs this process's part of the cluster.
    ///
    /// In the master: binds the [`Cluster::bind`] addresses, spawns the workers, hands them
    /// connections and supervises them (restarting those that die, reloading them all on
    /// SIGHUP or SIGUSR2) until SIGTERM or SIGINT, then stops them gracefully.
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
            Role::Master => master::run(self.into_settings()?).await,
            Role::Worker(env) if env.info.id == AGENT_ID => self.run_agent(env).await,
            Role::Worker(env) => {
                let worker = Worker::join(env).await?;
                if let Some(hook) = &self.on_worker {
                    tokio::spawn(hook(worker.clone()));
                }
                worker_main(worker)
                    .await
                    .map_err(|error| Error::Worker(error.into()))
            }
        }
    }
}
