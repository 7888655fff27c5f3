//! [`Cluster`]: the builder users configure once; the same code runs in master and workers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::role::{WORKERS_ENV, parse_env};
use crate::{BoxError, Error, Role, Worker, master};

/// Called once in the master when every worker is listening, with the bound addresses.
pub type ReadyHook = Arc<dyn Fn(&[SocketAddr]) + Send + Sync>;

/// A cluster of worker processes running the same program.
///
/// The program calls [`Cluster::run`] in every process: in the master it spawns and supervises
/// the workers (and never calls `worker_main`); in a worker it joins the master and runs
/// `worker_main`.
///
/// ```no_run
/// use cluster_core::Cluster;
///
/// # async fn example() -> Result<(), cluster_core::Error> {
/// Cluster::new()
///     .workers(2)
///     .run(|worker| async move {
///         let mut listener = worker.listen("127.0.0.1:4000").await?;
///         while let Some((stream, peer)) = listener.accept().await {
///             // serve `stream` ...
/// #           drop((stream, peer));
///         }
///         Ok::<_, cluster_core::Error>(())
///     })
///     .await
/// # }
/// ```
#[derive(Clone)]
pub struct Cluster {
    pub(crate) workers: Option<usize>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) addresses: Vec<String>,
    pub(crate) on_ready: Option<ReadyHook>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("workers", &self.workers)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Self::new()
    }
}

impl Cluster {
    /// A cluster with one worker per core (or [`WORKERS_ENV`], `CLUSTER_WORKERS`, when set) and
    /// a 30 s shutdown timeout.
    pub fn new() -> Self {
        Self {
            workers: None,
            shutdown_timeout: Duration::from_secs(30),
            addresses: Vec::new(),
            on_ready: None,
        }
    }

    /// Sets the number of worker processes (at least 1).
    pub fn workers(mut self, count: usize) -> Self {
        self.workers = Some(count.max(1));
        self
    }

    /// How long a stopping worker may take to finish its in-flight work before it is killed.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
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
    /// let cluster = cluster_core::Cluster::new()
    ///     .on_ready(|addresses| println!("listening on http://{}", addresses[0]));
    /// ```
    pub fn on_ready(mut self, hook: impl Fn(&[SocketAddr]) + Send + Sync + 'static) -> Self {
        self.on_ready = Some(Arc::new(hook));
        self
    }

    /// The worker count this cluster will start: the configured one, else `CLUSTER_WORKERS`,
    /// else the number of cores.
    pub fn worker_count(&self) -> Result<usize, Error> {
        if let Some(count) = self.workers {
            return Ok(count);
        }
        match std::env::var(WORKERS_ENV) {
            Ok(value) => parse_env(WORKERS_ENV, &value, |count: usize| count >= 1),
            Err(_) => Ok(std::thread::available_parallelism().map_or(1, usize::from)),
        }
    }

    /// Runs this process's part of the cluster.
    ///
    /// In the master: binds the [`Cluster::bind`] addresses, spawns the workers, hands them
    /// connections and supervises them until SIGTERM or SIGINT, then stops them gracefully.
    /// In a worker: joins the master and runs `worker_main` to completion.
    pub async fn run<F, Fut, E>(self, worker_main: F) -> Result<(), Error>
    where
        F: FnOnce(Worker) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Into<BoxError>,
    {
        match Role::detect()? {
            Role::Master => master::run(self).await,
            Role::Worker(env) => {
                let worker = Worker::join(env).await?;
                worker_main(worker)
                    .await
                    .map_err(|error| Error::Worker(error.into()))
            }
        }
    }
}
