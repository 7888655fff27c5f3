//! Which process this is: the master, or a worker started by a master.

use std::os::fd::RawFd;
use std::sync::OnceLock;

use crate::Error;

/// The slot of the agent ([`crate::Cluster::agent`]): `CLUSTER_WORKER_ID=0`.
pub const AGENT_ID: usize = 0;
/// Set in a worker's environment to its slot number (1-based; [`AGENT_ID`] for the agent);
/// unset in the master.
pub const WORKER_ID_ENV: &str = "CLUSTER_WORKER_ID";
/// Set in a worker's environment to the descriptor number of its IPC socket.
pub const IPC_FD_ENV: &str = "CLUSTER_IPC_FD";
/// The default worker count, like Gunicorn's `WEB_CONCURRENCY`; unset means one per core.
pub const WORKERS_ENV: &str = "CLUSTER_WORKERS";
/// Seconds a worker may stay silent (no heartbeat) before it is killed and replaced, unless
/// the builder set it; `0` turns hang detection off. Unset means 30.
pub const HANG_TIMEOUT_ENV: &str = "CLUSTER_HANG_TIMEOUT";
/// Chooses the scheduling policy (`rr` or `sticky`) unless the builder set one.
pub const SCHED_POLICY_ENV: &str = "CLUSTER_SCHED_POLICY";
/// A file the master appends worker stdout (and stderr, without [`ERROR_LOG_FILE_ENV`]) to.
pub const LOG_FILE_ENV: &str = "CLUSTER_LOG_FILE";
/// A file the master appends worker stderr to.
pub const ERROR_LOG_FILE_ENV: &str = "CLUSTER_ERROR_LOG_FILE";
/// The master's control socket path (`clusterctl`); unset or empty: none.
pub const CONTROL_SOCKET_ENV: &str = "CLUSTER_CONTROL_SOCKET";
/// Set in a worker's environment to the descriptor number of its metrics region (see
/// [`crate::shared_metrics`]).
pub const METRICS_FD_ENV: &str = "CLUSTER_METRICS_FD";
/// `HOST:PORT` where the master serves the cluster's metrics (`GET /metrics`); unset or
/// empty: not served.
pub const METRICS_ADDR_ENV: &str = "CLUSTER_METRICS_ADDR";
/// `1` (or `true`): workers say when they are ready ([`crate::Worker::ready`]) and get no
/// connections until then, unless the builder set it.
pub const WAIT_READY_ENV: &str = "CLUSTER_WAIT_READY";
/// Watch mode: `1` makes the master reload the workers when its executable changes; a list
/// of paths separated by `:` watches those too (directories recursively). Unset, empty or
/// `0`: off, unless the builder set it.
pub const WATCH_ENV: &str = "CLUSTER_WATCH";
/// A worker that has served this many requests is replaced (Gunicorn's `max_requests`),
/// unless the builder set it.
pub const MAX_REQUESTS_ENV: &str = "CLUSTER_MAX_REQUESTS";
/// Up to this many more requests for each worker before it is replaced (Gunicorn's
/// `max_requests_jitter`); unset means a tenth of [`MAX_REQUESTS_ENV`].
pub const MAX_REQUESTS_JITTER_ENV: &str = "CLUSTER_MAX_REQUESTS_JITTER";
/// A worker whose resident memory passes this many bytes (`K`, `M`, `G` suffixes: 1024s) is
/// replaced (PM2's `max_memory_restart`), unless the builder set it.
pub const MAX_MEMORY_ENV: &str = "CLUSTER_MAX_MEMORY";
/// Serving threads per worker, unless the program sets them
/// (`Runtime::worker_threads`); unset means 1.
pub const WORKER_THREADS_ENV: &str = "CLUSTER_WORKER_THREADS";

/// Every variable this crate reads: what a worker removes from its environment (a user's own
/// `CLUSTER_*` variables stay).
const OWN_VARIABLES: [&str; 16] = [
    WORKER_ID_ENV,
    IPC_FD_ENV,
    METRICS_FD_ENV,
    WORKERS_ENV,
    HANG_TIMEOUT_ENV,
    SCHED_POLICY_ENV,
    LOG_FILE_ENV,
    ERROR_LOG_FILE_ENV,
    CONTROL_SOCKET_ENV,
    METRICS_ADDR_ENV,
    WAIT_READY_ENV,
    WATCH_ENV,
    MAX_REQUESTS_ENV,
    MAX_REQUESTS_JITTER_ENV,
    MAX_MEMORY_ENV,
    WORKER_THREADS_ENV,
];

/// The descriptor number a master gives each worker's IPC socket.
pub(crate) const WORKER_IPC_FD: RawFd = FIRST_FREE_FD;
/// The descriptor number a master gives each worker's metrics region.
pub(crate) const WORKER_METRICS_FD: RawFd = FIRST_FREE_FD + 1;

/// Who a worker is.
///
/// ```
/// // Outside a cluster worker there is none.
/// assert_eq!(cluster_core::WorkerInfo::current(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkerInfo {
    /// The worker's slot, from 1 to the worker count. A replacement takes its slot.
    pub id: usize,
    /// The worker's process id.
    pub pid: u32,
}

