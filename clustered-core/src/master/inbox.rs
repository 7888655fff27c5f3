//! The master's inbox: user messages and requests from workers, for master-side code. Each
//! worker has a lane of it ([`FairQueue`]), bounded by the credit the worker was given: the
//! inbox's reader takes each worker's in the order it sent them, one worker's after another's
//! (a worker whose next is a request before those whose next is a message), and each one
//! taken gives its worker credit back (`inboxCredit`). So a slow reader makes the senders wait
//! before they send, a flood slows only the flooder, and nothing within a worker's credit is
//! ever refused.

use std::sync::Mutex;

use clustered_ipc::{INBOX_WINDOW, Message, Sender};
use tokio::sync::Notify;

use super::fair_queue::{FairQueue, Kind, Refusal, Taken};
use super::ids::WorkerKey;
use crate::error::IpcError;
use crate::sync::lock;
use crate::worker_request::{WorkerRequest, send_to_worker};

/// Something a worker sent to the master.
#[derive(Debug)]
#[non_exhaustive]
pub enum InboxItem {
    /// A message (`ipc::send`).
    Message {
        /// The sender's slot.
        from: usize,
        /// The message.
        data: serde_json::Value,
    },
    /// A request (`ipc::request`): answer it with [`WorkerRequest::reply`] or [`WorkerRequest::fail`].
    Request(WorkerRequest),
}

impl InboxItem {
    /// Refuses it, saying `why`; what its worker is to hear of it.
    pub(crate) fn refuse(self, why: &str) -> Refused {
        match self {
            InboxItem::Request(request) => Refused::Request(request.refusal(why)),
            InboxItem::Message { from, .. } => {
                tracing::debug!(from, "refused a message for the master's inbox: {why}");
                Refused::Message
            }
        }
    }
}

/// A refused [`InboxItem`], as its worker hears of it.
#[derive(Debug, PartialEq)]
pub(crate) enum Refused {
    /// A request: this reply fails it (to be sent to its worker).
    Request(Message),
    /// A message: it is lost; its sender hears through its credit (and its receipt).
    Message,
}

/// What the master's inbox receives, for master-side code. From
/// [`crate::ClusterControl::inbox`].
#[derive(Debug)]
pub struct Inbox {
    slot: std::sync::Arc<InboxSlot>,
}

impl Inbox {
    /// The next message or request; `None` once the master has stopped.
    ///
    /// One worker's come in the order it sent them (so a request sees that worker's earlier
    /// messages taken). Workers take turns, and one whose next is a request goes before those
    /// whose next is a message, so a flood from one worker does not hold up another's request.
    pub async fn recv(&mut self) -> Option<InboxItem> {
        self.slot.next().await
    }
}

impl Drop for Inbox {
    /// Nobody reads the inbox any more: what waits in it is refused (requests fail), and the
    /// workers are told, so they fail their sends at once.
    fn drop(&mut self) {
        self.slot.move_to(Reading::Gone, |_| true);
    }
}

/// Whether master code reads the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Nobody took it yet (messages for it are refused, requests fail).
    NotTaken,
    /// Master code took it.
    Taken,
    /// Master code dropped it.
    Gone,
    /// The master has stopped: the reader hears `None`.
    Closed,
}

/// Why a request fails that no master code will answer.
pub(crate) const UNREAD: &str = "nobody reads the master's inbox (ClusterControl::inbox)";

/// The inbox's state, shared by the workers' readers (which put) and master code (which takes
/// it once and reads).
#[derive(Debug)]
pub(crate) struct InboxSlot {
    state: Mutex<State>,
    /// Wakes the inbox's reader when something is queued, or the master stops.
    queued: Notify,
}

#[derive(Debug)]
struct State {
    queue: FairQueue<WorkerKey, InboxItem, Sender>,
    reading: Reading,
}

/// Why [`InboxSlot::put`] gave a message back.
#[derive(Debug)]
pub(crate) enum NotPut {
    /// Nobody reads the inbox.
    Unread(InboxItem),
    /// The worker sent past its credit (it does not speak the protocol right).
    PastCredit(InboxItem),
}

impl InboxSlot {
    pub(crate) fn new() -> Self {
        let capacity = usize::try_from(INBOX_WINDOW).unwrap_or(usize::MAX);
        Self {
            state: Mutex::new(State {
                queue: FairQueue::new(capacity),
                reading: Reading::NotTaken,
            }),
            queued: Notify::new(),
        }
    }

