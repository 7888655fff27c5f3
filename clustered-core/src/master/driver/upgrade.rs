//! The driver's side of an upgrade of the master (what is said: `master/handover.rs`).
//!
//! On the old master, [`NewMaster`] starts the new one from the executable on disk, with the
//! listening, control and admin sockets as systemd hands sockets over (descriptors from 3 up,
//! `LISTEN_FDS`, `LISTEN_FDNAMES`) and the handover socket after them (`CLUSTER_UPGRADE_FD`),
//! in a process group of its own and never killed with this one, and tells the machine what
//! the new master says. On the new master, [`OldMaster`] is its end towards the master it takes
//! over from: it says hello and when it serves, adopts the state that comes back, and applies
//! the old master's draining workers' counter operations.

use std::collections::HashMap;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clustered_ipc::{CounterOp, Outcome};
use command_fds::{CommandFdExt, FdMapping};
use futures_util::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::report::Report;
use super::spawn::Program;
use crate::env;
use crate::master::control::ClusterControl;
use crate::master::handover::{self, HANDOVER_VERSION, HandoverMessage};
use crate::master::ids::WorkerKey;
use crate::master::inherited::LISTEN_VARIABLES;
use crate::master::machine::Input;
use crate::master::process_exit::ProcessExit;
use crate::shared_metrics::MetricTotal;
use crate::sync::lock;

/// The first descriptor of the handed-over sockets (`SD_LISTEN_FDS_START`).
const FIRST_FD: i32 = 3;

/// How long the old master waits, as it exits, for its last totals to reach the new one.
const FINAL_GRACE: Duration = Duration::from_secs(2);

/// The frames coming from the other master.
type Frames = FramedRead<tokio::net::unix::OwnedReadHalf, tokio_util::codec::LengthDelimitedCodec>;

/// The next message from the other master (or why it is not one); `None` once it hung up.
async fn next_message(frames: &mut Frames) -> Option<Result<HandoverMessage, String>> {
    let frame = frames.next().await?;
    Some(
        frame
            .map_err(|error| error.to_string())
            .and_then(|frame| handover::decode(&frame)),
    )
}

/// Counter operations forwarded to the new master and not answered yet, by id.
type Forwarded = Arc<Mutex<HashMap<u64, (WorkerKey, u64)>>>;

/// One master's end of the handover socket: what it sends, and the counter operations it
/// forwarded to the other master (the one whose counters are the cluster's: the old master
/// until it hands over, the new one after).
pub(crate) struct HandoverLink {
    to_peer: mpsc::UnboundedSender<HandoverMessage>,
    forwarded: Forwarded,
    next_id: u64,
}

impl HandoverLink {
    fn new(to_peer: mpsc::UnboundedSender<HandoverMessage>, forwarded: Forwarded) -> Self {
        Self {
            to_peer,
            forwarded,
            next_id: 0,
        }
    }

    fn send(&self, message: HandoverMessage) {
        let _ = self.to_peer.send(message);
    }

    /// Forwards a worker's counter operation; its answer comes back as an input.
    pub(crate) fn forward_counter(
        &mut self,
        worker: WorkerKey,
        seq: u64,
        name: String,
        op: CounterOp,
    ) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        lock(&self.forwarded).insert(id, (worker, seq));
        self.send(HandoverMessage::Counter { id, name, op });
    }

    /// Answers the other master's counter operation `id`.
    pub(crate) fn answer_counter(&self, id: u64, outcome: Outcome) {
        self.send(HandoverMessage::CounterDone { id, outcome });
    }
}

/// The input for a counter message from the other master (an operation to apply, or the
/// answer to one forwarded: none when nobody waits for it), if `message` is one.
fn counter_input(message: &HandoverMessage, forwarded: &Forwarded) -> Option<Option<Input>> {
    match message {
        HandoverMessage::Counter { id, name, op } => Some(Some(Input::ForeignCounter {
            id: *id,
            name: name.clone(),
            op: *op,
        })),
        HandoverMessage::CounterDone { id, outcome } => Some(lock(forwarded).remove(id).map(
            |(worker, seq)| Input::ForwardedCounter {
                worker,
                seq,
                outcome: outcome.clone(),
            },
        )),
        _ => None,
    }
}

/// Fails the counter operations the other master will not answer now that it hung up.
async fn fail_forwarded(forwarded: &Forwarded, reports: &mpsc::Sender<Report>) {
    let unanswered: Vec<_> = lock(forwarded)
        .drain()
        .map(|(_, waiting)| waiting)
        .collect();
    for (worker, seq) in unanswered {
        let outcome = Outcome::Error("the other master is gone; the counter is lost".into());
        let input = Input::ForwardedCounter {
            worker,
            seq,
            outcome,
        };
        let _ = reports.send(Report::Input(input)).await;
    }
}