impl WorkerInfo {
    /// This process's worker identity, or `None` in the master (or outside a cluster).
    pub fn current() -> Option<WorkerInfo> {
        static CURRENT: OnceLock<Option<WorkerInfo>> = OnceLock::new();
        *CURRENT.get_or_init(|| match Role::detect() {
            Ok(Role::Worker(worker)) => Some(worker.info),
            _ => None,
        })
    }
}

/// The worker's view of its environment: who it is and where its IPC socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerEnv {
    /// Who this worker is.
    pub info: WorkerInfo,
    /// The inherited IPC socket's descriptor number.
    pub ipc_fd: RawFd,
    /// The inherited metrics region's descriptor number, if the master gave one.
    pub metrics_fd: Option<RawFd>,
}

/// The role of this process in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The process the user started: it spawns and supervises workers.
    Master,
    /// A worker started by the master.
    Worker(WorkerEnv),
}

impl Role {
    /// The role, read from the environment at the first call ([`WORKER_ID_ENV`] set means
    /// worker) and kept for the life of the process: a worker removes the cluster's variables
    /// from its environment once it has read them.
    pub fn detect() -> Result<Role, Error> {
        static DETECTED: OnceLock<Result<Role, EnvProblem>> = OnceLock::new();
        DETECTED
            .get_or_init(|| read_role().map_err(EnvProblem::from))
            .clone()
            .map_err(EnvProblem::into_error)
    }
}

fn read_role() -> Result<Role, Error> {
    let Some(id) = std::env::var_os(WORKER_ID_ENV) else {
        return Ok(Role::Master);
    };
    let id = parse_env(WORKER_ID_ENV, &id.to_string_lossy(), |_: usize| true)?;
    let ipc_fd = std::env::var(IPC_FD_ENV).unwrap_or_default();
    let ipc_fd = parse_env(IPC_FD_ENV, &ipc_fd, |fd: RawFd| fd >= 0)?;
    if ipc_fd < FIRST_FREE_FD {
        return Err(Error::Env {
            var: IPC_FD_ENV,
            value: ipc_fd.to_string(),
            reason: "the IPC socket is descriptor 3 or above (0, 1 and 2 are stdin, stdout and \
                     stderr)"
                .into(),
        });
    }
    let metrics_fd = std::env::var(METRICS_FD_ENV)
        .ok()
        .and_then(|fd| fd.trim().parse::<RawFd>().ok())
        .filter(|fd| *fd >= FIRST_FREE_FD && *fd != ipc_fd);
    let pid = std::process::id();
    Ok(Role::Worker(WorkerEnv {
        info: WorkerInfo { id, pid },
        ipc_fd,
        metrics_fd,
    }))
}

/// The first descriptor number that is not a standard stream.
const FIRST_FREE_FD: RawFd = 3;

/// An [`Error::Env`] kept where an `Error` cannot be (it is not `Clone`).
#[derive(Debug, Clone)]
struct EnvProblem {
    var: &'static str,
    value: String,
    reason: String,
}

impl From<Error> for EnvProblem {
    fn from(error: Error) -> Self {
        match error {
            Error::Env { var, value, reason } => EnvProblem { var, value, reason },
            other => EnvProblem {
                var: WORKER_ID_ENV,
                value: String::new(),
                reason: other.to_string(),
            },
        }
    }
}

impl EnvProblem {
    fn into_error(self) -> Error {
        Error::Env {
            var: self.var,
            value: self.value,
            reason: self.reason,
        }
    }
}

/// Removes this crate's variables ([`OWN_VARIABLES`]; not a user's own `CLUSTER_*` ones) from
/// a worker's environment once its role is read, so that programs the worker starts do not
/// take themselves for workers of this cluster, nor run with its settings.
///
/// Changing the environment races with any other thread reading it, so this is done only while
/// the process has a single thread: the `runtime` module calls it before it builds the runtime.
/// A worker started some other way (e.g. under `#[tokio::main]`, whose threads already run)
/// keeps the variables, and says so at debug level.
pub(crate) fn forget_cluster_env() {
    if !matches!(Role::detect(), Ok(Role::Worker(_))) {
        return;
    }
    let names: Vec<&str> = OWN_VARIABLES
        .into_iter()
        .filter(|name| std::env::var_os(name).is_some())
        .collect();
    if names.is_empty() {
        return;
    }
    if !single_threaded() {
        tracing::debug!("other threads run; the CLUSTER_* variables stay in the environment");
        return;
    }
    for name in names {
        // SAFETY: this process has one thread (checked just above, and no thread can start
        // meanwhile: starting one takes this thread), so nothing reads the environment
        // concurrently.
        unsafe { std::env::remove_var(name) };
    }
}

/// Whether this process runs one thread, from `/proc/self/task` (false when unknown).
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// Parses an environment variable's value, with a clear error naming it.
pub(crate) fn parse_env<T: std::str::FromStr + Copy>(
    var: &'static str,
    value: &str,
    valid: impl Fn(T) -> bool,
) -> Result<T, Error> {
    match value.trim().parse::<T>() {
        Ok(parsed) if valid(parsed) => Ok(parsed),
        _ => Err(Error::Env {
            var,
            value: value.to_owned(),
            reason: "expected a whole number in range".into(),
        }),
    }
}
