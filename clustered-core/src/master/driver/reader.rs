//! [`WorkerReader`]: the task that reads one worker's IPC channel.

use clustered_ipc::{Receiver, Sender};
use tokio::sync::mpsc;

use super::report::Report;
use crate::master::control::ClusterControl;
use crate::master::ids::WorkerKey;
use crate::master::inbox_routing::InboxRouting;
use crate::master::machine::Input;
use crate::worker_request::send_to_worker;

/// Reads one worker's channel without ever waiting on anything else while frames are there:
/// each frame goes where [`InboxRouting`] says (messages and requests for the master's inbox
/// straight into the worker's lane of it, bounded by the credit the worker was given, so they
/// never wait here; everything else to the driver), and what the worker is to hear of it is
/// sent; then how the channel ended. So a slow inbox reader makes the worker wait before it
/// sends, and never delays its heartbeats, the answers to its handoffs or anything else it
/// sends.
pub(crate) struct WorkerReader {
    pub(crate) worker: WorkerKey,
    pub(crate) routing: InboxRouting,
    pub(crate) replies: Sender,
    pub(crate) reports: mpsc::Sender<Report>,
    pub(crate) control: ClusterControl,
}

impl WorkerReader {
    pub(crate) async fn run(self, mut receiver: Receiver) {
        let worker = self.worker;
        let inbox = self.control.inbox_slot();
        inbox.join(worker, &self.replies);
        loop {
            let input = match receiver.recv().await {
                Ok(Some(received)) => {
                    let routed = self.routing.route(received, inbox);
                    for reply in routed.replies {
                        send_to_worker(&self.replies, reply, Vec::new());
                    }
                    match routed.machine {
                        None => continue,
                        Some(message) => Input::Message { worker, message },
                    }
                }
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
                inbox.leave(worker);
            }
            if self.reports.send(Report::Input(input)).await.is_err() || closed {
                return;
            }
        }
    }
}
