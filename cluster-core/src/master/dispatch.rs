//! Round-robin dispatch: each accepted connection goes to the next listening worker whose
//! window of unacknowledged handoffs has room; when none has, it waits in a backlog.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use cluster_ipc::ListenKey;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::event::WorkerKey;
use super::worker::WorkerRecord;

/// A connection accepted by the master, kept until a worker acknowledges it, so that a failed
/// handoff can go to another worker instead of being lost.
#[derive(Debug)]
pub(super) struct Handoff {
    pub(super) key: ListenKey,
    pub(super) stream: TcpStream,
    pub(super) peer: SocketAddr,
    /// Counts against the cluster-wide bound on unacknowledged connections.
    _permit: OwnedSemaphorePermit,
}

impl Handoff {
    pub(super) fn new(
        key: ListenKey,
        stream: TcpStream,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            key,
            stream,
            peer,
            _permit: permit,
        }
    }
}

/// The workers listening on one key, in slot order, and whose turn is next.
#[derive(Debug, Default)]
struct Rotation {
    members: Vec<(usize, WorkerKey)>,
    next: usize,
}

/// Routes connections to workers.
#[derive(Debug, Default)]
pub(super) struct Dispatcher {
    rotations: HashMap<ListenKey, Rotation>,
    backlog: VecDeque<Handoff>,
}

impl Dispatcher {
    /// `worker` (in `slot`) now takes connections for `key`.
    pub(super) fn add(&mut self, key: ListenKey, slot: usize, worker: WorkerKey) {
        let members = &mut self.rotations.entry(key).or_default().members;
        if !members.iter().any(|(_, member)| *member == worker) {
            members.push((slot, worker));
            members.sort_unstable();
        }
    }

    /// `worker` takes no more connections for `key`.
    pub(super) fn remove(&mut self, key: &ListenKey, worker: WorkerKey) {
        if let Some(rotation) = self.rotations.get_mut(key) {
            rotation.members.retain(|(_, member)| *member != worker);
        }
    }

    /// `worker` takes no more connections at all.
    pub(super) fn remove_worker(&mut self, worker: WorkerKey) {
        for rotation in self.rotations.values_mut() {
            rotation.members.retain(|(_, member)| *member != worker);
        }
    }

    /// Hands `handoff` to the next worker with room, or queues it in the backlog.
    pub(super) fn dispatch(
        &mut self,
        handoff: Handoff,
        workers: &mut HashMap<WorkerKey, WorkerRecord>,
    ) {
        if let Err(handoff) = self.place(handoff, workers) {
            self.backlog.push_back(handoff);
        }
    }

    /// Hands out queued connections while workers have room.
    pub(super) fn drain_backlog(&mut self, workers: &mut HashMap<WorkerKey, WorkerRecord>) {
        while let Some(handoff) = self.backlog.pop_front() {
            if let Err(handoff) = self.place(handoff, workers) {
                self.backlog.push_front(handoff);
                return;
            }
        }
    }

    /// Closes every queued connection; returns how many there were.
    pub(super) fn clear_backlog(&mut self) -> usize {
        let count = self.backlog.len();
        self.backlog.clear();
        count
    }

    fn place(
        &mut self,
        mut handoff: Handoff,
        workers: &mut HashMap<WorkerKey, WorkerRecord>,
    ) -> Result<(), Handoff> {
        let Some(rotation) = self.rotations.get_mut(&handoff.key) else {
            return Err(handoff);
        };
        let count = rotation.members.len();
        for _ in 0..count {
            let (_, worker) = rotation.members[rotation.next % count];
            rotation.next = (rotation.next + 1) % count;
            if let Some(handle) = workers.get_mut(&worker) {
                match handle.offer(handoff) {
                    Ok(()) => return Ok(()),
                    Err(refused) => handoff = refused,
                }
            }
        }
        Err(handoff)
    }
}
