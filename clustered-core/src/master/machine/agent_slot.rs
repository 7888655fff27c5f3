//! The agent (egg's master/agent/worker model): one process of the same program in slot 0 that
//! serves no connections and does the work only one process should do. It starts before the
//! workers, which start once it is ready; it is restarted alone when it dies (the workers keep
//! serving); a reload replaces it first, stopping the old one before its successor starts. The
//! master relays workers' requests to it and its answers back; while no agent runs, a request
//! fails at once with an error saying so.

use clustered_ipc::{Message, Outcome};

use super::action::Notice;
use super::action::{Action, FleetAction};
use super::agent_requests::{Asker, Pending};
use super::state::Machine;
use super::workers::Origin;
use crate::master::ids::WorkerKey;
use crate::role::AGENT_ID;

impl Machine {
    /// Starts the first processes once the addresses are bound: the agent alone if there is
    /// one (the workers follow once it is ready), else the workers.
    pub(super) fn start_first_processes(&mut self) {
        // In a fleet the agent waits for the fleet's lease (`fleet.rs`), the workers do not.
        if self.config.agent && !self.config.fleet {
            self.spawn(AGENT_ID, Origin::Initial);
        } else {
            self.start_workers();
        }
    }

    pub(super) fn start_workers(&mut self) {
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
    pub(super) fn serving_agent(&self) -> Option<WorkerKey> {
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
        if self.config.agent && self.config.fleet && self.fleet.lease.is_none() {
            // The fleet's agent runs under another master: the request goes there.
            let action = FleetAction::AgentRequest {
                worker: key,
                seq,
                data,
            };
            self.push(Action::Fleet(action));
            return;
        }
        let agent = match self.agent_to_ask() {
            Ok(agent) => agent,
            Err(reason) => {
                let outcome = Outcome::Error(reason.into());
                self.send(key, Message::Reply { seq, outcome });
                return;
            }
        };
        let id = self.agent_requests.add(Pending {
            asker: Asker::Worker { worker: key, seq },
            agent,
        });
        self.send(agent, Message::AgentAsk { id, from, data });
    }

    /// Another master's request for the agent of the fleet, which runs here (or, if it does
    /// not right now, answered at once saying so). The agent sees it as from slot 0.
    pub(super) fn on_fleet_agent_ask(&mut self, master: String, id: u64, data: serde_json::Value) {
        match self.agent_to_ask() {
            Ok(agent) => {
                let asker = Asker::Fleet { master, id };
                let local = self.agent_requests.add(Pending { asker, agent });
                let from = AGENT_ID;
                self.send(
                    agent,
                    Message::AgentAsk {
                        id: local,
                        from,
                        data,
                    },
                );
            }
            Err(reason) => {
                self.answer_asker(Asker::Fleet { master, id }, Outcome::Error(reason.into()))
            }
        }
    }

    /// Gives `outcome` to whoever asked.
    fn answer_asker(&mut self, asker: Asker, outcome: Outcome) {
        match asker {
            Asker::Worker { worker, seq } => self.send(worker, Message::Reply { seq, outcome }),
            Asker::Fleet { master, id } => {
                let action = FleetAction::AgentAnswer {
                    master,
                    id,
                    outcome,
                };
                self.push(Action::Fleet(action));
            }
        }
    }

    /// The agent's answer, relayed to the worker that asked.
    pub(super) fn on_agent_answer(&mut self, key: WorkerKey, id: u64, outcome: Outcome) {
        if let Some(Pending { asker, .. }) = self.agent_requests.answer(id, key) {
            self.answer_asker(asker, outcome);
        }
    }

    /// An agent exited: what it had not answered fails now, saying why.
    pub(super) fn agent_exited(&mut self, key: WorkerKey) {
        for Pending { asker, .. } in self.agent_requests.take_unanswered(key) {
            let reason = "the agent exited before answering; a new one is starting".into();
            self.answer_asker(asker, Outcome::Error(reason));
        }
    }
}
