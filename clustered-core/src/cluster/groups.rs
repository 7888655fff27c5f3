//! The builder's settings that belong together, as plain public structs: [`Timeouts`] and
//! [`Recycling`] (and [`crate::RestartPolicy`], the machine's own). Each default is written
//! once, in its `Default`.

use std::time::Duration;

use super::Cluster;

/// How long the master waits for workers before it acts: the four timeouts of
/// [`crate::Cluster::timeouts`]. Each has its environment variable, which overrides it.
///
/// ```
/// use std::time::Duration;
/// use clustered_core::{Cluster, Timeouts};
///
/// let cluster = Cluster::new().timeouts(Timeouts {
///     hang: Duration::from_secs(10),
///     ..Timeouts::default()
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// How long a stopping worker may take to finish its in-flight work before it is killed
    /// (at shutdown, at reload, and after [`crate::WorkerHandle::disconnect`]).
    /// `CLUSTER_SHUTDOWN_TIMEOUT`; default 30 s.
    pub shutdown: Duration,
    /// How long a worker may stay silent (no heartbeat) before it is killed and replaced, as
    /// Gunicorn's `--timeout`; at least [`crate::MIN_HANG_TIMEOUT`], or zero for off.
    /// `CLUSTER_HANG_TIMEOUT`; default 30 s.
    pub hang: Duration,
    /// How long a worker (not a reload's replacement) may take from its start to serving
    /// before it is killed and replaced; more than zero. `CLUSTER_BOOT_TIMEOUT`; default 60 s.
    pub boot: Duration,
    /// How long a reload's replacement may take to serve before the reload is aborted (the old
    /// worker keeps serving); more than zero. `CLUSTER_RELOAD_TIMEOUT`; default 30 s.
    pub reload: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            shutdown: Duration::from_secs(30),
            hang: Duration::from_secs(30),
            boot: Duration::from_secs(60),
            reload: Duration::from_secs(30),
        }
    }
}

/// When a worker is replaced for what it has served or the memory it holds (Gunicorn's
/// `max_requests`, PM2's `max_memory_restart`): its replacement starts first, then it drains;
/// one worker at a time, never during a reload. Off by default. Each field has its environment
/// variable, which overrides it.
///
/// ```
/// use clustered_core::{Cluster, Recycling};
///
/// let cluster = Cluster::new().recycling(Recycling {
///     max_requests: 10_000,
///     max_memory: 512 << 20,
///     ..Recycling::default()
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recycling {
    /// A worker that has served this many requests (plus its jitter) is replaced; 0: never.
    /// `CLUSTER_MAX_REQUESTS`.
    pub max_requests: u64,
    /// Up to this many more requests for each worker, different for each, so that workers
    /// started together are not replaced together; `None`: a tenth of `max_requests`.
    /// `CLUSTER_MAX_REQUESTS_JITTER`.
    pub max_requests_jitter: Option<u64>,
    /// A worker whose resident memory reaches this many bytes is replaced (checked about once
    /// a second); 0: never. It must be above a fresh worker's memory: the master stops with
    /// an error saying so otherwise. `CLUSTER_MAX_MEMORY` (bytes, or with `K`, `M`, `G`).
    pub max_memory: u64,
}

impl Cluster {
    /// Sets the four [`Timeouts`] at once.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Sets [`Timeouts::shutdown`].
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.shutdown = timeout;
        self
    }

    /// Sets [`Timeouts::hang`].
    pub fn hang_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.hang = timeout;
        self
    }

    /// Sets [`Timeouts::boot`]; such deaths count towards the crash-loop guard.
    pub fn boot_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.boot = timeout;
        self
    }

    /// Sets [`Timeouts::reload`].
    pub fn reload_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.reload = timeout;
        self
    }

    /// Sets the three [`Recycling`] limits at once. A recycled worker's `Exit` event says
    /// `max-requests` or `max-memory`.
    pub fn recycling(mut self, recycling: Recycling) -> Self {
        self.recycling = recycling;
        self
    }

    /// Sets [`Recycling::max_requests`] (0: never).
    pub fn max_requests(mut self, requests: u64) -> Self {
        self.recycling.max_requests = requests;
        self
    }

    /// Sets [`Recycling::max_requests_jitter`].
    pub fn max_requests_jitter(mut self, requests: u64) -> Self {
        self.recycling.max_requests_jitter = Some(requests);
        self
    }

    /// Sets [`Recycling::max_memory`] in bytes (0: never).
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.recycling.max_memory = bytes;
        self
    }
}
