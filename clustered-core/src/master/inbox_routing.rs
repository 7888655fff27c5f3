//! [`InboxRouting`]: what becomes of each message read from one worker's channel, as plain data.
//! Messages and requests for the master's inbox go into the worker's lane of it
//! ([`InboxSlot::put`]), or are refused (past the worker's credit, or nobody reads the inbox),
//! with what the worker is to hear of it: a receipt, a refused request's failure, its credit
//! back. Everything else is for the machine. It sends nothing: the reader task sends what it
//! answers, in order. (The lanes, their turns and the credit given back as items are taken are
//! the inbox's: `fair_queue.rs`.)

use clustered_ipc::{Message, Outcome, Received, Route, Sender};

use super::ids::WorkerKey;
use super::inbox::{InboxItem, InboxSlot, NotPut, Refused, UNREAD, credit_message};
use crate::worker_request::{AnswerTo, WorkerRequest};

/// Why a message or request past the worker's credit is refused.
pub(crate) const PAST_CREDIT: &str = "this worker sent past its credit for the master's inbox";

/// Routes one worker's messages.
#[derive(Debug)]
pub(crate) struct InboxRouting {
    worker: WorkerKey,
    slot: usize,
    /// Where a request's answer goes (the worker's IPC sender); nothing is sent here.
    replies: Sender,
}

/// What became of one message read from a worker.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Routed {
    /// For the machine, if it is not the inbox's.
    pub(crate) machine: Option<Message>,
    /// To send the worker, in order.
    pub(crate) replies: Vec<Message>,
}

impl InboxRouting {
    /// The routing of the messages of `worker`, in `slot`, whose requests are answered through
    /// `replies`.
    pub(crate) fn new(worker: WorkerKey, slot: usize, replies: Sender) -> Self {
        Self {
            worker,
            slot,
            replies,
        }
    }

    /// Puts a message or request for the master's inbox into `inbox`, or refuses it; gives
    /// anything else to the machine, without descriptors (a worker has none to send: they are
    /// closed here).
    pub(crate) fn route(&self, Received { message, fds }: Received, inbox: &InboxSlot) -> Routed {
        let from = self.slot;
        if !fds.is_empty() {
            tracing::warn!(
                slot = from,
                kind = message.kind(),
                "worker sent descriptors; closed them"
            );
            return Routed::machine(message);
        }
        let (item, receipt) = match message {
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
            other => return Routed::machine(other),
        };
        let why = match inbox.put(self.worker, item) {
            Ok(()) => {
                let replies = receipt.map(|seq| receipt_for(seq, Ok(()))).into_iter();
                return Routed {
                    machine: None,
                    replies: replies.collect(),
                };
            }
            Err(NotPut::Unread(item)) => (item, UNREAD),
            Err(NotPut::PastCredit(item)) => {
                tracing::warn!(slot = from, "{PAST_CREDIT}; refused");
                (item, PAST_CREDIT)
            }
        };
        refusal(why, receipt, inbox.is_read())
    }
}

impl Routed {
    fn machine(message: Message) -> Self {
        Self {
            machine: Some(message),
            replies: Vec::new(),
        }
    }
}

/// What the worker hears of a refused message or request: a request fails, a receipt says so,
/// and its credit comes back, told how many messages were refused; `read`: whether the inbox
/// is read now.
fn refusal((item, why): (InboxItem, &str), receipt: Option<u64>, read: bool) -> Routed {
    let mut replies = Vec::new();
    let refused = match item.refuse(why) {
        Refused::Request(failure) => {
            replies.push(failure);
            0
        }
        Refused::Message => {
            replies.extend(receipt.map(|seq| receipt_for(seq, Err(why))));
            1
        }
    };
    replies.push(credit_message(1, read, refused));
    Routed {
        machine: None,
        replies,
    }
}

