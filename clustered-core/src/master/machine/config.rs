//! [`Config`]: the settings the machine decides with.

use std::time::Duration;

use crate::Policy;
use clustered_ipc::HEARTBEAT_PERIOD;

use super::restart::RestartPolicy;

/// How the master behaves, as the settings gave it at start; the worker count is the one
/// field that changes later (scaling), everything else stays for the master's life.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Worker slots, 1 to this (changed by scaling).
    pub(crate) worker_count: usize,
    /// How connections reach workers.
    pub(crate) policy: Policy,
    /// Bound before any worker starts (a taken port fails at once).
    pub(crate) addresses: Vec<String>,
    /// How long a stopping worker may take before it is killed.
    pub(crate) shutdown_timeout: Duration,
    /// How long a reload's replacement may take to listen.
    pub(crate) reload_timeout: Duration,
    /// Slots a reload replaces at a time.
    pub(crate) reload_batch: usize,
    /// When workers that die on their own are restarted.
    pub(crate) restart: RestartPolicy,
    /// A worker silent this long is killed and replaced (`None`: never).
    pub(crate) hang_timeout: Option<Duration>,
    /// A worker not listening this long after it started is killed and replaced (when the
    /// cluster has addresses of its own to listen on).
    pub(crate) boot_timeout: Duration,
    /// This master was started by an upgrade: its counters wait for its predecessor's.
    pub(crate) upgrading: bool,
    /// An agent process (slot 0) runs before the workers, which start once it is ready.
    pub(crate) agent: bool,
    /// The master is part of a fleet (Redis): broadcasts and counters go through it.
    pub(crate) fleet: bool,
    /// Workers say when they are ready (after warming up); until then they get no connections
    /// and a reload waits for them.
    pub(crate) wait_ready: bool,
    /// When a worker is replaced for what it has served or the memory it holds.
    pub(crate) recycle: Recycle,
}

/// Gunicorn's `max_requests` / `max_requests_jitter`, and a memory limit (PM2's
/// `max_memory_restart`, done by replacement rather than restart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Recycle {
    /// A worker that has served this many requests (plus its jitter) is replaced.
    pub(crate) max_requests: Option<u64>,
    /// Each worker's limit is `max_requests` plus a number from 0 to this, different for each
    /// worker, so that workers started together are not replaced together.
    pub(crate) max_requests_jitter: u64,
    /// A worker whose resident memory reaches this many bytes is replaced; a fresh worker
    /// already at it stops the master.
    pub(crate) max_memory: Option<u64>,
    /// Where `max_memory` came from (`CLUSTER_MAX_MEMORY`, `Cluster::max_memory`), for the
    /// error when it is too low.
    pub(crate) max_memory_from: &'static str,
}

/// A worker silent this long (a whole heartbeat missed) is suspect: no new connections.
pub(crate) const SUSPECT_AFTER: Duration = HEARTBEAT_PERIOD.saturating_mul(2);

/// A worker that owes an answer to a handoff and has said nothing for this long is suspect: a
/// live worker answers within a turn of its event loop.
pub(crate) const UNANSWERED_SUSPECT_AFTER: Duration = Duration::from_millis(500);
