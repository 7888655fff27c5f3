//! The environment variables the cluster reads, each named once. An operator's value overrides
//! the program's builder value, which overrides the default (see [`crate::Cluster`]); an empty
//! value counts as unset. The ones marked *set by the master* are what a worker finds in its
//! environment. Durations are in seconds (`30`, `0.5`).

/// Set by the master in a worker's environment to its slot number (1-based;
/// [`crate::AGENT_ID`] for the agent); unset in the master.
pub const WORKER_ID: &str = "CLUSTER_WORKER_ID";
/// Set by the master in a worker's environment to the descriptor number of its IPC socket.
pub const IPC_FD: &str = "CLUSTER_IPC_FD";
/// A file the master writes its pid to (and an upgrade's new master rewrites with its own);
/// removed when the master exits (`Cluster::pid_file`). Default none.
pub const PID_FILE: &str = "CLUSTER_PID_FILE";
/// The fleet's Redis (`redis://host:port` or `redis+unix:///path`; feature `redis`): with
/// it, broadcasts and counters reach every master of the namespace and one agent runs per
/// fleet. Default none (one host).
pub const REDIS_URL: &str = "CLUSTER_REDIS_URL";
/// The fleet's namespace on its Redis (default: the program's name).
pub const REDIS_NAMESPACE: &str = "CLUSTER_REDIS_NAMESPACE";
/// The fleet agent's lease, in milliseconds (default 10,000): another master starts the
/// agent within this time of its master's death.
pub const REDIS_LEASE: &str = "CLUSTER_REDIS_LEASE";
/// Set in the agent of a fleet: the fencing token of the lease its master holds.
pub const AGENT_TOKEN: &str = "CLUSTER_AGENT_TOKEN";
/// The certificate chain (PEM) the examples serve HTTPS with, beside [`TLS_KEY`]
/// (`TlsConfig::from_env`). Read by the program in every process, so workers keep it.
pub const TLS_CERT: &str = "CLUSTER_TLS_CERT";
/// The certificate's private key (PEM); see [`TLS_CERT`].
pub const TLS_KEY: &str = "CLUSTER_TLS_KEY";
/// How long a client has to finish its TLS handshake, in seconds (whole or not), for
/// `TlsConfig::from_env`; default 10. Read by the program in every process, so workers keep it.
pub const TLS_HANDSHAKE_TIMEOUT: &str = "CLUSTER_TLS_HANDSHAKE_TIMEOUT";
/// How often the master makes a new TLS session-ticket key (the one before stays good for
/// tickets issued under it), in seconds. Default 43200 (12 hours).
pub const TLS_TICKET_ROTATION: &str = "CLUSTER_TLS_TICKET_ROTATION";
/// Set by a master in the environment of the new master an upgrade starts (`kill -USR2`,
/// `clusterctl upgrade`) to the descriptor number of their handover socket; unset otherwise.
pub const UPGRADE_FD: &str = "CLUSTER_UPGRADE_FD";
/// Set by the master in a worker's environment to the descriptor number of its metrics region
/// (see [`crate::shared_metrics`]).
pub const METRICS_FD: &str = "CLUSTER_METRICS_FD";
/// The worker count, 1 to 1024, like Gunicorn's `WEB_CONCURRENCY` (`Cluster::workers`);
/// default one per core.
pub const WORKERS: &str = "CLUSTER_WORKERS";
/// The scheduling policy: `rr`, `sticky`, `shared`, `reuseport` or `least`
/// (`Cluster::policy`); default `rr`.
pub const SCHED_POLICY: &str = "CLUSTER_SCHED_POLICY";
/// Seconds a stopping worker may take to finish before it is killed (`Timeouts::shutdown`);
/// default 30.
pub const SHUTDOWN_TIMEOUT: &str = "CLUSTER_SHUTDOWN_TIMEOUT";
/// Seconds a worker may stay silent (no heartbeat) before it is killed and replaced, at least
/// 6; `0` turns hang detection off (`Timeouts::hang`). Default 30.
pub const HANG_TIMEOUT: &str = "CLUSTER_HANG_TIMEOUT";
/// Seconds a worker may take from its start to serving, more than 0 (`Timeouts::boot`);
/// default 60.
pub const BOOT_TIMEOUT: &str = "CLUSTER_BOOT_TIMEOUT";
/// Seconds a reload's replacement may take to serve, more than 0 (`Timeouts::reload`);
/// default 30.
pub const RELOAD_TIMEOUT: &str = "CLUSTER_RELOAD_TIMEOUT";
/// Slots a rolling reload replaces at a time, at least 1 (`Cluster::reload_batch`); default 1.
pub const RELOAD_BATCH: &str = "CLUSTER_RELOAD_BATCH";
/// Seconds before the first restart of a worker that died (`RestartPolicy::initial_backoff`);
/// default 0.1.
pub const RESTART_BACKOFF: &str = "CLUSTER_RESTART_BACKOFF";
/// The longest wait in seconds before a restart (`RestartPolicy::max_backoff`); default 10.
pub const RESTART_MAX_BACKOFF: &str = "CLUSTER_RESTART_MAX_BACKOFF";
/// Seconds a worker must live to count as stable (`RestartPolicy::min_uptime`); default 1.
pub const MIN_UPTIME: &str = "CLUSTER_MIN_UPTIME";
/// Early deaths in a row before the master gives up (`RestartPolicy::max_restarts`);
/// default 10.
pub const MAX_RESTARTS: &str = "CLUSTER_MAX_RESTARTS";
/// A file the master appends worker stdout (and stderr, without [`ERROR_LOG_FILE`]) to
/// (`Cluster::log_file`).
pub const LOG_FILE: &str = "CLUSTER_LOG_FILE";
/// A file the master appends worker stderr to (`Cluster::error_log_file`).
pub const ERROR_LOG_FILE: &str = "CLUSTER_ERROR_LOG_FILE";
/// The master's control socket path for `clusterctl` (`Cluster::control_socket`); default
/// none.
pub const CONTROL_SOCKET: &str = "CLUSTER_CONTROL_SOCKET";
/// `HOST:PORT` where the master serves the cluster's metrics, `GET /metrics`
/// (`Cluster::metrics_addr`); default not served.
pub const METRICS_ADDR: &str = "CLUSTER_METRICS_ADDR";
/// `1` or `0`: workers say when they are ready ([`crate::Worker::ready`]) and get no
/// connections until then (`Cluster::wait_ready`); default `0`.
pub const WAIT_READY: &str = "CLUSTER_WAIT_READY";
/// Watch mode: `1` makes the master reload the workers when its executable changes; a list
/// of paths separated by `:` watches those too (directories recursively); `0`: off
/// (`Cluster::watch`). Default off.
pub const WATCH: &str = "CLUSTER_WATCH";
/// How the master writes its lines and its workers': `text` (`2|app | listening`) or `json`
/// (one object per line: `ts`, `level`, `worker`, `stream`, `msg`). Default text.
pub const LOG_FORMAT: &str = "CLUSTER_LOG_FORMAT";
/// A worker that has served this many requests is replaced, Gunicorn's `max_requests`; `0`:
/// never (`Recycling::max_requests`). Default 0.
pub const MAX_REQUESTS: &str = "CLUSTER_MAX_REQUESTS";
/// Up to this many more requests for each worker before it is replaced, Gunicorn's
/// `max_requests_jitter` (`Recycling::max_requests_jitter`); default a tenth of
/// [`MAX_REQUESTS`].
pub const MAX_REQUESTS_JITTER: &str = "CLUSTER_MAX_REQUESTS_JITTER";
/// A worker whose resident memory reaches this many bytes (`K`, `M`, `G` suffixes: 1024s) is
/// replaced, PM2's `max_memory_restart`; `0`: never (`Recycling::max_memory`). Default 0.
pub const MAX_MEMORY: &str = "CLUSTER_MAX_MEMORY";
/// The master's CPU scheduling: `batch` (default: `SCHED_BATCH`, so that its wake-ups do not
/// preempt a worker mid-request when the cores are busy; only from `SCHED_OTHER`) or `normal`
/// (as it was started).
pub const MASTER_SCHED: &str = "CLUSTER_MASTER_SCHED";
/// Set by a master that made itself `SCHED_BATCH` in its workers' environment (and a new
/// master's, in an upgrade), which its workers inherit: they return to `SCHED_OTHER`.
pub const MASTER_BATCHED: &str = "CLUSTER_MASTER_BATCHED";
/// Serving threads per worker; overrides `Runtime::worker_threads` (and
/// `#[clustered::main(worker_threads = N)]`); unset means the program's value, else 1.
pub const WORKER_THREADS: &str = "CLUSTER_WORKER_THREADS";
