//! Which process this is: the master, or a worker started by a master.

use std::os::fd::RawFd;
use std::sync::OnceLock;

use crate::Error;

/// Set in a worker's environment to its slot number (1-based); unset in the master.
pub const WORKER_ID_ENV: &str = "CLUSTER_WORKER_ID";
/// Set in a worker's environment to the descriptor number of its IPC socket.
pub const IPC_FD_ENV: &str = "CLUSTER_IPC_FD";
/// The default worker count, like Gunicorn's `WEB_CONCURRENCY`; unset means one per core.
pub const WORKERS_ENV: &str = "CLUSTER_WORKERS";
/// Chooses the scheduling policy (`rr` or `sticky`) unless the builder set one.
pub const SCHED_POLICY_ENV: &str = "CLUSTER_SCHED_POLICY";
/// The descriptor number a master gives each worker's IPC socket.
pub(crate) const WORKER_IPC_FD: RawFd = 3;

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
    /// Reads the role from the environment: [`WORKER_ID_ENV`] set means worker.
    pub fn detect() -> Result<Role, Error> {
        let Some(id) = std::env::var_os(WORKER_ID_ENV) else {
            return Ok(Role::Master);
        };
        let id = parse_env(WORKER_ID_ENV, &id.to_string_lossy(), |id: usize| id >= 1)?;
        let ipc_fd = std::env::var(IPC_FD_ENV).unwrap_or_default();
        let ipc_fd = parse_env(IPC_FD_ENV, &ipc_fd, |fd: RawFd| fd >= 0)?;
        let pid = std::process::id();
        Ok(Role::Worker(WorkerEnv {
            info: WorkerInfo { id, pid },
            ipc_fd,
        }))
    }
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
