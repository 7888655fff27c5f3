//! The tokio runtime of each process of a cluster, built for its role: the master runs on one
//! thread, and each worker on one serving thread by default (Node's model: one process per
//! core is the parallelism, and a worker costs what one single-threaded server costs).
//! `#[clustered::main]` (the `clustered` crate) expands to [`Runtime::block_on`].
//!
//! ```no_run
//! fn main() -> clustered_core::Exit {
//!     clustered_core::runtime::block_on(async {
//!         clustered_core::Cluster::new()
//!             .run(|_worker| async { Ok::<_, clustered_core::Error>(()) })
//!             .await
//!             .into()
//!     })
//! }
//! ```

use crate::env;
use std::future::Future;

use crate::error::Error;
use crate::role::{Role, forget_cluster_env, parse_env};

/// How this process's runtime is built.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    worker_threads: Option<usize>,
}

impl Runtime {
    /// One thread in the master; in a worker, [`env::WORKER_THREADS`] threads or one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serving threads per worker (at least 1: zero is an error at [`Runtime::build`]), unless
    /// [`env::WORKER_THREADS`] says otherwise; more than one makes workers run tokio's
    /// `multi_thread` scheduler. The master keeps one thread whatever this says.
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = Some(threads);
        self
    }

    /// The runtime for this process's role. The worker setting is checked in the master too,
    /// so a bad [`env::WORKER_THREADS`] stops the master at once instead of every worker.
    pub fn build(&self) -> Result<tokio::runtime::Runtime, Error> {
        let per_worker = self.threads_per_worker()?;
        forget_cluster_env();
        let threads = match Role::detect() {
            Ok(Role::Worker(_)) => per_worker,
            // The master, or a process whose role cannot be read (Cluster::run says why).
            _ => 1,
        };
        let mut builder = if threads == 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        };
        builder.enable_all().build().map_err(Error::Runtime)
    }

    /// Builds the runtime and runs `future` on it to completion. A runtime that cannot be
    /// built (a bad [`env::WORKER_THREADS`], no descriptors left) ends the process with
    /// `error: <why>` and exit code 1.
    pub fn block_on<F: Future>(self, future: F) -> F::Output {
        match self.build() {
            Ok(runtime) => runtime.block_on(future),
            Err(error) => {
                eprintln!("error: {error}");
                std::process::exit(1);
            }
        }
    }

    fn threads_per_worker(&self) -> Result<usize, Error> {
        // The operator's variable first, as for every setting; then the program's; then 1.
        if let Ok(value) = std::env::var(env::WORKER_THREADS)
            && !value.trim().is_empty()
        {
            return parse_env(
                env::WORKER_THREADS,
                &value,
                |threads: usize| threads >= 1,
                "the thread count is a whole number from 1 up",
            );
        }
        match self.worker_threads {
            Some(0) => Err(Error::Setting {
                method: "Runtime::worker_threads",
                value: "0".into(),
                reason: "a worker needs at least 1 serving thread".into(),
            }),
            Some(threads) => Ok(threads),
            None => Ok(1),
        }
    }
}

/// [`Runtime::block_on`] with the defaults.
pub fn block_on<F: Future>(future: F) -> F::Output {
    Runtime::new().block_on(future)
}
