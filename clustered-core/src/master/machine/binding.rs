//! Start-up and listening addresses: bind the configured addresses before any worker starts,
//! bind once per address what workers ask for (`queryServer`), and answer them.

use clustered_ipc::ListenAddr;
use std::io;

use crate::Policy;
use clustered_ipc::{ListenKey, Message};

use super::action::Action;
use super::addresses::Wish;
use super::state::{Machine, Phase};
use crate::Error;
use crate::master::ids::WorkerKey;

impl Machine {
    /// Binds the configured addresses (workers start once they are bound), or starts the
    /// workers at once when there are none.
    pub(super) fn on_start(&mut self) {
        if self.phase != Phase::Idle {
            return;
        }
        self.phase = Phase::Binding;
        for address in self.config.addresses.clone() {
            if self.listeners.wish(ListenKey::from(address.as_str()), None) == Wish::Bind {
                self.push(Action::Bind { address });
            }
        }
        self.start_workers_once_bound();
    }

    /// A worker wants to listen on `address`: the master binds it once for the cluster.
    pub(super) fn on_query_server(&mut self, worker: WorkerKey, seq: u64, address: String) {
        if self.workers.get(&worker).is_some_and(|w| w.is_agent()) {
            let message =
                format!("the agent serves no connections; listen on {address} in the workers");
            self.send(worker, Message::ServerError { seq, message });
            return;
        }
        let key = ListenKey::from(address.as_str());
        match self.listeners.wish(key.clone(), Some((worker, seq))) {
            Wish::Bound(bound) => self.acknowledge_listen(worker, seq, key, bound),
            Wish::Bind => self.push(Action::Bind { address }),
            Wish::Wait => {}
        }
    }

    /// The driver bound `address`, or could not: answers everyone who waited for it. A
    /// configured address that cannot be bound stops the cluster before any worker starts; an
    /// address a worker asked for fails that worker's `listen` only.
    pub(super) fn on_bound(&mut self, address: String, result: io::Result<ListenAddr>) {
        let key = ListenKey::from(address.as_str());
        match result {
            Ok(bound) => {
                tracing::debug!(%address, %bound, "bound");
                for (worker, seq) in self.listeners.bound(key.clone(), bound.clone()) {
                    self.acknowledge_listen(worker, seq, key.clone(), bound.clone());
                }
                self.start_workers_once_bound();
            }
            Err(source) => {
                let error = Error::Bind { address, source };
                for (worker, seq) in self.listeners.failed(&key) {
                    let message = error.to_string();
                    self.send(worker, Message::ServerError { seq, message });
                }
                if self.phase == Phase::Binding {
                    self.fail(error);
                } else {
                    tracing::warn!(%error, "a worker asked for an address that cannot be bound");
                }
            }
        }
    }

    /// `serverAck`: how the worker will get its connections (with the listening socket itself
    /// under `shared`).
    fn acknowledge_listen(
        &mut self,
        worker: WorkerKey,
        seq: u64,
        key: ListenKey,
        bound: ListenAddr,
    ) {
        let policy = self.config.policy;
        let share = (policy == Policy::Shared).then(|| key.clone());
        let message = Message::ServerAck {
            seq,
            key,
            mode: policy.listen_mode(),
            address: bound,
            wait_ready: self.config.wait_ready,
        };
        self.push(Action::Send {
            worker,
            message,
            share,
        });
    }

    /// The listening socket could not be copied for the worker (out of descriptors, most
    /// likely): its `listen` fails, saying why; the cluster goes on.
    pub(super) fn on_share_failed(
        &mut self,
        worker: WorkerKey,
        seq: u64,
        key: ListenKey,
        error: io::Error,
    ) {
        let message = format!("cannot copy the listening socket of {key} for this worker: {error}");
        tracing::error!(%key, %error, "cannot copy the listening socket for a worker; its listen fails");
        self.send(worker, Message::ServerError { seq, message });
    }

    fn start_workers_once_bound(&mut self) {
        if self.phase != Phase::Binding || !self.listeners.all_bound(&self.config.addresses) {
            return;
        }
        self.phase = Phase::Running;
        tracing::info!(
            workers = self.config.worker_count,
            policy = ?self.config.policy,
            "starting workers"
        );
        self.start_first_processes();
        self.watch_liveness();
    }
}
