//! User messages between processes (relayed by the master) and the cluster-wide counters.
//! Messages for the master's own inbox never get here: the driver hands them to the inbox
//! straight from the worker's channel.

use clustered_ipc::{CounterOp, Message, Outcome, Peer, Route};

use super::action::Action;
use super::input::Timer;
use super::state::Machine;
use super::subscriptions::PUSH_INTERVAL;
use super::workers::WorkerState;
use crate::master::command::Target;
use crate::master::ids::WorkerKey;

impl Machine {
    /// Relays a worker's user message; with a `seq`, it is answered with a receipt: an error
    /// when no live worker is there to take it; for one worker, the driver answers once the
    /// message is queued for it (or dropped because that worker does not keep up).
    pub(super) fn on_user_message(
        &mut self,
        key: WorkerKey,
        to: Route,
        data: serde_json::Value,
        seq: Option<u64>,
    ) {
        let Some(from) = self.workers.get(&key).map(|worker| worker.slot) else {
            return;
        };
        let message = Message::Deliver {
            from: Peer::Worker(from),
            data,
        };
        let outcome = match to {
            Route::Master => Outcome::Error("not deliverable".into()),
            Route::All => match self.publish_to_fleet(&message) {
                Ok(()) => {
                    self.deliver(|_, _| true, &message, None);
                    Outcome::Ok(serde_json::Value::Null)
                }
                Err(reason) => Outcome::Error(reason.into()),
            },
            Route::AllLocal => {
                self.deliver(|_, _| true, &message, None);
                Outcome::Ok(serde_json::Value::Null)
            }
            Route::Worker(slot) => {
                let receipt = seq.map(|seq| (key, seq));
                match self.deliver(|_, worker| worker.slot == slot, &message, receipt) {
                    0 => Outcome::Error(format!("no live worker {slot}")),
                    _ => return, // the driver answers
                }
            }
        };
        if let Some(seq) = seq {
            self.send(key, Message::Reply { seq, outcome });
        }
    }

    /// Relays a message from master code.
    pub(super) fn on_master_message(&mut self, to: Target, data: serde_json::Value) {
        let message = Message::Deliver {
            from: Peer::Master,
            data,
        };
        match to {
            Target::All => {
                if let Err(reason) = self.publish_to_fleet(&message) {
                    tracing::warn!("{reason}");
                }
                self.deliver(|_, _| true, &message, None)
            }
            Target::One(target) => self.deliver(|key, _| key == target, &message, None),
        };
    }

    /// Queues `message` for every connected worker that is not stopping and `matches`, the
    /// first with `receipt` to answer; returns how many.
    pub(super) fn deliver(
        &mut self,
        matches: impl Fn(WorkerKey, &WorkerState) -> bool,
        message: &Message,
        mut receipt: Option<(WorkerKey, u64)>,
    ) -> usize {
        let targets: Vec<WorkerKey> = self
            .workers
            .iter()
            .filter(|(key, worker)| {
                worker.connected && !worker.is_leaving() && matches(**key, worker)
            })
            .map(|(key, _)| *key)
            .collect();
        for worker in &targets {
            self.push(Action::Deliver {
                worker: *worker,
                message: message.clone(),
                receipt: receipt.take(),
            });
        }
        targets.len()
    }

    /// Applies a worker's counter operation and answers it with the value (or why not); a
    /// change to a followed counter schedules a push (coalesced).
    pub(super) fn on_counter(&mut self, key: WorkerKey, seq: u64, name: String, op: CounterOp) {
        let Some((key, seq, name, op)) = self.divert_counter(key, seq, name, op) else {
            return;
        };
        if self.config.fleet {
            self.fleet_counter(key, seq, name, op);
            return;
        }
        let outcome = match self.counters.apply(key, &name, op) {
            Ok(value) => {
                self.counter_applied(key, name, op, value);
                Outcome::Ok(value.into())
            }
            Err(reason) => Outcome::Error(reason),
        };
        self.send(key, Message::Reply { seq, outcome });
    }

    pub(super) fn counter_applied(
        &mut self,
        key: WorkerKey,
        name: String,
        op: CounterOp,
        value: i64,
    ) {
        match op {
            CounterOp::Subscribe => self.subscriptions.subscribe(&name, key),
            CounterOp::Add(_) => {
                self.push(Action::PublishCounter {
                    name: name.clone(),
                    value,
                });
                if self.subscriptions.changed(name) {
                    self.arm(PUSH_INTERVAL, Timer::PushCounters);
                }
            }
            CounterOp::Get => {}
        }
    }

    /// Pushes every changed counter's latest value to the workers following it.
    pub(super) fn push_counters(&mut self) {
        for (name, followers) in self.subscriptions.take_changed() {
            let value = self.counter_value(&name);
            let message = Message::CounterValue { name, value };
            self.deliver(|key, _| followers.contains(&key), &message, None);
        }
    }
}
