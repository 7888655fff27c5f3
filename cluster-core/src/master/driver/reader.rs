//! [`WorkerReader`]: the task that reads one worker's IPC channel.

use cluster_ipc::{Message, Outcome, Received, Receiver, Route, Sender};
use tokio::sync::mpsc;

use super::report::Report;
use crate::master::control::ClusterControl;
use crate::master::ids::WorkerKey;
use crate::master::inbox::{Incoming, Request, send_to_worker};
use crate::master::machine::Input;

/// Reads one worker's channel: messages and requests for the master's inbox go straight there
/// (waiting while it is full, which throttles this worker only, never the master); everything
/// else goes to the driver, then how the channel ended.
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
        loop {
            let input = match receiver.recv().await {
                Ok(Some(received)) => match self.to_inbox(received).await {
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

    /// Delivers messages and requests for the master's inbox; gives anything else back,
    /// without descriptors (a worker has none to send: they are closed here).
    async fn to_inbox(&self, Received { message, fds }: Received) -> Option<Message> {
        let from = self.slot;
        if !fds.is_empty() {
            tracing::warn!(
                slot = from,
                kind = message.kind(),
                "worker sent descriptors; closed them"
            );
            return Some(message);
        }
        match message {
            Message::User {
                to: Route::Master,
                data,
                seq,
            } => {
                let delivered = self
                    .control
                    .inbox_slot()
                    .put(Incoming::Message { from, data })
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
                    send_to_worker(&self.replies, Message::Reply { seq, outcome }, Vec::new());
                }
                None
            }
            Message::Request { seq, data } => {
                let request = Request::new(from, data, seq, self.replies.clone());
                if let Err(Incoming::Request(request)) = self
                    .control
                    .inbox_slot()
                    .put(Incoming::Request(request))
                    .await
                {
                    request.fail("the master has no request handler (ClusterControl::inbox)");
                }
                None
            }
            other => Some(other),
        }
    }
}
