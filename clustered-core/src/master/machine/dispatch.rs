//! [`Dispatcher`]: which worker gets each accepted connection, by policy, or the backlog.
//!
//! A worker is a candidate for a listen key once it listens on it, and only while it has room
//! ([`WorkerState::has_room`]: connected, not stopping, window not full).
//!
//! - [`Policy::Rr`]: the next candidate in slot order.
//! - [`Policy::Sticky`]: the worker whose slot scores highest for the client's IP
//!   (rendezvous hashing): a client keeps its worker while it lives, waits for it when it has
//!   no room, and only a dead worker's clients move (back to its replacement later).
//! - [`Policy::Least`]: the lowest [`WorkerState::estimated_load`], ties by slot.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::Instant;

use crate::Policy;
use clustered_ipc::ListenKey;
use rustc_hash::FxHashMap;

use super::conn::Conn;
use super::workers::{WorkerState, Workers};
use crate::master::ids::WorkerKey;

/// A connection given to a worker: the machine sends it as `newConn {seq}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Placement {
    pub(super) worker: WorkerKey,
    pub(super) seq: u64,
    pub(super) conn: Conn,
}

/// The workers listening on one key, in slot order, and whose turn is next.
#[derive(Debug, Default)]
struct Rotation {
    members: Vec<(usize, WorkerKey)>,
    next: usize,
}

/// Routes connections to workers; holds those no worker can take yet.
#[derive(Debug)]
pub(super) struct Dispatcher {
    policy: Policy,
    // Keyed by the cluster's own addresses (never a peer's input): a fast hash is safe here.
    rotations: FxHashMap<ListenKey, Rotation>,
    /// Connections no worker could take yet, per listen key, oldest first.
    backlog: FxHashMap<ListenKey, VecDeque<Conn>>,
}

impl Dispatcher {
    pub(super) fn new(policy: Policy) -> Self {
        Self {
            policy,
            rotations: FxHashMap::default(),
            backlog: FxHashMap::default(),
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

    /// Gives `conn` to a worker with room (a handoff made at `now`), or queues it in the
    /// backlog.
    pub(super) fn dispatch(
        &mut self,
        conn: Conn,
        workers: &mut Workers,
        now: Instant,
    ) -> Option<Placement> {
        let placed = match self.rotations.get_mut(&conn.key) {
            Some(rotation) => place(self.policy, rotation, conn, workers, now),
            None => Err(conn),
        };
        match placed {
            Ok(placement) => Some(placement),
            Err(conn) => {
                self.backlog
                    .entry(conn.key.clone())
                    .or_default()
                    .push_back(conn);
                None
            }
        }
    }

    /// Gives queued connections to workers that now have room; those still without one stay
    /// queued in their order (under `sticky` a client waits for its own worker without
    /// holding up the others). Handoffs are made at `now`.
    ///
    /// It runs on every acknowledgement, so it costs what it places, not what is queued: a key
    /// whose workers all lack room is skipped whole, and under the other policies (where any
    /// worker with room takes any connection) the first connection left without one ends the
    /// key's pass. Only `sticky` looks at each queued connection while some worker has room.
    pub(super) fn drain_backlog(&mut self, workers: &mut Workers, now: Instant) -> Vec<Placement> {
        let mut placed = Vec::new();
        for (key, queue) in &mut self.backlog {
            let Some(rotation) = self.rotations.get_mut(key) else {
                continue;
            };
            let any_room = rotation
                .members
                .iter()
                .any(|(_, worker)| workers.get(worker).is_some_and(WorkerState::has_room));
            if !any_room {
                continue;
            }
            if self.policy == Policy::Sticky {
                for conn in std::mem::take(queue) {
                    match place(self.policy, rotation, conn, workers, now) {
                        Ok(placement) => placed.push(placement),
                        Err(conn) => queue.push_back(conn),
                    }
                }
                continue;
            }
            while let Some(conn) = queue.pop_front() {
                match place(self.policy, rotation, conn, workers, now) {
                    Ok(placement) => placed.push(placement),
                    Err(conn) => {
                        queue.push_front(conn);
                        break;
                    }
                }
            }
        }
        self.backlog.retain(|_, queue| !queue.is_empty());
        placed
    }

    /// How many connections wait in the backlog.
    pub(super) fn backlog_len(&self) -> usize {
        self.backlog.values().map(VecDeque::len).sum()
    }

    /// Empties the backlog; returns what was in it.
    pub(super) fn take_backlog(&mut self) -> Vec<Conn> {
        self.backlog.drain().flat_map(|(_, queue)| queue).collect()
    }
}

/// Gives `conn` to a member of `rotation` with room, by `policy`, as a handoff made at `now`.
fn place(
    policy: Policy,
    rotation: &mut Rotation,
    conn: Conn,
    workers: &mut Workers,
    now: Instant,
) -> Result<Placement, Conn> {
    let chosen = match policy {
        Policy::Sticky => sticky_owner(rotation, conn.peer.ip())
            .filter(|worker| workers.get(worker).is_some_and(WorkerState::has_room)),
        Policy::Least => least_loaded(rotation, workers),
        Policy::Rr | Policy::Shared | Policy::Reuseport => next_in_turn(rotation, workers),
    };
    let Some(worker) = chosen else {
        return Err(conn);
    };
    let Some(state) = workers.get_mut(&worker) else {
        return Err(conn);
    };
    let seq = state.hand(conn.clone(), now);
    Ok(Placement { worker, seq, conn })
}

/// The client's worker under `sticky`, room or not.
fn sticky_owner(rotation: &Rotation, ip: IpAddr) -> Option<WorkerKey> {
    rotation
        .members
        .iter()
        .max_by_key(|(slot, _)| rendezvous_score(ip, *slot))
        .map(|(_, worker)| *worker)
}

/// The member with room and the lowest estimated load, ties by slot.
fn least_loaded(rotation: &Rotation, workers: &Workers) -> Option<WorkerKey> {
    rotation
        .members
        .iter()
        .filter_map(|(slot, key)| {
            let state = workers.get(key).filter(|state| state.has_room())?;
            Some((state.estimated_load(), *slot, *key))
        })
        .min()
        .map(|(_, _, key)| key)
}

/// The next member with room, in turn.
fn next_in_turn(rotation: &mut Rotation, workers: &Workers) -> Option<WorkerKey> {
    let count = rotation.members.len();
    for _ in 0..count {
        let (_, worker) = rotation.members[rotation.next % count];
        rotation.next = (rotation.next + 1) % count;
        if workers.get(&worker).is_some_and(WorkerState::has_room) {
            return Some(worker);
        }
    }
    None
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
