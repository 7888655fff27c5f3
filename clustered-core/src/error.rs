//! The error type of the cluster's processes.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use clustered_ipc::WireError;

use crate::limits::is_out_of_resources;

impl Error {
    /// Whether this error says the process or the system is out of descriptors or memory (a
    /// spawn that fails so is retried, never counted as a crash of the program).
    pub fn is_out_of_resources(&self) -> bool {
        match self {
            Error::Spawn { source, .. } | Error::Bind { source, .. } => is_out_of_resources(source),
            Error::Ipc(IpcError::Channel(WireError::Io(source))) => is_out_of_resources(source),
            _ => false,
        }
    }
}

impl From<WireError> for Error {
    fn from(error: WireError) -> Self {
        Error::Ipc(IpcError::Channel(error))
    }
}

/// `: its last error output:` and the lines, indented, or nothing without lines.
fn last_lines(lines: &[String]) -> String {
    match lines.is_empty() {
        true => String::new(),
        false => format!("; its last error output:\n  {}", lines.join("\n  ")),
    }
}

/// `100 B`, `5.2 MiB`: a size for people (powers of 1024).
pub(crate) fn bytes(count: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut size = count as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

/// A boxed error from user code (a worker's main function).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can stop a master or a worker. Each message says what failed and, where it helps, what
/// to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An address could not be bound (port taken, no permission, not an address).
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address as given.
        address: String,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A worker process could not be started.
    #[error("cannot start worker {slot} from {}: {source}", exe.display())]
    Spawn {
        /// The worker slot.
        slot: usize,
        /// The executable the master tried to run.
        exe: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The master could not find its own executable to re-execute.
    #[error("cannot find this program's executable to start workers: {0}")]
    CurrentExe(io::Error),
    /// An environment variable has a value that cannot be used.
    #[error("invalid {var}={value:?}: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A setting given to the builder is out of its range.
    #[error("invalid {method}({value}): {reason}")]
    Setting {
        /// The builder method.
        method: &'static str,
        /// The value it was given.
        value: String,
        /// What is allowed.
        reason: String,
    },
    /// The memory limit is below what a fresh worker holds: every worker would be recycled
    /// forever.
    #[error(
        "max-memory of {} ({from}) is below a fresh worker's resident memory ({}): set it above that, or to 0 to turn memory recycling off",
        bytes(*limit),
        bytes(*rss)
    )]
    MaxMemoryTooLow {
        /// The limit, in bytes.
        limit: u64,
        /// Where it came from: `CLUSTER_MAX_MEMORY` or `Cluster::max_memory`.
        from: &'static str,
        /// A fresh worker's resident memory, in bytes.
        rss: u64,
    },
    /// A call to the master failed: joining it, or asking it for a listener.
    #[error(transparent)]
    Ipc(#[from] IpcError),
    /// The master answered a listen request with an error.
    #[error("the master cannot serve {address}: {message}")]
    ServerRefused {
        /// The address asked for.
        address: String,
        /// The master's reason.
        message: String,
    },
    /// The control socket could not be opened, or a peer on it failed (`clusterctl`'s side
    /// too).
    #[error("control socket {}: {reason}", path.display())]
    ControlSocket {
        /// The socket's path.
        path: PathBuf,
        /// What went wrong, and what to do.
        reason: String,
    },
    /// Watch mode (`CLUSTER_WATCH`) cannot watch a path.
    #[error("watch mode cannot watch {}: {reason} (check CLUSTER_WATCH's paths)", path.display())]
    Watch {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The metrics address (`CLUSTER_METRICS_ADDR`) could not be bound.
    #[error(
        "cannot serve metrics on {address}: {source} (set CLUSTER_METRICS_ADDR to a free HOST:PORT, or port 0)"
    )]
    MetricsBind {
        /// The address as given.
        address: String,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A setting asks for what this build left out (a Cargo feature of `clustered`).
    #[error(
        "{setting} is not in this build: turn on the `{feature}` feature of clustered in Cargo.toml, or unset it"
    )]
    FeatureOff {
        /// The setting, with its variable and builder method.
        setting: &'static str,
        /// The feature that brings it.
        feature: &'static str,
    },
    /// The pid file (`CLUSTER_PID_FILE`) could not be written.
    #[error("cannot write the pid file {}: {source} (check CLUSTER_PID_FILE)", path.display())]
    PidFile {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A log file (`CLUSTER_LOG_FILE`, `CLUSTER_ERROR_LOG_FILE`) could not be opened.
    #[error("cannot open the log file {0}")]
    LogFile(io::Error),
    /// The master answered with a message of the wrong kind.
    #[error("the master answered with an unexpected `{kind}` message")]
    UnexpectedReply {
        /// The kind received.
        kind: &'static str,
    },
    /// The worker is stopping and takes no new listeners.
    #[error("this worker is stopping and cannot start listening")]
    Draining,
    /// A worker kept dying soon after starting: the master gave up instead of spinning.
    #[error(
        "worker {slot} (pid {pid}) died {early_deaths} times in a row within {min_uptime:?} of starting, last with {status}; giving up{}",
        last_lines(last_output)
    )]
    CrashLoop {
        /// The slot.
        slot: usize,
        /// The last worker's process id (0 if it could not be started).
        pid: u32,
        /// How it ended, e.g. `exit code 3`.
        status: String,
        /// Early deaths in a row.
        early_deaths: u32,
        /// The uptime under which a death counts as early.
        min_uptime: Duration,
        /// The last lines the slot's workers wrote to stderr, oldest first.
        last_output: Vec<String>,
    },
    /// The workers of a slot were killed at their boot deadline several times in a row: the
    /// program never comes to serve (it never listens, or never says it is ready).
    #[error(
        "{reason}; {count} times in a row, giving up{}",
        last_lines(last_output)
    )]
    BootTimeouts {
        /// The slot.
        slot: usize,
        /// Boot timeouts in a row.
        count: u32,
        /// What the last worker failed to do, and what to do about it.
        reason: String,
        /// The last lines the slot's workers wrote to stderr, oldest first.
        last_output: Vec<String>,
    },
    /// [`crate::Cluster::run`] was called twice for the same cluster in one process.
    #[error("this cluster's master is already running in this process")]
    AlreadyRunning,
    /// Workers did not stop within the shutdown timeout and were killed.
    #[error("{count} worker(s) did not stop within {timeout:?} and were killed")]
    ShutdownTimeout {
        /// How many were killed.
        count: usize,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// A second stop signal arrived during the graceful stop: the workers were killed.
    #[error("stopped at once by a second signal; {count} worker(s) killed")]
    ForcedStop {
        /// How many were killed.
        count: usize,
    },
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signal(io::Error),
    /// The worker's own code failed.
    #[error("worker failed: {0}")]
    Worker(BoxError),
}

