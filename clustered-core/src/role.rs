//! Which process this is: the master, or a worker started by a master.

use std::os::fd::RawFd;
use std::sync::OnceLock;

use crate::Error;
use crate::env;

/// The slot of the agent ([`crate::Cluster::agent`]): `CLUSTER_WORKER_ID=0`.
pub const AGENT_ID: usize = 0;
/// Every variable this crate reads: what a worker removes from its environment (a user's own
/// `CLUSTER_*` variables stay).
const OWN_VARIABLES: [&str; 30] = [
    env::WORKER_ID,
    env::LOG_FORMAT,
    env::IPC_FD,
    env::METRICS_FD,
    env::WORKERS,
    env::SCHED_POLICY,
    env::SHUTDOWN_TIMEOUT,
    env::HANG_TIMEOUT,
    env::BOOT_TIMEOUT,
    env::RELOAD_TIMEOUT,
    env::RELOAD_BATCH,
    env::RESTART_BACKOFF,
    env::RESTART_MAX_BACKOFF,
    env::MIN_UPTIME,
    env::MAX_RESTARTS,
    env::LOG_FILE,
    env::ERROR_LOG_FILE,
    env::CONTROL_SOCKET,
    env::PID_FILE,
    env::TLS_TICKET_ROTATION,
    env::UPGRADE_FD,
    env::METRICS_ADDR,
    env::WAIT_READY,
    env::WATCH,
    env::MAX_REQUESTS,
    env::MAX_REQUESTS_JITTER,
    env::MAX_MEMORY,
    env::WORKER_THREADS,
    env::MASTER_SCHED,
    env::MASTER_BATCHED,
];

/// The descriptor number a master gives each worker's IPC socket.
pub(crate) const WORKER_IPC_FD: RawFd = FIRST_FREE_FD;
/// The descriptor number a master gives each worker's metrics region.
pub(crate) const WORKER_METRICS_FD: RawFd = FIRST_FREE_FD + 1;

/// Who a worker is.
///
/// ```
/// // Outside a cluster worker there is none.
/// assert_eq!(clustered_core::WorkerInfo::current(), None);
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
pub(crate) struct WorkerEnv {
    /// Who this worker is.
    pub info: WorkerInfo,
    /// The inherited IPC socket's descriptor number.
    pub ipc_fd: RawFd,
    /// The inherited metrics region's descriptor number, if the master gave one.
    pub metrics_fd: Option<RawFd>,
    /// The master made itself `SCHED_BATCH`, which this worker inherited.
    pub master_batched: bool,
}

/// The role of this process in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The process the user started: it spawns and supervises workers.
    Master,
    /// A worker started by the master.
    Worker(WorkerEnv),
}

impl Role {
    /// The role, read from the environment at the first call ([`env::WORKER_ID`] set means
    /// worker) and kept for the life of the process: a worker removes the cluster's variables
    /// from its environment once it has read them.
    pub(crate) fn detect() -> Result<Role, Error> {
        static DETECTED: OnceLock<Result<Role, EnvProblem>> = OnceLock::new();
        DETECTED
            .get_or_init(|| read_role().map_err(EnvProblem::from))
            .clone()
            .map_err(EnvProblem::into_error)
    }
}

fn read_role() -> Result<Role, Error> {
    let Some(id) = std::env::var_os(env::WORKER_ID) else {
        return Ok(Role::Master);
    };
    let id = parse_env(
        env::WORKER_ID,
        &id.to_string_lossy(),
        |_: usize| true,
        "the slot is a whole number from 0 up (set by the master only)",
    )?;
    let ipc_fd = std::env::var(env::IPC_FD).unwrap_or_default();
    let ipc_fd = parse_env(
        env::IPC_FD,
        &ipc_fd,
        |fd: RawFd| fd >= 0,
        "the descriptor is a whole number from 0 to 2147483647 (set by the master only)",
    )?;
    if ipc_fd < FIRST_FREE_FD {
        return Err(Error::Env {
            var: env::IPC_FD,
            value: ipc_fd.to_string(),
            reason: "the IPC socket is descriptor 3 or above (0, 1 and 2 are stdin, stdout and \
                     stderr)"
                .into(),
        });
    }
    let metrics_fd = std::env::var(env::METRICS_FD)
        .ok()
        .and_then(|fd| fd.trim().parse::<RawFd>().ok())
        .filter(|fd| *fd >= FIRST_FREE_FD && *fd != ipc_fd);
    let pid = std::process::id();
    Ok(Role::Worker(WorkerEnv {
        info: WorkerInfo { id, pid },
        ipc_fd,
        metrics_fd,
        master_batched: std::env::var_os(env::MASTER_BATCHED).is_some(),
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
                var: env::WORKER_ID,
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

/// Parses an environment variable's value, with a clear error naming it and what is
/// `allowed`.
pub(crate) fn parse_env<T: std::str::FromStr + Copy>(
    var: &'static str,
    value: &str,
    valid: impl Fn(T) -> bool,
    allowed: &str,
) -> Result<T, Error> {
    match value.trim().parse::<T>() {
        Ok(parsed) if valid(parsed) => Ok(parsed),
        _ => Err(Error::Env {
            var,
            value: value.to_owned(),
            reason: allowed.into(),
        }),
    }
}
