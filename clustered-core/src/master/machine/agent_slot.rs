//! The agent (egg's master/agent/worker model): one process of the same program in slot 0 that
//! serves no connections and does the work only one process should do. It starts before the
//! workers, which start once it is ready; it is restarted alone when it dies (the workers keep
//! serving); a reload replaces it first, stopping the old one before its successor starts. The
//! master relays workers' requests to it and its answers back; while no agent runs, a request
//! fails at once with an error saying so.

use clustered_ipc::{Message, Outcome};

use super::action::Notice;
use super::agent_requests::Pending;
use super::state::Machine;
use super::workers::Origin;
use crate::master::ids::WorkerKey;
use crate::role::AGENT_ID;

impl Machine {
    /// Starts the first processes once the addresses are bound: the agent alone if there is
    /// one (the workers follow once it is ready), else the workers.
    pub(super) fn start_first_processes(&mut self) {
        if self.config.agent {
            self.spawn(AGENT_ID, Origin::Initial);
        } else {
            self.start_workers();
        }
    }

    fn start_workers(&mut self) {
        if std::mem::replace(&mut self.workers_started, true) {
            return;
        }
        for slot in 1..=self.config.worker_count {
            self.spawn(slot, Origin::Initial);
        }
    }

    /// `key` may serve now (it joined, or said it is ready): an agent that does starts the
    /// workers the first time, and takes over from its predecessor in a reload.
    pub(super) fn serving_changed(&mut self, key: WorkerKey) {
        let Some(worker) = self.workers.get(&key) else {
            return;
        };
        if !worker.is_agent() || worker.is_leaving() || !self.serves(worker) {
            return;
        }
        tracing::info!(pid = worker.pid(), "agent ready");
        self.notify(Notice::AgentReady(key));
        self.start_workers();
        self.reload_on_listening(key);
    }

    /// The agent that serves now, if any.
    fn serving_agent(&self) -> Option<WorkerKey> {
        self.workers
            .iter()
            .find(|(_, worker)| {
                worker.is_agent() && worker.connected && !worker.is_leaving() && self.serves(worker)
            })
            .map(|(key, _)| *key)
    }

    /// The agent to relay a request to, or why there is none.
    fn agent_to_ask(&self) -> Result<WorkerKey, &'static str> {
        if !self.config.agent {
            return Err("this cluster has no agent (Cluster::agent)");
        }
        if self.agent_requests.is_full() {
            return Err(
                "the agent is overloaded (4096 requests wait for its answer); try again later",
            );
        }
        self.serving_agent()
            .ok_or("no agent is running right now (it is starting or being restarted); try again")
    }

    /// A worker's request for the agent: relayed, or answered at once when no agent runs (or
    /// it owes too many answers already).
    pub(super) fn on_agent_request(&mut self, key: WorkerKey, seq: u64, data: serde_json::Value) {
        let Some(from) = self.workers.get(&key).map(|worker| worker.slot) else {
            return;
        };
        let agent = match self.agent_to_ask() {
            Ok(agent) => agent,
            Err(reason) => {
                let outcome = Outcome::Error(reason.into());
                self.send(key, Message::Reply { seq, outcome });
                return;
            }
        };
        let id = self.agent_requests.add(Pending {
            worker: key,
            seq,
            agent,
        });
        self.send(agent, Message::AgentAsk { id, from, data });
    }

    /// The agent's answer, relayed to the worker that asked.
    pub(super) fn on_agent_answer(&mut self, key: WorkerKey, id: u64, outcome: Outcome) {
        if let Some(Pending { worker, seq, .. }) = self.agent_requests.answer(id, key) {
            self.send(worker, Message::Reply { seq, outcome });
        }
    }

    /// An agent exited: what it had not answered fails now, saying why.
    pub(super) fn agent_exited(&mut self, key: WorkerKey) {
        for Pending { worker, seq, .. } in self.agent_requests.take_unanswered(key) {
            let reason = "the agent exited before answering; a new one is starting".into();
            let outcome = Outcome::Error(reason);
            self.send(worker, Message::Reply { seq, outcome });
        }
    }
}
