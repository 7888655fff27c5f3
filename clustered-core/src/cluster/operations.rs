//! The builder's settings for operating a cluster: the control socket, log files, metrics,
//! watch mode, readiness and recycling (each also from its `CLUSTER_*` variable).

use std::path::PathBuf;

use super::Cluster;
use crate::shared_metrics::GaugeAggregation;

impl Cluster {
    /// Makes the master listen for `clusterctl` on a Unix socket at `path` (mode 0600, its own
    /// user only, removed when it exits; see [`crate::control_socket`]). Default:
    /// `CLUSTER_CONTROL_SOCKET`, else none.
    pub fn control_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.control_socket = Some(path.into());
        self
    }

    /// Makes the master append every worker's stdout (and stderr, without an
    /// [`Cluster::error_log_file`]) to `path`, prefixed as on the terminal; SIGUSR1 reopens it
    /// (for logrotate). Default: `CLUSTER_LOG_FILE`, else none.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    /// Makes the master append every worker's stderr to `path` (see [`Cluster::log_file`]).
    /// Default: `CLUSTER_ERROR_LOG_FILE`, else none.
    pub fn error_log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.error_log_file = Some(path.into());
        self
    }

    /// Makes the master serve the whole cluster's metrics at `GET /metrics` on `address`
    /// (`HOST:PORT`; port 0 picks one, printed as `metrics on http://HOST:PORT/metrics`), in
    /// Prometheus text format: what every process recorded with the `metrics` crate, summed
    /// (see [`crate::shared_metrics`]), and the cluster's own. Default: `CLUSTER_METRICS_ADDR`,
    /// else not served (`clusterctl metrics` still shows them).
    pub fn metrics_addr(mut self, address: impl Into<String>) -> Self {
        self.metrics_addr = Some(address.into());
        self
    }

    /// How the master combines the gauge `name` that several processes record (default:
    /// summed).
    ///
    /// ```
    /// use clustered_core::{Cluster, shared_metrics::GaugeAggregation};
    ///
    /// let cluster = Cluster::new().gauge_aggregation("queue_depth", GaugeAggregation::Max);
    /// ```
    pub fn gauge_aggregation(self, name: impl Into<String>, aggregation: GaugeAggregation) -> Self {
        self.control
            .metrics()
            .set_aggregation(name.into(), aggregation);
        self
    }

    /// Watch mode, for development: the master watches its own executable (and
    /// [`Cluster::watch_path`]s) and does a rolling reload when it changes, so `cargo build`
    /// (or `cargo watch -x build`) in another shell updates the running server with no gap in
    /// service. A new binary that fails to start aborts that reload; the old workers keep
    /// serving. Default: `CLUSTER_WATCH` (`1`, or paths separated by `:`), else off.
    pub fn watch(mut self, watch: bool) -> Self {
        self.watch = Some(watch);
        self
    }

    /// Also reloads when anything under `path` changes (a directory is watched recursively);
    /// turns watch mode on.
    pub fn watch_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.watch = Some(true);
        self.watch_paths.push(path.into());
        self
    }

    /// Whether workers say when they are ready after warming up (PM2's `wait_ready` and
    /// `process.send('ready')`): with it, a worker gets no connection until it calls
    /// [`crate::Worker::ready`] (or [`crate::worker::ipc::ready`]), a rolling reload moves on only once the replacement
    /// is ready, and a worker not ready within the boot timeout is killed and replaced (a
    /// reload's replacement: within the reload timeout). Without it, listening means ready.
    /// Default: `CLUSTER_WAIT_READY=1`, else off.
    pub fn wait_ready(mut self, wait: bool) -> Self {
        self.wait_ready = Some(wait);
        self
    }

    /// Replaces a worker once it has served `requests` requests (plus its jitter, see
    /// [`Cluster::max_requests_jitter`]), as Gunicorn's `max_requests`: its replacement starts
    /// first, then it drains; one worker at a time, never during a reload. The `Exit` event
    /// says `max-requests`. Default: `CLUSTER_MAX_REQUESTS`, else never.
    pub fn max_requests(mut self, requests: u64) -> Self {
        self.max_requests = Some(requests);
        self
    }

    /// Up to `requests` more for each worker before it is replaced, different for each worker
    /// so that workers started together are not replaced together (Gunicorn's
    /// `max_requests_jitter`). Default: `CLUSTER_MAX_REQUESTS_JITTER`, else a tenth of
    /// [`Cluster::max_requests`].
    pub fn max_requests_jitter(mut self, requests: u64) -> Self {
        self.max_requests_jitter = Some(requests);
        self
    }

    /// Replaces a worker whose resident memory passes `bytes` (PM2's `max_memory_restart`,
    /// done as [`Cluster::max_requests`] does it: replacement first, then drain; checked about
    /// once a second). The `Exit` event says `max-memory`. Default: `CLUSTER_MAX_MEMORY`
    /// (bytes, or with a `K`, `M` or `G` suffix), else never.
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.max_memory = Some(bytes);
        self
    }
}
