//! [`Upgrade`]: how an upgrade of the master stands, on either side (`upgrading.rs` decides).

use clustered_ipc::CounterOp;

use super::input::ReplyId;
use crate::master::ids::WorkerKey;

/// The counter operations of the old master's workers count as this one creator's.
pub(super) const OLD_MASTER: WorkerKey = WorkerKey(u64::MAX);

/// How an upgrade stands, on either side.
#[derive(Debug, Default)]
pub(super) struct Upgrade {
    /// Old side: a new master is starting; who waits for the answer.
    pub(super) starting: Option<Option<ReplyId>>,
    /// Old side: upgrades begun so far (a deadline names the one it is for).
    pub(super) attempts: u64,
    /// Old side: the new master took over; counter operations go to it.
    pub(super) handed_over: bool,
    /// New side: the old master's state has not arrived yet; the counter operations that
    /// wait for it, in order.
    pub(super) awaiting_state: Option<Vec<(WorkerKey, u64, String, CounterOp)>>,
}

impl Upgrade {
    /// The state of a master an upgrade started, which waits for its predecessor's state.
    pub(super) fn adopting() -> Self {
        Upgrade {
            awaiting_state: Some(Vec::new()),
            ..Upgrade::default()
        }
    }
}
