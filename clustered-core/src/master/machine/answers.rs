//! [`Answers`]: the commands waiting for their answer, as plain data (`answering.rs` decides
//! when each is answered).

use super::input::ReplyId;
use crate::master::ids::WorkerKey;

/// The commands waiting for their answer.
#[derive(Debug, Default)]
pub(super) struct Answers {
    /// Reloads answered when the running one ends.
    pub(super) reload: Vec<ReplyId>,
    /// Reloads answered when the one after the running one ends (they asked during it).
    pub(super) next_reload: Vec<ReplyId>,
    /// Scales answered once their count of workers serves.
    pub(super) scales: Vec<PendingScale>,
    /// Restarts answered once a successor serves the slot.
    pub(super) restarts: Vec<PendingRestart>,
}

/// A scale waiting for its workers to serve.
#[derive(Debug)]
pub(super) struct PendingScale {
    pub(super) reply: ReplyId,
    pub(super) from: usize,
    pub(super) to: usize,
}

/// A restart waiting for the slot's successor to serve.
#[derive(Debug)]
pub(super) struct PendingRestart {
    pub(super) reply: ReplyId,
    pub(super) slot: usize,
    pub(super) old: WorkerKey,
    pub(super) old_pid: u32,
}
