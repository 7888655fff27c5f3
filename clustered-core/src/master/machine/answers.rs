//! [`Answers`]: the commands waiting for their answer, as plain data (`answering.rs` decides
//! when each is answered).

use std::collections::BTreeMap;

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
    /// `tls reload`s answered once every worker told has answered.
    pub(super) certificates: Vec<PendingCertificates>,
    /// The `id` of the next `reloadCertificates`.
    pub(super) next_certificates_id: u64,
}

/// A `tls reload` waiting for the workers told to answer.
#[derive(Debug)]
pub(super) struct PendingCertificates {
    pub(super) reply: ReplyId,
    /// The `reloadCertificates` id the workers answer.
    pub(super) id: u64,
    /// How many workers were told.
    pub(super) asked: usize,
    /// The workers yet to answer, with their slot and pid (to name them).
    pub(super) waiting: BTreeMap<WorkerKey, (usize, u32)>,
    /// Workers that load the new certificate now.
    pub(super) loaded: usize,
    /// Workers that serve no TLS.
    pub(super) without_tls: usize,
    /// What went wrong, a line each: refusals, exits, silence.
    pub(super) problems: Vec<String>,
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