/// The old master's end towards the new master of an upgrade.
pub(crate) struct NewMaster {
    pid: u32,
    link: HandoverLink,
    writer: JoinHandle<()>,
}

impl NewMaster {
    /// Starts the new master with `sockets` (named; a listen key, or the admin or control
    /// socket's name); what it says reaches the machine through `reports`.
    pub(crate) fn start(
        program: &Program,
        sockets: Vec<(String, OwnedFd)>,
        reports: mpsc::Sender<Report>,
    ) -> io::Result<Self> {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let count = i32::try_from(sockets.len()).unwrap_or(i32::MAX);
        let handover_fd = FIRST_FD.saturating_add(count);
        let names: Vec<String> = sockets
            .iter()
            .map(|(name, _)| handover::escape_name(name))
            .collect();
        let mut mappings: Vec<FdMapping> = sockets
            .into_iter()
            .zip(FIRST_FD..)
            .map(|((_, fd), child_fd)| FdMapping {
                parent_fd: fd,
                child_fd,
            })
            .collect();
        mappings.push(FdMapping {
            parent_fd: theirs.into(),
            child_fd: handover_fd,
        });
        let mut command = tokio::process::Command::new(program.exe());
        command
            .args(program.args())
            .stdin(Stdio::null())
            // Its own process group: a terminal's Ctrl-C to this master does not reach it.
            .process_group(0)
            // It outlives this master: that is the point.
            .kill_on_drop(false);
        // The sockets are told afresh, and the new master feeds systemd's watchdog itself
        // (`NOTIFY_SOCKET` and `WATCHDOG_USEC` stay: it is the service's main process next).
        for variable in LISTEN_VARIABLES.iter().chain(&["WATCHDOG_PID"]) {
            command.env_remove(variable);
        }
        command
            .env("LISTEN_FDS", count.to_string())
            .env("LISTEN_FDNAMES", names.join(":"))
            .env(env::UPGRADE_FD, handover_fd.to_string())
            .envs(crate::scheduling::master_batched().then_some((env::MASTER_BATCHED, "1")))
            .fd_mappings(mappings)
            .map_err(io::Error::other)?;
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or_default();
        drop(command);
        let (to_new, outgoing) = mpsc::unbounded_channel();
        ours.set_nonblocking(true)?;
        let (read, write) = UnixStream::from_std(ours)?.into_split();
        let writer = tokio::spawn(write_frames(write, outgoing));
        let forwarded = Forwarded::default();
        let link = HandoverLink::new(to_new, Arc::clone(&forwarded));
        tokio::spawn(read_new_master(
            FramedRead::new(read, handover::codec()),
            pid,
            Arc::clone(&forwarded),
            reports.clone(),
        ));
        tokio::spawn(async move {
            let exit = ProcessExit::from_wait(&child.wait().await);
            let reason = format!("the new master (pid {pid}) exited: {exit}");
            let _ = reports
                .send(Report::Input(Input::UpgradeFailed { reason }))
                .await;
        });
        tracing::info!(pid, "started the new master");
        Ok(Self { pid, link, writer })
    }

    /// The handover socket towards the new master.
    pub(crate) fn link(&mut self) -> &mut HandoverLink {
        &mut self.link
    }

    /// Kills the new master of an upgrade that failed (its workers die with it).
    pub(crate) fn kill(&self) {
        if let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }

    /// Hands over this master's state.
    pub(crate) fn hand_over(&self, message: HandoverMessage) {
        self.link.send(message);
    }

    /// Sends this master's last totals as it exits, and waits (briefly) for them to go.
    pub(crate) async fn finish(self, metrics: Vec<MetricTotal>) {
        self.link.send(HandoverMessage::Final { metrics });
        drop(self.link);
        let _ = tokio::time::timeout(FINAL_GRACE, self.writer).await;
    }
}

/// Writes every message it is given as a frame, until the senders are gone.
async fn write_frames(
    write: tokio::net::unix::OwnedWriteHalf,
    mut outgoing: mpsc::UnboundedReceiver<HandoverMessage>,
) {
    let mut frames = FramedWrite::new(write, handover::codec());
    while let Some(message) = outgoing.recv().await {
        if let Err(error) = frames.send(handover::encode(&message)).await {
            tracing::warn!(%error, "the handover socket failed; the rest is not sent");
            return;
        }
    }
}

