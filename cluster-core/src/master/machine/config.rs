//! [`Config`]: the settings the machine decides with.

use std::time::Duration;

use cluster_ipc::Policy;

use super::restart::RestartPolicy;

/// How the master behaves; fixed for its life.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Worker slots, 1 to this.
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
}
