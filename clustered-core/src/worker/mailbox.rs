//! [`Mailbox`]: what the master delivers to this worker for user code: its messages, and the
//! latest values of the counters it follows. The link puts, the `ipc` module takes.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use clustered_ipc::Peer;
use tokio::sync::{mpsc, watch};

use crate::sync::lock;

/// User messages delivered to this worker and not yet read.
const CAPACITY: usize = 1024;

/// A delivered message and who sent it.
pub(crate) type Letter = (Peer, serde_json::Value);

/// A request for the agent: the master's number for it, the asking worker's slot, the data.
pub(crate) type Asked = (u64, usize, serde_json::Value);

/// This process's mailbox.
pub(crate) struct Mailbox {
    sender: mpsc::Sender<Letter>,
    receiver: Mutex<Option<mpsc::Receiver<Letter>>>,
    followed: Mutex<HashMap<String, watch::Sender<i64>>>,
    asked: mpsc::Sender<Asked>,
    asked_receiver: Mutex<Option<mpsc::Receiver<Asked>>>,
    /// The master said its fleet's Redis is unreachable (`fleetStatus`).
    fleet_down: std::sync::atomic::AtomicBool,
}

/// The mailbox of this process (there is one).
pub(crate) fn mailbox() -> &'static Mailbox {
    static MAILBOX: OnceLock<Mailbox> = OnceLock::new();
    MAILBOX.get_or_init(|| {
        let (sender, receiver) = mpsc::channel(CAPACITY);
        let (asked, asked_receiver) = mpsc::channel(CAPACITY);
        Mailbox {
            sender,
            receiver: Mutex::new(Some(receiver)),
            followed: Mutex::default(),
            asked,
            asked_receiver: Mutex::new(Some(asked_receiver)),
            fleet_down: std::sync::atomic::AtomicBool::new(false),
        }
    })
}

impl Mailbox {
    /// What the master last said of its fleet's Redis.
    pub(crate) fn set_fleet_up(&self, up: bool) {
        self.fleet_down
            .store(!up, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the master said its fleet's Redis is unreachable.
    pub(crate) fn fleet_down(&self) -> bool {
        self.fleet_down.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Puts a delivered message; with nobody reading and the box full, it is dropped with a
    /// warning.
    pub(crate) fn deliver(&self, from: Peer, data: serde_json::Value) {
        if self.sender.try_send((from, data)).is_err() {
            tracing::warn!(
                "this worker's inbox is full or unread (ipc::messages); a message was dropped"
            );
        }
    }

    /// Puts a request for the agent; `false` if the requests are full or no longer read.
    pub(crate) fn ask(&self, asked: Asked) -> bool {
        self.asked.try_send(asked).is_ok()
    }

    /// The agent's requests, the first time only.
    pub(crate) fn take_asked(&self) -> Option<mpsc::Receiver<Asked>> {
        lock(&self.asked_receiver).take()
    }

    /// The receiving end, the first time only.
    pub(crate) fn take_messages(&self) -> Option<mpsc::Receiver<Letter>> {
        lock(&self.receiver).take()
    }

    /// Follows the counter `name`: its pushed values from now on.
    pub(crate) fn follow(&self, name: &str) -> watch::Receiver<i64> {
        lock(&self.followed)
            .entry(name.to_owned())
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    /// The master pushed (or answered) the value of a counter this worker may follow.
    pub(crate) fn counter_changed(&self, name: &str, value: i64) {
        if let Some(sender) = lock(&self.followed).get(name) {
            sender.send_replace(value);
        }
    }
}
