//! The fleet (Redis, `CLUSTER_REDIS_URL`): a broadcast goes to this master's workers and, as
//! [`FleetAction::Publish`], to the other masters, whose broadcasts arrive as
//! [`FleetInput::Message`]; a counter operation is done in Redis
//! ([`FleetAction::Counter`]), answered when Redis answers; the workers hear whether Redis is
//! reachable (`fleetStatus`), so that a fleet broadcast fails at once in the worker while it
//! is not.

use clustered_ipc::{CounterOp, Message, Outcome, Peer};

use super::action::{Action, FleetAction};
use super::counters::MAX_NAME_LEN;
use super::input::{FleetInput, Timer};
use super::state::Machine;
use super::subscriptions::PUSH_INTERVAL;
use super::workers::Origin;
use crate::master::ids::WorkerKey;
use crate::role::AGENT_ID;

/// Why a fleet operation was not done.
const DOWN: &str = "the fleet's Redis is unreachable; nothing was sent (retry once it is back)";

impl Machine {
    pub(super) fn on_fleet(&mut self, input: FleetInput) {
        match input {
            FleetInput::Up(up) => {
                if std::mem::replace(&mut self.fleet.up, up) != up {
                    let keys: Vec<WorkerKey> = self.workers.keys().copied().collect();
                    for key in keys {
                        self.tell_fleet_status(key);
                    }
                }
            }
            FleetInput::Message { data } => {
                let message = Message::Deliver {
                    from: Peer::Fleet,
                    data,
                };
                self.deliver(|_, _| true, &message, None);
            }
            FleetInput::Reply {
                worker,
                seq,
                outcome,
            } => self.send(worker, Message::Reply { seq, outcome }),
            FleetInput::Lease(token) => self.on_lease(token),
            FleetInput::AgentAsk { master, id, data } => self.on_fleet_agent_ask(master, id, data),
            FleetInput::CounterValue { name, value } => {
                self.fleet.heard(&name, value);
                self.push(Action::PublishCounter {
                    name: name.clone(),
                    value,
                });
                if self.subscriptions.changed(name) {
                    self.arm(PUSH_INTERVAL, Timer::PushCounters);
                }
            }
        }
    }

    /// The fleet's lease was taken (the agent starts here) or lost (the agent here is
    /// stopped at once, before another master can take the lease and start its own).
    fn on_lease(&mut self, token: Option<u64>) {
        let before = std::mem::replace(&mut self.fleet.lease, token);
        if !self.config.agent || before == token {
            return;
        }
        let agents: Vec<WorkerKey> = self
            .workers
            .iter()
            .filter(|(_, worker)| worker.is_agent() && !worker.is_leaving())
            .map(|(key, _)| *key)
            .collect();
        for agent in agents {
            tracing::info!("the fleet's lease is lost; stopping the agent");
            self.abandon(agent);
        }
        if let Some(token) = token
            && !self.is_stopping()
        {
            tracing::info!(
                token,
                "this master holds the fleet's lease; starting the agent"
            );
            self.spawn(AGENT_ID, Origin::Initial);
        }
    }

    /// Whether the agent may run here: always on one host; in a fleet while this master
    /// holds the lease.
    pub(super) fn may_run_agent(&self) -> bool {
        !self.config.fleet || self.fleet.lease.is_some()
    }

    /// Gives a broadcast to the other masters, or says why it cannot be (Redis unreachable).
    /// Without a fleet there is nothing to do.
    pub(super) fn publish_to_fleet(&mut self, message: &Message) -> Result<(), &'static str> {
        if !self.config.fleet {
            return Ok(());
        }
        if !self.fleet.up {
            return Err(DOWN);
        }
        if let Message::Deliver { data, .. } = message {
            let data = data.clone();
            self.push(Action::Fleet(FleetAction::Publish { data }));
        }
        Ok(())
    }

    /// A worker's counter operation, done in Redis (answered once Redis answers), or failed at
    /// once while Redis is unreachable.
    pub(super) fn fleet_counter(&mut self, key: WorkerKey, seq: u64, name: String, op: CounterOp) {
        let refused = if !self.fleet.up {
            Some(DOWN.to_owned())
        } else if name.len() > MAX_NAME_LEN {
            Some(format!("a counter name is at most {MAX_NAME_LEN} bytes"))
        } else {
            None
        };
        if let Some(reason) = refused {
            let outcome = Outcome::Error(reason);
            self.send(key, Message::Reply { seq, outcome });
            return;
        }
        if op == CounterOp::Subscribe {
            self.subscriptions.subscribe(&name, key);
        }
        self.push(Action::Fleet(FleetAction::Counter {
            worker: key,
            seq,
            name,
            op,
        }));
    }

    /// Tells a connected worker whether the fleet's Redis is reachable (with a fleet only).
    pub(super) fn tell_fleet_status(&mut self, key: WorkerKey) {
        let connected = self.workers.get(&key).is_some_and(|w| w.connected);
        if self.config.fleet && connected {
            let up = self.fleet.up;
            self.send(key, Message::FleetStatus { up });
        }
    }

    /// A counter's value to push: the fleet's latest, or this master's own.
    pub(super) fn counter_value(&self, name: &str) -> i64 {
        match self.config.fleet {
            true => self.fleet.value(name).unwrap_or(0),
            false => self.counters.get(name),
        }
    }
}
