//! Connections: hand each accepted one to a worker, and act on what the worker answers.

use std::time::Duration;

use clustered_ipc::ListenKey;

use super::action::{Action, Notice};
use super::input::Timer;
use super::state::Machine;
use crate::master::handle::WorkerStatus;
use crate::master::ids::WorkerKey;

/// How long a busy worker gets no handoff.
pub(super) const BUSY_REST: Duration = Duration::from_millis(50);

impl Machine {
    /// The worker answered handoff `seq`: taken (the master closes its copy), refused because
    /// it is draining (it takes no more for that key), or refused because it is busy (it rests
    /// a moment). A refused connection goes to another worker. An answer to no handoff of this
    /// worker (a late or made-up `seq`) changes nothing.
    pub(super) fn on_accepted(&mut self, key: WorkerKey, seq: u64, ok: bool, draining: bool) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        let Some(conn) = worker.acknowledge(seq, self.now) else {
            tracing::warn!(
                slot = worker.slot,
                seq,
                "acknowledgement of an unknown handoff"
            );
            return;
        };
        match (ok, draining) {
            (true, _) => self.push(Action::CloseConn(conn.id)),
            (false, true) => {
                self.dispatcher.remove(&conn.key, key);
                self.dispatch(conn);
            }
            (false, false) => {
                self.rest(key);
                self.dispatch(conn);
            }
        }
        self.drain_backlog();
    }

    /// A handoff could not be queued for the worker: it rests, and the connection goes to
    /// another.
    pub(super) fn on_handoff_failed(&mut self, key: WorkerKey, seq: u64) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        let conn = worker.acknowledge(seq, self.now);
        self.rest(key);
        if let Some(conn) = conn {
            self.dispatch(conn);
        }
    }

    /// A busy worker gets no handoff for [`BUSY_REST`]: a worker out of room (or descriptors)
    /// is not handed the same connection back at once, and nothing spins.
    fn rest(&mut self, key: WorkerKey) {
        if let Some(worker) = self.workers.get_mut(&key)
            && !worker.resting
        {
            worker.resting = true;
            self.arm(BUSY_REST, Timer::Rested { worker: key });
        }
    }

    /// A busy worker has rested: it takes connections again.
    pub(super) fn on_rested(&mut self, key: WorkerKey) {
        if let Some(worker) = self.workers.get_mut(&key) {
            worker.resting = false;
            self.drain_backlog();
        }
    }

    /// The worker takes connections for `listen_key` from now on (unless it is stopping).
    pub(super) fn on_listening(&mut self, key: WorkerKey, listen_key: ListenKey) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        let Some(address) = self.listeners.address_of(&listen_key) else {
            tracing::warn!(slot = worker.slot, %listen_key, "worker listens on an unknown key");
            return;
        };
        tracing::debug!(slot = worker.slot, %listen_key, "worker listening");
        worker.listening.insert(listen_key.clone());
        let (slot, stopping) = (worker.slot, worker.is_leaving());
        let routed = worker.ready || !self.config.wait_ready;
        self.set_status(key, WorkerStatus::Listening);
        self.notify(Notice::Listening(key, address));
        if !stopping && routed {
            self.route_to(key, slot, [listen_key]);
        }
    }

    /// Routes the connections of `listen_keys` to `key` (of `slot`) from now on, and hands it
    /// what waits for them.
    pub(super) fn route_to(
        &mut self,
        key: WorkerKey,
        slot: usize,
        listen_keys: impl IntoIterator<Item = ListenKey>,
    ) {
        for listen_key in listen_keys {
            self.dispatcher.add(listen_key, slot, key);
        }
        self.drain_backlog();
    }
}