    /// The inbox, the first time; [`IpcError::AlreadyTaken`] after.
    pub(crate) fn take(self: &std::sync::Arc<Self>) -> Result<Inbox, IpcError> {
        if !self.move_to(Reading::Taken, |now| now == Reading::NotTaken) {
            return Err(IpcError::AlreadyTaken(
                "the master's inbox (ClusterControl::inbox)",
            ));
        }
        Ok(Inbox {
            slot: std::sync::Arc::clone(self),
        })
    }

    /// The worker `key` joined: it gets a lane, and learns whether the inbox is read.
    pub(crate) fn join(&self, key: WorkerKey, worker: &Sender) {
        let mut state = lock(&self.state);
        state.queue.open(key, worker.clone());
        credit(worker, 0, state.reading == Reading::Taken, 0);
    }

    /// The worker `key`'s channel ended: what it sent is still read, then its lane goes.
    pub(crate) fn leave(&self, key: WorkerKey) {
        lock(&self.state).queue.close(key);
    }

    /// Queues a worker's message or request; gives it back when nobody reads the inbox, or
    /// when the worker sent past its credit.
    pub(crate) fn put(&self, key: WorkerKey, incoming: InboxItem) -> Result<(), NotPut> {
        let mut state = lock(&self.state);
        if state.reading != Reading::Taken {
            return Err(NotPut::Unread(incoming));
        }
        let kind = match incoming {
            InboxItem::Request(_) => Kind::Urgent,
            InboxItem::Message { .. } => Kind::Bulk,
        };
        match state.queue.push(key, kind, incoming) {
            Ok(()) => {
                drop(state);
                self.queued.notify_one();
                Ok(())
            }
            Err(Refusal::Full(incoming)) => Err(NotPut::PastCredit(incoming)),
            Err(Refusal::NoLane(incoming)) => Err(NotPut::Unread(incoming)),
        }
    }

    /// Whether master code reads the inbox now.
    pub(crate) fn is_read(&self) -> bool {
        lock(&self.state).reading == Reading::Taken
    }

    /// The master has stopped: the inbox's reader takes what waits in it, then hears `None`.
    pub(crate) fn close(&self) {
        self.move_to(Reading::Closed, |_| true);
    }

    /// The next item for the inbox's reader, giving its worker credit back when due.
    async fn next(&self) -> Option<InboxItem> {
        loop {
            let notified = self.queued.notified();
            {
                let mut state = lock(&self.state);
                if let Some(Taken { item, credit: due }) = state.queue.pop() {
                    if let Some((granted, worker)) = due {
                        credit(&worker, granted, state.reading == Reading::Taken, 0);
                    }
                    return Some(item);
                }
                if state.reading == Reading::Closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Moves the inbox to `reading` if it is in a state `from` allows (never out of
    /// `Closed`), telling every worker whether it is read now; when master code dropped it,
    /// what waits in it is refused (requests fail, saying why). Whether it moved.
    fn move_to(&self, reading: Reading, from: impl Fn(Reading) -> bool) -> bool {
        let mut state = lock(&self.state);
        if state.reading == Reading::Closed || !from(state.reading) {
            return false;
        }
        state.reading = reading;
        let open = reading == Reading::Taken;
        if reading == Reading::Gone {
            // One credit each: what each lane held is refused, what was taken is owed.
            for (worker, items, owed) in state.queue.drain() {
                let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
                let mut refused = 0u32;
                for item in items {
                    match item.refuse(UNREAD) {
                        Refused::Request(failure) => send_to_worker(&worker, failure, Vec::new()),
                        Refused::Message => refused = refused.saturating_add(1),
                    }
                }
                credit(&worker, count.saturating_add(owed), open, refused);
            }
        } else {
            for worker in state.queue.owners() {
                credit(worker, 0, open, 0);
            }
        }
        drop(state);
        self.queued.notify_one();
        true
    }
}

/// Gives `worker` back `granted` credit (`refused` of it for refused messages), saying whether
/// the inbox is read.
pub(crate) fn credit(worker: &Sender, granted: u32, open: bool, refused: u32) {
    send_to_worker(worker, credit_message(granted, open, refused), Vec::new());
}

/// The frame that gives a worker back `granted` credit (`refused` of it for refused messages),
/// saying whether the inbox is read.
pub(crate) fn credit_message(granted: u32, open: bool, refused: u32) -> Message {
    Message::InboxCredit {
        granted,
        open,
        refused,
    }
}
