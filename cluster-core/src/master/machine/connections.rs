//! Connections: hand each accepted one to a worker, and act on what the worker answers.

use cluster_ipc::ListenKey;

use super::action::{Action, Notice};
use super::conn::Conn;
use super::state::Machine;
use crate::master::ids::WorkerKey;

impl Machine {
    /// A listener accepted `conn`.
    pub(super) fn on_connection(&mut self, conn: Conn) {
        self.dispatch(conn);
    }

    /// The worker answered handoff `seq`: taken (the master closes its copy), or refused (it
    /// is draining: it takes no more for that key, and the connection goes to another).
    /// An answer to no handoff of this worker (a late or made-up `seq`) changes nothing.
    pub(super) fn on_accepted(&mut self, key: WorkerKey, seq: u64, ok: bool) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        let Some(conn) = worker.acknowledge(seq) else {
            tracing::warn!(
                slot = worker.slot,
                seq,
                "acknowledgement of an unknown handoff"
            );
            return;
        };
        if ok {
            self.push(Action::CloseConn(conn.id));
        } else {
            self.dispatcher.remove(&conn.key, key);
            self.dispatch(conn);
        }
        self.drain_backlog();
    }

    /// A handoff could not be queued for the worker: it gets no more until it is heard from
    /// again, and the connection goes to another.
    pub(super) fn on_handoff_failed(&mut self, key: WorkerKey, seq: u64) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        worker.congested = true;
        if let Some(conn) = worker.acknowledge(seq) {
            self.dispatch(conn);
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
        let (slot, stopping) = (worker.slot, worker.disconnecting);
        self.notify(Notice::Listening(key, address));
        if !stopping {
            self.dispatcher.add(listen_key, slot, key);
            self.drain_backlog();
        }
    }
}
