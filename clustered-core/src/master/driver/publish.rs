//! Turns the machine's [`Notice`]s into [`ClusterEvent`]s for user code (the handles' state
//! is the machine's to change, by its own actions, before the notice).

use super::link::Links;
use crate::master::cluster_event::ClusterEvent;
use crate::master::ids::WorkerKey;
use crate::master::machine::Notice;

/// The event for `notice` (`None` for [`Notice::Ready`], which is not an event, and for a
/// worker the driver no longer knows).
pub(crate) fn event_for(notice: Notice, links: &Links) -> Option<ClusterEvent> {
    let handle = |key: WorkerKey| links.get(&key).map(|link| link.handle.clone());
    Some(match notice {
        Notice::Fork(key) => ClusterEvent::Fork(handle(key)?),
        Notice::Online(key) => ClusterEvent::Online(handle(key)?),
        Notice::Listening(key, address) => ClusterEvent::Listening(handle(key)?, address),
        Notice::Disconnect(key) => ClusterEvent::Disconnect(handle(key)?),
        Notice::Exit {
            worker: key,
            code,
            signal,
            exited_after_disconnect,
            reason,
        } => ClusterEvent::Exit {
            worker: handle(key)?,
            code,
            signal,
            exited_after_disconnect,
            reason,
        },
        Notice::Restarting { slot, delay } => ClusterEvent::Restarting { id: slot, delay },
        Notice::ReloadStarted => ClusterEvent::ReloadStarted,
        Notice::Reloaded {
            slot,
            old_pid,
            new_pid,
        } => ClusterEvent::Reloaded {
            id: slot,
            old_pid,
            new_pid,
        },
        Notice::ReloadFinished => ClusterEvent::ReloadFinished,
        Notice::AgentReady(key) => ClusterEvent::AgentReady(handle(key)?),
        Notice::Recycling { worker, reason } => ClusterEvent::Recycling(handle(worker)?, reason),
        Notice::ReloadFailed { slot, reason } => ClusterEvent::ReloadFailed { id: slot, reason },
        Notice::ShutdownStarted => ClusterEvent::ShutdownStarted,
        Notice::Scaled { from, to } => ClusterEvent::Scaled { from, to },
        Notice::Ready(_) | Notice::HandedOver { .. } => return None,
    })
}
