//! The environment variables the cluster reads, each named once. An operator's value overrides
//! the program's builder (see [`crate::Cluster`]); the ones marked *set by the master* are what a
//! worker finds in its environment.

/// Set in a worker's environment to its slot number (1-based; [`crate::AGENT_ID`] for the agent);
/// unset in the master.
pub const WORKER_ID: &str = "CLUSTER_WORKER_ID";
/// Set in a worker's environment to the descriptor number of its IPC socket.
pub const IPC_FD: &str = "CLUSTER_IPC_FD";
/// The default worker count, like Gunicorn's `WEB_CONCURRENCY`; unset means one per core.
pub const WORKERS: &str = "CLUSTER_WORKERS";
/// Seconds a worker may stay silent (no heartbeat) before it is killed and replaced, unless
/// the builder set it; `0` turns hang detection off. Unset means 30.
pub const HANG_TIMEOUT: &str = "CLUSTER_HANG_TIMEOUT";
/// Chooses the scheduling policy (`rr` or `sticky`) unless the builder set one.
pub const SCHED_POLICY: &str = "CLUSTER_SCHED_POLICY";
/// A file the master appends worker stdout (and stderr, without [`ERROR_LOG_FILE`]) to.
pub const LOG_FILE: &str = "CLUSTER_LOG_FILE";
/// A file the master appends worker stderr to.
pub const ERROR_LOG_FILE: &str = "CLUSTER_ERROR_LOG_FILE";
/// The master's control socket path (`clusterctl`); unset or empty: none.
pub const CONTROL_SOCKET: &str = "CLUSTER_CONTROL_SOCKET";
/// Set in a worker's environment to the descriptor number of its metrics region (see
/// [`crate::shared_metrics`]).
pub const METRICS_FD: &str = "CLUSTER_METRICS_FD";
/// `HOST:PORT` where the master serves the cluster's metrics (`GET /metrics`); unset or
/// empty: not served.
pub const METRICS_ADDR: &str = "CLUSTER_METRICS_ADDR";
/// `1` (or `true`): workers say when they are ready ([`crate::Worker::ready`]) and get no
/// connections until then, unless the builder set it.
pub const WAIT_READY: &str = "CLUSTER_WAIT_READY";
/// Watch mode: `1` makes the master reload the workers when its executable changes; a list
/// of paths separated by `:` watches those too (directories recursively). Unset, empty or
/// `0`: off, unless the builder set it.
pub const WATCH: &str = "CLUSTER_WATCH";
/// A worker that has served this many requests is replaced (Gunicorn's `max_requests`),
/// unless the builder set it.
pub const MAX_REQUESTS: &str = "CLUSTER_MAX_REQUESTS";
/// Up to this many more requests for each worker before it is replaced (Gunicorn's
/// `max_requests_jitter`); unset means a tenth of [`MAX_REQUESTS`].
pub const MAX_REQUESTS_JITTER: &str = "CLUSTER_MAX_REQUESTS_JITTER";
/// A worker whose resident memory passes this many bytes (`K`, `M`, `G` suffixes: 1024s) is
/// replaced (PM2's `max_memory_restart`), unless the builder set it.
pub const MAX_MEMORY: &str = "CLUSTER_MAX_MEMORY";
/// Serving threads per worker, unless the program sets them
/// (`Runtime::worker_threads`); unset means 1.
pub const WORKER_THREADS: &str = "CLUSTER_WORKER_THREADS";
