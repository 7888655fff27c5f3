//! [`WorkerReader`]: the task that reads one worker's IPC channel.

use clustered_ipc::{Message, Outcome, Received, Receiver, Route, Sender};
use tokio::sync::mpsc;

use super::report::Report;
use crate::master::control::ClusterControl;
use crate::master::ids::WorkerKey;
use crate::master::inbox::{InboxItem, NotPut, UNREAD, credit};
use crate::master::machine::Input;
use crate::worker_request::{AnswerTo, WorkerRequest, send_to_worker};

/// Why a message or request past the worker's credit is refused.
const PAST_CREDIT: &str = "this worker sent past its credit for the master's inbox";

/// Reads one worker's channel without ever waiting on anything else while frames are there:
/// messages and requests for the master's inbox go straight into the worker's lane of it
/// (bounded by the credit the worker was given, so they never wait here), everything else goes
/// to the driver, then how the channel ended. So a slow inbox reader makes the worker wait
/// before it sends, and never delays its heartbeats, the answers to its handoffs or anything
/// else it sends.
pub(crate) struct WorkerReader {
    pub(crate) worker: WorkerKey,
    pub(crate) slot: usize,
    pub(crate) replies: Sender,
    pub(crate) reports: mpsc::Sender<Report>,
    pub(crate) control: ClusterControl,
}

impl WorkerReader {
    pub(crate) async fn run(self, mut receiver: Receiver) {
        let worker = self.worker;
        self.control.inbox_slot().join(worker, &self.replies);
        loop {
            let input = match receiver.recv().await {
                Ok(Some(received)) => match self.route(received) {
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
            if closed {
                self.control.inbox_slot().leave(worker);
            }
            if self.reports.send(Report::Input(input)).await.is_err() || closed {
                return;
            }
        }
    }

    /// Hands messages and requests for the master's inbox on; gives anything else back,
    /// without descriptors (a worker has none to send: they are closed here).
    fn route(&self, Received { message, fds }: Received) -> Option<Message> {
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
            } => (InboxItem::Message { from, data }, seq),
            Message::Request { seq, data } => {
                let answer = AnswerTo {
                    channel: self.replies.clone(),
                    id: seq,
                    frame: |seq, outcome| Message::Reply { seq, outcome },
                    answerer: "the master",
                };
                let request = WorkerRequest::new(from, data, answer);
                (InboxItem::Request(request), None)
            }
            other => return Some(other),
        };
        match self.control.inbox_slot().put(self.worker, incoming) {
            Ok(()) => self.receipt(receipt, Ok(())),
            Err(NotPut::Unread(incoming)) => self.refuse(incoming, receipt, UNREAD),
            Err(NotPut::PastCredit(incoming)) => {
                tracing::warn!(slot = from, "{PAST_CREDIT}; refused");
                self.refuse(incoming, receipt, PAST_CREDIT);
            }
        }
        None
    }

    /// Refuses a message or request for the inbox: a request fails, a receipt says so, and
    /// the worker gets its credit back, told how many were refused.
    fn refuse(&self, incoming: InboxItem, receipt: Option<u64>, why: &str) {
        let refused = incoming.refuse(why);
        if refused > 0 {
            self.receipt(receipt, Err(why));
        }
        credit(
            &self.replies,
            1,
            self.control.inbox_slot().is_read(),
            refused,
        );
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
}
