//! The builder's settings for operating a cluster: the control socket, log files, metrics and
//! watch mode (each also from its `CLUSTER_*` variable, which overrides it).

use std::path::PathBuf;

use super::Cluster;
use crate::shared_metrics::GaugeAggregation;

/// What the builder says about operating the cluster; `None`: unset.
#[derive(Clone, Debug, Default)]
pub(super) struct Operations {
    pub(super) control_socket: Option<PathBuf>,
    pub(super) pid_file: Option<PathBuf>,
    pub(super) log_file: Option<PathBuf>,
    pub(super) error_log_file: Option<PathBuf>,
    pub(super) metrics_addr: Option<String>,
    pub(super) watch: Option<bool>,
    pub(super) watch_paths: Vec<PathBuf>,
}

impl Cluster {
    /// Makes the master listen for `clusterctl` on a Unix socket at `path` (mode 0600, its own
    /// user only, removed when it exits; see [`crate::control_socket`]). `CLUSTER_CONTROL_SOCKET`
    /// overrides it; default none.
    pub fn control_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.operations.control_socket = Some(path.into());
        self
    }

    /// Makes the master write its pid to `path` when it starts (and an upgrade's new master
    /// write its own once it has taken over), for scripts that signal it; removed when the
    /// master exits. `CLUSTER_PID_FILE` overrides it; default none.
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.operations.pid_file = Some(path.into());
        self
    }

    /// Makes the master append every worker's stdout (and stderr, without an
    /// [`Cluster::error_log_file`]) to `path`, prefixed as on the terminal; SIGUSR1 reopens it
    /// (for logrotate). `CLUSTER_LOG_FILE` overrides it; default none.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.operations.log_file = Some(path.into());
        self
    }

    /// Makes the master append every worker's stderr to `path` (see [`Cluster::log_file`]).
    /// `CLUSTER_ERROR_LOG_FILE` overrides it; default none.
    pub fn error_log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.operations.error_log_file = Some(path.into());
        self
    }

    /// Makes the master serve the whole cluster's metrics at `GET /metrics` on `address`
    /// (`HOST:PORT`; port 0 picks one, printed as `metrics on http://HOST:PORT/metrics`), in
    /// Prometheus text format: what every process recorded with the `metrics` crate, summed
    /// (see [`crate::shared_metrics`]), and the cluster's own. `CLUSTER_METRICS_ADDR`
    /// overrides it; default: not served (`clusterctl metrics` still shows them).
    pub fn metrics_addr(mut self, address: impl Into<String>) -> Self {
        self.operations.metrics_addr = Some(address.into());
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
    /// serving. `CLUSTER_WATCH` (`1` or `0`, or paths separated by `:`) overrides it; default
    /// off.
    pub fn watch(mut self, watch: bool) -> Self {
        self.operations.watch = Some(watch);
        self
    }

    /// Also reloads when anything under `path` changes (a directory is watched recursively);
    /// turns watch mode on.
    pub fn watch_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.operations.watch = Some(true);
        self.operations.watch_paths.push(path.into());
        self
    }
}
