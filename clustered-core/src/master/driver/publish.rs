//! Turns the machine's [`Notice`]s into [`ClusterEvent`]s for user code, keeping the worker
//! handles and the registry in step with them.

use super::link::Links;
use crate::master::cluster_event::ClusterEvent;
use crate::master::handle::WorkerStatus;
use crate::master::ids::WorkerKey;
use crate::master::machine::Notice;
use crate::master::registry::Registry;

/// The event for `notice` (`None` for [`Notice::Ready`], which is not an event, and for a
/// worker the driver no longer knows). An exit forgets the worker's link.
pub(crate) fn event_for(
    notice: Notice,
    links: &mut Links,
    registry: &Registry,
) -> Option<ClusterEvent> {
    let handle = |key: WorkerKey| links.get(&key).map(|link| link.handle.clone());
    Some(match notice {
        Notice::Fork(key) => ClusterEvent::Fork(handle(key)?),
        Notice::Online(key) => {
            let worker = handle(key)?;
            worker.set_status(WorkerStatus::Online);
            ClusterEvent::Online(worker)
        }
        Notice::Listening(key, address) => {
            let worker = handle(key)?;
            worker.set_status(WorkerStatus::Listening);
            ClusterEvent::Listening(worker, address)
        }
        Notice::Disconnect(key) => {
            let worker = handle(key)?;
            worker.set_status(WorkerStatus::Draining);
            worker.set_exited_after_disconnect();
            ClusterEvent::Disconnect(worker)
        }
        Notice::Exit {
            worker: key,
            code,
            signal,
            exited_after_disconnect,
            reason,
        } => {
            let worker = links.remove(&key)?.handle;
            registry.remove_worker(key);
            if exited_after_disconnect {
                worker.set_exited_after_disconnect();
            }
            worker.set_dead();
            worker.set_status(WorkerStatus::Dead);
            registry.note_exit(worker.id(), reason);
            ClusterEvent::Exit {
                worker,
                code,
                signal,
                exited_after_disconnect,
                reason,
            }
        }
        Notice::Restarting { slot, delay } => {
            registry.note_restart(slot);
            ClusterEvent::Restarting { id: slot, delay }
        }
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
        Notice::Ready(_) => return None,
    })
}
