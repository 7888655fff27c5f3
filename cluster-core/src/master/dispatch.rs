//! Dispatch: each accepted connection goes to a listening worker whose window of
//! unacknowledged handoffs has room, or waits in a backlog.
//!
//! - [`Policy::Rr`]: the next worker in slot order.
//! - [`Policy::Sticky`]: the worker whose slot scores highest for the client's IP
//!   (rendezvous hashing): a client keeps its worker while it lives, a dead worker's clients
//!   spread over the others (and come back to its replacement), and no other client moves.
//! - [`Policy::Least`]: the worker with the lowest estimated load (open connections and
//!   in-flight requests from its heartbeats, plus handoffs it has not acknowledged yet), ties
//!   by slot.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

use cluster_ipc::{ListenKey, Policy};
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
#[derive(Debug)]
pub(super) struct Dispatcher {
    policy: Policy,
    rotations: HashMap<ListenKey, Rotation>,
    backlog: VecDeque<Handoff>,
}

impl Dispatcher {
    pub(super) fn new(policy: Policy) -> Self {
        Self {
            policy,
            rotations: HashMap::new(),
            backlog: VecDeque::new(),
        }
    }

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
        if self.policy == Policy::Sticky {
            // The client's worker, or wait for it: never another while it lives.
            let ip = handoff.peer.ip();
            let chosen = rotation
                .members
                .iter()
                .max_by_key(|(slot, _)| rendezvous_score(ip, *slot))
                .map(|(_, worker)| *worker);
            return match chosen.and_then(|worker| workers.get_mut(&worker)) {
                Some(worker) => worker.offer(handoff),
                None => Err(handoff),
            };
        }
        if self.policy == Policy::Least {
            let mut by_load: Vec<(u64, usize, WorkerKey)> = rotation
                .members
                .iter()
                .filter_map(|(slot, key)| {
                    let load = workers.get(key)?.estimated_load();
                    Some((load, *slot, *key))
                })
                .collect();
            by_load.sort_unstable();
            for (_, _, key) in by_load {
                if let Some(worker) = workers.get_mut(&key) {
                    match worker.offer(handoff) {
                        Ok(()) => return Ok(()),
                        Err(refused) => handoff = refused,
                    }
                }
            }
            return Err(handoff);
        }
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

/// The rendezvous (highest random weight) score of `slot` for a client at `ip`.
fn rendezvous_score(ip: IpAddr, slot: usize) -> u64 {
    // SipHash with fixed keys: the same on every run, spread like a random function.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (ip, slot).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(ip: IpAddr, slots: &[usize]) -> usize {
        *slots
            .iter()
            .max_by_key(|slot| rendezvous_score(ip, **slot))
            .unwrap()
    }

    #[test]
    fn only_the_clients_of_a_removed_slot_move() {
        let clients: Vec<IpAddr> = (1..=250u8).map(|n| IpAddr::from([10, 0, 0, n])).collect();
        let all = [1, 2, 3, 4];
        let without_two = [1, 3, 4];
        let mut moved = 0;
        for ip in &clients {
            let before = owner(*ip, &all);
            let after = owner(*ip, &without_two);
            if before == 2 {
                moved += 1;
            } else {
                assert_eq!(before, after, "a client of another slot moved");
            }
        }
        assert!(moved > 30, "slot 2 owned some clients ({moved})");
        // Every slot gets a share.
        for slot in all {
            let owned = clients
                .iter()
                .filter(|ip| owner(**ip, &all) == slot)
                .count();
            assert!(owned > 30, "slot {slot} owns {owned} of 250");
        }
    }
}
