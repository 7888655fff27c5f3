//! Starting a worker process: re-execute this program with the worker's environment and its
//! end of a fresh socketpair mapped to a known descriptor number. Never `fork()` without `exec`.

use crate::env;
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clustered_ipc::{Channel, Sender};
use command_fds::{CommandFdExt, FdMapping};
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::output;
use super::reader::WorkerReader;
use super::report::Report;
use super::systemd::NOTIFY_VARIABLES;
use crate::Error;
use crate::log_format::LogFormat;
use crate::master::control::ClusterControl;
use crate::master::ids::WorkerKey;
use crate::master::inbox_routing::InboxRouting;
use crate::master::inherited::LISTEN_VARIABLES;
use crate::master::machine::Input;
use crate::master::process_exit::ProcessExit;
use crate::role::{WORKER_IPC_FD, WORKER_METRICS_FD};
use crate::shared_metrics::Region;

/// The program workers run: this executable, resolved once when the master starts (so a
/// rebuilt binary is what the next worker runs), and the master's own arguments.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    exe: PathBuf,
    args: Vec<OsString>,
    /// How its workers' output is shown.
    output: LogFormat,
}

/// How long a worker's exit waits for the last of its output to be relayed.
const RELAY_GRACE: Duration = Duration::from_millis(200);

impl Program {
    /// The executable's file name, which prefixes its workers' output.
    fn name(&self) -> String {
        self.exe.file_name().map_or_else(
            || "worker".into(),
            |name| name.to_string_lossy().into_owned(),
        )
    }

    /// The executable workers run.
    pub(crate) fn exe(&self) -> &std::path::Path {
        &self.exe
    }

    /// The arguments they get: the master's own.
    pub(crate) fn args(&self) -> &[OsString] {
        &self.args
    }

    /// This executable with this process's arguments, its workers' output shown as `output`.
    pub(crate) fn current(output: LogFormat) -> Result<Program, Error> {
        Ok(Program {
            exe: std::env::current_exe().map_err(Error::CurrentExe)?,
            args: std::env::args_os().skip(1).collect(),
            output,
        })
    }
}

/// A started worker: its pid and the sending half of its IPC channel. Its reader and reaper
/// tasks report to the driver.
///
/// Its stdout and stderr are pipes the master relays with a prefix (`output.rs`); the worker
/// writes to them through its sentinel, which never blocks on them nor fails when the master
/// is gone (`worker/sentinel.rs`).
pub(crate) struct Spawned {
    pub(crate) pid: u32,
    /// The process's pidfd, where the kernel has them.
    pub(crate) pidfd: Option<OwnedFd>,
    pub(crate) sender: Sender,
    /// Its metrics region, as the master maps it (none if it could not be made), which ends
    /// with its handoff acknowledgements.
    pub(crate) metrics: Option<Arc<Region>>,
}

pub(crate) fn spawn_worker(
    program: &Program,
    slot: usize,
    key: WorkerKey,
    reports: &mpsc::Sender<Report>,
    control: &ClusterControl,
) -> Result<Spawned, Error> {
    let spawn_error = |source| Error::Spawn {
        slot,
        exe: program.exe.clone(),
        source,
    };
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(spawn_error)?;
    let mut command = Command::new(&program.exe);
    command
        .args(&program.args)
        .env(env::WORKER_ID, slot.to_string())
        .env(env::IPC_FD, WORKER_IPC_FD.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches the master only, which decides.
        .process_group(0)
        // If the master's runtime is torn down without reaping, the worker dies with it.
        .kill_on_drop(true);
    // Only the master speaks to systemd, and only it was handed the listening sockets.
    for variable in NOTIFY_VARIABLES.iter().chain(&LISTEN_VARIABLES) {
        command.env_remove(variable);
    }
    command.env_remove(env::UPGRADE_FD);
    match control
        .registry()
        .fleet()
        .and_then(|fleet| fleet.agent_token)
    {
        Some(token) if slot == crate::role::AGENT_ID => {
            command.env(env::AGENT_TOKEN, token.to_string())
        }
        _ => command.env_remove(env::AGENT_TOKEN),
    };
    match crate::scheduling::master_batched() {
        true => command.env(env::MASTER_BATCHED, "1"),
        false => command.env_remove(env::MASTER_BATCHED),
    };
    let mut mappings = vec![FdMapping {
        parent_fd: theirs.into(),
        child_fd: WORKER_IPC_FD,
    }];
    let metrics = match Region::create() {
        Ok((region, fd)) => {
            command.env(env::METRICS_FD, WORKER_METRICS_FD.to_string());
            mappings.push(FdMapping {
                parent_fd: fd,
                child_fd: WORKER_METRICS_FD,
            });
            Some(Arc::new(region))
        }
        Err(error) => {
            tracing::warn!(slot, %error, "cannot make a metrics region; this worker's metrics will not be seen, and it acknowledges handoffs by frames");
            None
        }
    };
    command
        .fd_mappings(mappings)
        .map_err(|collision| spawn_error(std::io::Error::other(collision)))?;
    let mut child = command.spawn().map_err(spawn_error)?;
    let relays = output::relay(
        slot,
        &program.name(),
        program.output,
        child.stdout.take(),
        child.stderr.take(),
        control,
    );
    // Dropping the command closes the master's copies of the worker's end of the socketpair
    // and of its metrics region's descriptor.
    drop(command);
    let pid = child.id().unwrap_or_default();
    // Before the reaper task can reap it, so the pidfd names this process.
    let pidfd = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .and_then(|pid| pidfd_open(pid, PidfdFlags::empty()).ok());
    let (sender, receiver) = Channel::from_std(ours)?.split();
    let reader = WorkerReader {
        worker: key,
        routing: InboxRouting::new(key, slot, sender.clone()),
        replies: sender.clone(),
        reports: reports.clone(),
        control: control.clone(),
    };
    tokio::spawn(reader.run(receiver));
    tokio::spawn(reap_worker(key, child, relays, reports.clone()));
    Ok(Spawned {
        pid,
        pidfd,
        sender,
        metrics,
    })
}

/// Waits for the worker process to exit and reports it, after its last lines of output (for a
/// moment: a child of the worker may hold its pipes); the master reaps every child.
async fn reap_worker(
    worker: WorkerKey,
    mut child: Child,
    relays: Vec<JoinHandle<()>>,
    reports: mpsc::Sender<Report>,
) {
    let exit = ProcessExit::from_wait(&child.wait().await);
    let _ = tokio::time::timeout(RELAY_GRACE, futures_util::future::join_all(relays)).await;
    let _ = reports
        .send(Report::Input(Input::Exited { worker, exit }))
        .await;
}
