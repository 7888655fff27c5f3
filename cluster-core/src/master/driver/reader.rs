//! [`WorkerReader`]: the task that reads one worker's IPC channel.

use std::collections::VecDeque;

use cluster_ipc::{Message, Outcome, Received, Receiver, Route, Sender};
use tokio::sync::mpsc;

use super::report::Report;
use crate::master::control::ClusterControl;
use crate::master::ids::WorkerKey;
use crate::master::inbox::{Incoming, NotPut, Request, send_to_worker};
use crate::master::machine::Input;

/// Messages for a full inbox this reader holds while the worker is throttled; past it, what
/// the worker sent before the throttle reached it (or despite it) is refused: a request fails
/// and a receipt says so. The reader never stops reading, so the worker's heartbeats and
/// acknowledgements behind those messages are never delayed (it once stopped here, and a
/// flooding worker was killed as hung).
const MAX_HELD: usize = 4096;

/// Why a message past [`MAX_HELD`] is refused.
const INBOX_FULL: &str = "the master's inbox is full and this worker sent past its throttle";

/// Reads one worker's channel without ever waiting on anything else while frames are there:
/// messages and requests for the master's inbox go straight there, everything else goes to the
/// driver, then how the channel ended.
///
/// When the inbox is full, this worker's messages for it wait here, in order, and the worker
/// is told to hold the rest back (`throttle`) until they are in: so a slow inbox reader
/// throttles the workers that send to it, and never delays their heartbeats, the answers to
/// their handoffs or anything else they send.
pub(crate) struct WorkerReader {
    pub(crate) worker: WorkerKey,
    pub(crate) slot: usize,
    pub(crate) replies: Sender,
    pub(crate) reports: mpsc::Sender<Report>,
    pub(crate) control: ClusterControl,
}

/// A message or request waiting for room in the inbox, and the receipt it asked for.
struct Held {
    incoming: Incoming,
    receipt: Option<u64>,
}

impl WorkerReader {
    pub(crate) async fn run(self, mut receiver: Receiver) {
        let worker = self.worker;
        let mut held: VecDeque<Held> = VecDeque::new();
        loop {
            let received = tokio::select! {
                biased;
                room = self.control.inbox_slot().room(), if !held.is_empty() => {
                    self.release_one(&mut held, room);
                    continue;
                }
                received = receiver.recv() => received,
            };
            let input = match received {
                Ok(Some(received)) => match self.route(received, &mut held) {
                    None => continue,
                    Some(message) => Input::Message { worker, message },
                },
                Ok(None) => Input::ChannelClosed {
                    worker,
                    error: None,
                },
                Err(error) => Input::ChannelClosed {
                    worker,
                    error: Some(error),
                },
            };
            let closed = matches!(input, Input::ChannelClosed { .. });
            if self.reports.send(Report::Input(input)).await.is_err() || closed {
                return;
            }
        }
    }

    /// Puts the oldest held message in the inbox (or fails it, when nobody reads the inbox);
    /// the worker may send again once none is held.
    fn release_one(
        &self,
        held: &mut VecDeque<Held>,
        room: Option<tokio::sync::mpsc::Permit<'_, Incoming>>,
    ) {
        let Some(next) = held.pop_front() else {
            return;
        };
        match room {
            Some(permit) => {
                permit.send(next.incoming);
                self.receipt(next.receipt, Ok(()));
            }
            None => self.unread(next.incoming, next.receipt),
        }
        if held.is_empty() {
            self.throttle(false);
        }
    }

    /// Hands messages and requests for the master's inbox on; gives anything else back,
    /// without descriptors (a worker has none to send: they are closed here).
    fn route(
        &self,
        Received { message, fds }: Received,
        held: &mut VecDeque<Held>,
    ) -> Option<Message> {
        let from = self.slot;
        if !fds.is_empty() {
            tracing::warn!(
                slot = from,
                kind = message.kind(),
                "worker sent descriptors; closed them"
            );
            return Some(message);
        }
        let (incoming, receipt) = match message {
            Message::User {
                to: Route::Master,
                data,
                seq,
            } => (Incoming::Message { from, data }, seq),
            Message::Request { seq, data } => {
                let request = Request::new(from, data, seq, self.replies.clone());
                (Incoming::Request(request), None)
            }
            other => return Some(other),
        };
        if held.len() >= MAX_HELD {
            tracing::warn!(
                slot = from,
                "the master's inbox is full; refused a message of a worker sending past its throttle"
            );
            match incoming {
                Incoming::Request(request) => request.fail(INBOX_FULL),
                Incoming::Message { .. } => self.receipt(receipt, Err(INBOX_FULL)),
            }
            return None;
        }
        if !held.is_empty() {
            held.push_back(Held { incoming, receipt });
            return None;
        }
        match self.control.inbox_slot().try_put(incoming) {
            Ok(()) => self.receipt(receipt, Ok(())),
            Err(NotPut::Full(incoming)) => {
                tracing::debug!(
                    slot = from,
                    "the master's inbox is full; throttling the worker"
                );
                held.push_back(Held { incoming, receipt });
                self.throttle(true);
            }
            Err(NotPut::Unread(incoming)) => self.unread(incoming, receipt),
        }
        None
    }

    /// Nobody reads the master's inbox: a request fails, a receipt says so.
    fn unread(&self, incoming: Incoming, receipt: Option<u64>) {
        match incoming {
            Incoming::Request(request) => {
                request.fail("the master has no request handler (ClusterControl::inbox)");
            }
            Incoming::Message { from, .. } => {
                tracing::debug!(from, "a message for the master's inbox, which nobody reads");
                self.receipt(receipt, Err("nobody reads the master's inbox"));
            }
        }
    }

    fn receipt(&self, receipt: Option<u64>, delivered: Result<(), &str>) {
        if let Some(seq) = receipt {
            let outcome = match delivered {
                Ok(()) => Outcome::Ok(serde_json::Value::Null),
                Err(reason) => Outcome::Error(reason.into()),
            };
            send_to_worker(&self.replies, Message::Reply { seq, outcome }, Vec::new());
        }
    }

    fn throttle(&self, paused: bool) {
        send_to_worker(&self.replies, Message::Throttle { paused }, Vec::new());
    }
}
