//! Starting a worker process: re-execute this program with the worker's environment and its
//! end of a fresh socketpair mapped to a known descriptor number. Never `fork()` without `exec`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

use cluster_ipc::{Channel, Message, Outcome, Received, Receiver, Route, Sender};
use command_fds::{CommandFdExt, FdMapping};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::ClusterControl;
use super::event::{Event, WorkerKey};
use super::inbox::{Incoming, Request, send_to_worker};
use crate::Error;
use crate::role::{IPC_FD_ENV, WORKER_ID_ENV, WORKER_IPC_FD};
/// The program workers run: this executable, resolved once when the master starts (so a
/// rebuilt binary is what the next worker runs), and the master's own arguments.
#[derive(Debug, Clone)]
pub(super) struct Program {
    exe: PathBuf,
    args: Vec<OsString>,
}

impl Program {
    pub(super) fn current() -> Result<Program, Error> {
        Ok(Program {
            exe: std::env::current_exe().map_err(Error::CurrentExe)?,
            args: std::env::args_os().skip(1).collect(),
        })
    }
}

/// A started worker: its pid and the sending half of its IPC channel. Its reader and reaper
/// tasks report to the master's event queue.
///
/// Workers inherit the master's stdout and stderr, as in Node. Their stderr is deliberately not
/// relayed through the master: once the master died, every worker write would hit a broken
/// pipe, and `eprintln!` (which tracing-subscriber uses to report a failed write) panics on one.
pub(super) struct Spawned {
    pub(super) pid: u32,
    pub(super) sender: Sender,
}

pub(super) fn spawn_worker(
    program: &Program,
    slot: usize,
    key: WorkerKey,
    events: &mpsc::Sender<Event>,
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
        .env(WORKER_ID_ENV, slot.to_string())
        .env(IPC_FD_ENV, WORKER_IPC_FD.to_string())
        .stdin(Stdio::null())
        // Its own process group: a terminal's Ctrl-C reaches the master only, which decides.
        .process_group(0)
        // If the master's runtime is torn down without reaping, the worker dies with it.
        .kill_on_drop(true);
    command
        .fd_mappings(vec![FdMapping {
            parent_fd: theirs.into(),
            child_fd: WORKER_IPC_FD,
        }])
        .map_err(|collision| spawn_error(std::io::Error::other(collision)))?;
    let child = command.spawn().map_err(spawn_error)?;
    // Dropping the command closes the master's copy of the worker's end of the socketpair.
    drop(command);
    let pid = child.id().unwrap_or_default();
    let (sender, receiver) = Channel::from_std(ours)?.split();
    let reader = WorkerReader {
        worker: key,
        slot,
        replies: sender.clone(),
        events: events.clone(),
        control: control.clone(),
    };
    tokio::spawn(reader.run(receiver));
    tokio::spawn(reap_worker(key, child, events.clone()));
    Ok(Spawned { pid, sender })
}

/// Reads one worker's channel: messages for the master's inbox go straight there (waiting
/// while it is full, which throttles this worker only); everything else goes to the master's
/// event queue, then how the channel ended.
struct WorkerReader {
    worker: WorkerKey,
    slot: usize,
    replies: Sender,
    events: mpsc::Sender<Event>,
    control: ClusterControl,
}

impl WorkerReader {
    async fn run(self, mut receiver: Receiver) {
        let worker = self.worker;
        loop {
            let event = match receiver.recv().await {
                Ok(Some(received)) => match self.to_inbox(received).await {
                    None => continue,
                    Some(received) => Event::Message { worker, received },
                },
                Ok(None) => Event::ChannelClosed {
                    worker,
                    error: None,
                },
                Err(error) => Event::ChannelClosed {
                    worker,
                    error: Some(error),
                },
            };
            let closed = matches!(event, Event::ChannelClosed { .. });
            if self.events.send(event).await.is_err() || closed {
                return;
            }
        }
    }

    /// Delivers messages and requests for the master's inbox; gives anything else back.
    async fn to_inbox(&self, received: Received) -> Option<Received> {
        let from = self.slot;
        match received.message {
            Message::User {
                to: Route::Master,
                data,
                seq,
            } if received.fds.is_empty() => {
                let delivered = self
                    .control
                    .to_inbox(Incoming::Message { from, data })
                    .await;
                let outcome = match delivered {
                    Ok(()) => Outcome::Ok(serde_json::Value::Null),
                    Err(_) => {
                        tracing::debug!(
                            from,
                            "a message for the master's inbox, which nobody reads"
                        );
                        Outcome::Error("nobody reads the master's inbox".into())
                    }
                };
                if let Some(seq) = seq {
                    send_to_worker(&self.replies, Message::Reply { seq, outcome });
                }
                None
            }
            Message::Request { seq, data } if received.fds.is_empty() => {
                let request = Request::new(from, data, seq, self.replies.clone());
                if let Err(Incoming::Request(request)) =
                    self.control.to_inbox(Incoming::Request(request)).await
                {
                    request.fail("the master has no request handler (ClusterControl::inbox)");
                }
                None
            }
            _ => Some(received),
        }
    }
}

/// Waits for the worker process to exit and reports it; the master reaps every child.
async fn reap_worker(worker: WorkerKey, mut child: Child, events: mpsc::Sender<Event>) {
    let status = child.wait().await;
    let _ = events.send(Event::Exited { worker, status }).await;
}