/// Tells the machine what the new master says; once it hangs up, fails the counter
/// operations it did not answer.
async fn read_new_master(
    mut frames: Frames,
    pid: u32,
    forwarded: Forwarded,
    reports: mpsc::Sender<Report>,
) {
    while let Some(message) = next_message(&mut frames).await {
        let input = match message {
            Ok(message) => match counter_input(&message, &forwarded) {
                Some(Some(input)) => input,
                Some(None) => continue,
                None => match message {
                    HandoverMessage::Hello { version, .. } => {
                        match handover::refuse_version(version) {
                            Some(reason) => Input::UpgradeFailed { reason },
                            None => continue,
                        }
                    }
                    HandoverMessage::Serving => Input::NewMasterServing {
                        old_pid: std::process::id(),
                        new_pid: pid,
                    },
                    other => {
                        tracing::debug!(
                            ?other,
                            "a handover message the old master does not take; ignored"
                        );
                        continue;
                    }
                },
            },
            Err(reason) => Input::UpgradeFailed { reason },
        };
        if reports.send(Report::Input(input)).await.is_err() {
            return;
        }
    }
    // A new master that hangs up has exited (its exit status says how, and fails the
    // upgrade), or is killed at the boot deadline.
    fail_forwarded(&forwarded, &reports).await;
}

/// The new master's end towards the master it takes over from.
pub(crate) struct OldMaster {
    link: HandoverLink,
    said_serving: bool,
}

impl OldMaster {
    /// The handover socket `CLUSTER_UPGRADE_FD` names, when an upgrade started this master;
    /// says hello and starts reading (what comes reaches the driver through `reports`).
    pub(crate) fn from_env(control: ClusterControl, reports: mpsc::Sender<Report>) -> Option<Self> {
        let fd: i32 = std::env::var(env::UPGRADE_FD).ok()?.trim().parse().ok()?;
        let socket = match take_socket(fd) {
            Ok(socket) => socket,
            Err(error) => {
                tracing::error!(fd, %error, "the handover socket cannot be used; the old master's state is lost");
                return None;
            }
        };
        let (read, write) = socket.into_split();
        let (to_old, outgoing) = mpsc::unbounded_channel();
        tokio::spawn(write_frames(write, outgoing));
        let forwarded = Forwarded::default();
        tokio::spawn(read_old_master(
            FramedRead::new(read, handover::codec()),
            control,
            Arc::clone(&forwarded),
            reports,
        ));
        let link = HandoverLink::new(to_old, forwarded);
        link.send(HandoverMessage::Hello {
            version: HANDOVER_VERSION,
            pid: std::process::id(),
        });
        Some(Self {
            link,
            said_serving: false,
        })
    }

    /// The handover socket towards the old master.
    pub(crate) fn link(&mut self) -> &mut HandoverLink {
        &mut self.link
    }

    /// Every worker serves: the old master may hand over (said once).
    pub(crate) fn serving(&mut self) {
        if !std::mem::replace(&mut self.said_serving, true) {
            self.link.send(HandoverMessage::Serving);
        }
    }
}

/// Descriptor `fd` as the handover socket, made close-on-exec (nothing this master starts
/// inherits it).
fn take_socket(fd: i32) -> io::Result<UnixStream> {
    // SAFETY: the old master handed this descriptor to this process for this use only; the
    // variable is read once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
    let stream = std::os::unix::net::UnixStream::from(owned);
    stream.set_nonblocking(true)?;
    UnixStream::from_std(stream)
}

/// Adopts what the old master hands over: its state (then the driver opens the control and
/// admin sockets), its draining workers' counter operations, its last totals.
async fn read_old_master(
    mut frames: Frames,
    control: ClusterControl,
    forwarded: Forwarded,
    reports: mpsc::Sender<Report>,
) {
    let mut adopted = false;
    while let Some(message) = next_message(&mut frames).await {
        if let Ok(message) = &message
            && let Some(input) = counter_input(message, &forwarded)
        {
            if let Some(input) = input
                && reports.send(Report::Input(input)).await.is_err()
            {
                return;
            }
            continue;
        }
        let report = match message {
            Ok(HandoverMessage::State {
                counters,
                restarts,
                metrics,
                handoffs,
                ticket_keys,
                socket_files,
            }) => {
                control.metrics().inherit(metrics);
                control.registry().inherit_restarts(restarts);
                control.registry().inherit_handoffs(handoffs);
                adopted = true;
                tracing::info!(
                    counters = counters.len(),
                    "took over the old master's state"
                );
                Report::Adopted {
                    counters,
                    ticket_keys,
                    socket_files,
                }
            }
            Ok(HandoverMessage::Final { metrics }) => {
                control.metrics().inherit(metrics);
                continue;
            }
            Ok(other) => {
                tracing::debug!(
                    ?other,
                    "a handover message the new master does not take; ignored"
                );
                continue;
            }
            Err(reason) => {
                tracing::warn!("{reason}; ignored");
                continue;
            }
        };
        if reports.send(report).await.is_err() {
            return;
        }
    }
    fail_forwarded(&forwarded, &reports).await;
    if !adopted {
        tracing::warn!(
            "the old master hung up before it handed over its state; counters start from zero"
        );
        let _ = reports
            .send(Report::Adopted {
                counters: Default::default(),
                ticket_keys: None,
                socket_files: Vec::new(),
            })
            .await;
    }
}