/// The receipt `seq` of a message: delivered, or not and why.
fn receipt_for(seq: u64, delivered: Result<(), &str>) -> Message {
    let outcome = match delivered {
        Ok(()) => Outcome::Ok(serde_json::Value::Null),
        Err(reason) => Outcome::Error(reason.into()),
    };
    Message::Reply { seq, outcome }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use clustered_ipc::{Channel, INBOX_WINDOW};
    use serde_json::json;

    use super::*;
    use crate::master::inbox::Inbox;

    /// A worker's routing and the inbox, read by master code or not; the runtime its IPC
    /// sender needs (no frame is ever written: nothing here sends).
    struct Setup {
        routing: InboxRouting,
        slot: Arc<InboxSlot>,
        inbox: Option<Inbox>,
        runtime: tokio::runtime::Runtime,
    }

    const WORKER: WorkerKey = WorkerKey(4);

    fn setup(read: bool) -> Setup {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let (ours, _theirs) = Channel::pair().unwrap();
        let (replies, _) = ours.split();
        let slot = Arc::new(InboxSlot::new());
        slot.join(WORKER, &replies);
        let inbox = read.then(|| slot.take().unwrap());
        Setup {
            routing: InboxRouting::new(WORKER, 2, replies),
            slot,
            inbox,
            runtime,
        }
    }

    impl Setup {
        fn route(&self, message: Message) -> Routed {
            let _entered = self.runtime.enter();
            let received = Received {
                message,
                fds: Vec::new(),
            };
            self.routing.route(received, &self.slot)
        }
    }

    fn message(seq: Option<u64>) -> Message {
        Message::User {
            to: Route::Master,
            data: json!("hi"),
            seq,
        }
    }

    fn request(seq: u64) -> Message {
        Message::Request {
            seq,
            data: json!({"ask": 1}),
        }
    }

    fn replied(seq: u64, outcome: Result<(), &str>) -> Message {
        receipt_for(seq, outcome)
    }

    #[test]
    fn within_credit_a_message_is_put_with_its_receipt_and_a_request_without_one() {
        let setup = setup(true);
        let routed = setup.route(message(Some(9)));
        assert_eq!(routed.machine, None);
        assert_eq!(routed.replies, [replied(9, Ok(()))]);
        assert_eq!(
            setup.route(message(None)),
            Routed::default(),
            "no receipt asked"
        );
        assert_eq!(
            setup.route(request(3)),
            Routed::default(),
            "answered by master code"
        );
        let _entered = setup.runtime.enter();
        let mut inbox = setup.inbox.unwrap();
        let taken: Vec<InboxItem> = setup.runtime.block_on(async {
            let mut taken = Vec::new();
            for _ in 0..3 {
                taken.push(inbox.recv().await.unwrap());
            }
            taken
        });
        // In the order the worker sent them.
        assert!(matches!(&taken[0], InboxItem::Message { from: 2, .. }));
        assert!(matches!(&taken[1], InboxItem::Message { from: 2, .. }));
        assert!(matches!(&taken[2], InboxItem::Request(request) if request.from() == 2));
    }

    #[test]
    fn past_its_credit_a_message_is_refused_and_its_credit_given_back() {
        let setup = setup(true);
        for _ in 0..INBOX_WINDOW {
            assert_eq!(setup.route(message(None)), Routed::default());
        }
        let routed = setup.route(message(Some(5)));
        assert_eq!(
            routed.replies,
            [replied(5, Err(PAST_CREDIT)), credit_message(1, true, 1)]
        );
        assert_eq!(routed.machine, None);
    }

    #[test]
    fn an_unread_inbox_refuses_a_message_saying_so() {
        let setup = setup(false);
        let routed = setup.route(message(Some(1)));
        assert_eq!(
            routed.replies,
            [replied(1, Err(UNREAD)), credit_message(1, false, 1)]
        );
        let routed = setup.route(message(None));
        assert_eq!(
            routed.replies,
            [credit_message(1, false, 1)],
            "no receipt asked"
        );
    }

    #[test]
    fn a_refused_request_fails_and_gives_its_credit_back() {
        let setup = setup(false);
        let routed = setup.route(request(8));
        assert_eq!(
            routed.replies,
            [replied(8, Err(UNREAD)), credit_message(1, false, 0)],
            "failed once, no message counted as refused"
        );
        // Once master code dropped its inbox, the same.
        let setup = self::setup(true);
        drop(setup.inbox);
        let routed = setup.routing.route(
            Received {
                message: request(2),
                fds: Vec::new(),
            },
            &setup.slot,
        );
        assert_eq!(
            routed.replies,
            [replied(2, Err(UNREAD)), credit_message(1, false, 0)]
        );
    }

    #[test]
    fn everything_else_is_for_the_machine_and_descriptors_are_closed() {
        let setup = setup(true);
        let heartbeat = Message::Heartbeat {
            conns: 1,
            inflight: 0,
            served: 0,
            rss: 0,
        };
        assert_eq!(setup.route(heartbeat.clone()).machine, Some(heartbeat));
        let to_worker = Message::User {
            to: Route::Worker(1),
            data: json!(1),
            seq: Some(4),
        };
        let routed = setup.route(to_worker.clone());
        assert_eq!((routed.machine, routed.replies), (Some(to_worker), vec![]));
        // A message for the inbox that carries descriptors is not the inbox's.
        let _entered = setup.runtime.enter();
        let (fd, _other) = std::os::unix::net::UnixStream::pair().unwrap();
        let received = Received {
            message: message(Some(6)),
            fds: vec![fd.into()],
        };
        let routed = setup.routing.route(received, &setup.slot);
        assert_eq!(routed.machine, Some(message(Some(6))));
        assert!(routed.replies.is_empty());
    }
}