/// What a messaging call can fail with: [`crate::ipc`], [`crate::agent`], the master's
/// [`crate::Inbox`] and [`crate::WorkerHandle::send`]. Each variant is something the caller can
/// act on: retry later, wait, give up, or fix the program.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    /// Called outside a worker process (for [`crate::agent::requests`]: outside the agent).
    #[error("cluster IPC is only available in a worker process started by a cluster master")]
    NotAWorker,
    /// The master is gone: this worker is draining and will exit.
    #[error("the master process went away")]
    MasterGone,
    /// The send queue is full, or this worker is as far ahead of the master's inbox as it may
    /// be; nothing was sent. Retry later, or use the waiting variant (`send_wait`…).
    #[error("the IPC send queue is full; retry later or use an awaiting variant")]
    Backpressure,
    /// Nobody reads the master's inbox; nothing was sent.
    #[error(
        "nobody reads the master's inbox (take it with ClusterControl::inbox in Cluster::on_master); not sent"
    )]
    InboxUnread,
    /// No answer came in time.
    #[error("no answer to `{what}` within {after:?}")]
    Timeout {
        /// What was asked.
        what: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// The other side answered with an error: the master's request handler, the agent, or the
    /// master saying that no agent runs or that the worker asked for is dead.
    #[error("answered with an error: {0}")]
    Remote(String),
    /// A message could not be turned into JSON, or JSON into the expected type.
    #[error("cannot convert the message: {0}")]
    Json(#[from] serde_json::Error),
    /// Something there is one of per process was asked for a second time.
    #[error("{0} was already taken; there is one per process")]
    AlreadyTaken(&'static str),
    /// The fleet's Redis is unreachable: a fleet broadcast was not sent (HTTP and local IPC
    /// go on; use `broadcast_local` for this master's workers alone).
    #[error(
        "the fleet's Redis is unreachable; the broadcast was not sent: retry once it is back, or use broadcast_local"
    )]
    FleetDown,
    /// The channel to the master failed, or refused the message (one larger than its frame
    /// limit, say).
    #[error("IPC with the master failed: {0}")]
    Channel(#[from] WireError),
}
