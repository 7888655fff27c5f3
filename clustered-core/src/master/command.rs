//! What user code asks of the master ([`crate::ClusterControl`], [`crate::WorkerHandle`]), the
//! channel that carries it, and the [`Answer`] a command gets back.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use super::ids::WorkerKey;
use crate::sync::lock;

/// The most workers a cluster scales to.
pub const MAX_WORKERS: usize = 1024;

/// A change of the worker count at run time ([`crate::ClusterControl::scale`], `clusterctl
/// scale`, SIGTTIN and SIGTTOU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// This many workers.
    To(usize),
    /// This many more (or fewer, when negative).
    By(i64),
}

impl Scale {
    /// The worker count this asks for when there are `current`, within 1 to [`MAX_WORKERS`].
    pub fn target(self, current: usize) -> usize {
        let wanted = match self {
            Scale::To(count) => count,
            Scale::By(delta) => {
                let magnitude = usize::try_from(delta.unsigned_abs()).unwrap_or(usize::MAX);
                match delta < 0 {
                    true => current.saturating_sub(magnitude),
                    false => current.saturating_add(magnitude),
                }
            }
        };
        wanted.clamp(1, MAX_WORKERS)
    }
}

/// Which workers a message from master code goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Every live worker.
    All,
    /// One worker process.
    One(WorkerKey),
}

/// One request from user code to the master.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// A rolling reload (as SIGHUP).
    Reload,
    /// A graceful stop (as SIGTERM).
    Shutdown,
    /// Replace the worker serving this slot: it drains and exits, its successor starts at
    /// once (`clusterctl kill`).
    Restart(usize),
    /// Stop routing to this worker, let it finish and exit; it is not replaced.
    Disconnect(WorkerKey),
    /// User code signalled this worker itself: its exit is intended, it is not replaced.
    Release(WorkerKey),
    /// A user message from master code.
    Deliver { to: Target, data: serde_json::Value },
    /// Change the worker count.
    Scale(Scale),
    /// Start a new master from the executable on disk and hand over to it (as SIGUSR2).
    Upgrade,
    /// Every worker loads its TLS certificate again.
    ReloadCertificates,
}

/// What became of a command the master answers ([`crate::ClusterControl::reload`],
/// [`scale`](crate::ClusterControl::scale), [`restart`](crate::ClusterControl::restart),
/// [`shutdown`](crate::ClusterControl::shutdown), and `clusterctl`'s verbs): each says what it
/// did or why not, in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// Done; what was done.
    Done(Done),
    /// Refused, nothing changed; why (a reload is under way, no such worker…).
    Refused(String),
    /// Begun, and it failed; why (a reload aborted, the master stopped first…).
    Failed(String),
}

impl Answer {
    /// Whether the command was carried out.
    pub fn is_done(&self) -> bool {
        matches!(self, Answer::Done(_))
    }

    /// What the answer says.
    pub fn message(&self) -> &str {
        match self {
            Answer::Done(done) => &done.message,
            Answer::Refused(message) | Answer::Failed(message) => message,
        }
    }
}

/// `done: …`, `refused: …`, `failed: …`.
impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self {
            Answer::Done(_) => "done",
            Answer::Refused(_) => "refused",
            Answer::Failed(_) => "failed",
        };
        write!(f, "{word}: {}", self.message())
    }
}

/// What a command did: one line, and the facts a script wants (`clusterctl --json` gives
/// them as fields).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Done {
    /// What was done, in one line.
    pub message: String,
    /// A scale's worker count before and after.
    pub scaled: Option<(usize, usize)>,
    /// The workers a reload or a restart replaced, slot by slot.
    pub replaced: Vec<Replacement>,
    /// An upgrade's old and new master pids.
    pub upgraded: Option<(u32, u32)>,
}

impl Done {
    /// Done, saying `message`.
    pub(crate) fn saying(message: impl Into<String>) -> Self {
        Done {
            message: message.into(),
            ..Done::default()
        }
    }
}

impl fmt::Display for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// One worker replaced by a successor in its slot (by a reload or a restart).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Replacement {
    /// The slot.
    pub id: usize,
    /// The old worker's pid; `None` when the slot had none serving.
    pub old_pid: Option<u32>,
    /// The successor's pid.
    pub new_pid: u32,
}

/// The master's [`Answer`] to a command, once it comes (a reload's when the reload has
/// finished or failed, a scale's when the new workers serve). The command was sent when this
/// was made: dropping it changes nothing.
#[derive(Debug)]
pub struct PendingAnswer {
    receiver: oneshot::Receiver<Answer>,
}

impl Future for PendingAnswer {
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        Pin::new(&mut self.receiver).poll(cx).map(|answer| {
            answer.unwrap_or_else(|_| {
                Answer::Failed("no master answered (it is not running, or it stopped)".into())
            })
        })
    }
}

/// Where the master sends a command's answer (none for commands nobody waits on).
pub(crate) type AnswerTo = Option<oneshot::Sender<Answer>>;

/// The command channel: any number of senders, one master that takes the receiver.
#[derive(Debug)]
pub(crate) struct CommandBus {
    sender: mpsc::UnboundedSender<(Command, AnswerTo)>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<(Command, AnswerTo)>>>,
}

impl CommandBus {
    pub(crate) fn new() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
        }
    }

    /// Sends `command`, which has no answer; one sent when no master runs (yet, or any more)
    /// is dropped with it.
    pub(crate) fn send(&self, command: Command) {
        let _ = self.sender.send((command, None));
    }

    /// Sends `command`; its answer comes through the [`PendingAnswer`] (a failure saying so
    /// when no master runs, yet or any more).
    pub(crate) fn ask(&self, command: Command) -> PendingAnswer {
        let (answer, receiver) = oneshot::channel();
        let _ = self.sender.send((command, Some(answer)));
        PendingAnswer { receiver }
    }

    /// A sender for one worker's handle.
    pub(crate) fn sender(&self) -> CommandSender {
        CommandSender(self.sender.clone())
    }

    /// The master's end; there is one master per cluster, later calls get `None`.
    pub(crate) fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<(Command, AnswerTo)>> {
        lock(&self.receiver).take()
    }
}

/// Sends commands nobody waits an answer for (a worker handle's).
#[derive(Debug, Clone)]
pub(crate) struct CommandSender(mpsc::UnboundedSender<(Command, AnswerTo)>);

impl CommandSender {
    /// Sends `command`; one sent when no master runs any more is dropped with it.
    pub(crate) fn send(&self, command: Command) {
        let _ = self.0.send((command, None));
    }
}
