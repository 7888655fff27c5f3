//! Upgrading the master itself (`kill -USR2`, `clusterctl upgrade`), on both sides.
//!
//! The old master: one upgrade at a time, none during a rolling reload or a stop. It asks the
//! driver to start the new master from the executable on disk and gives it the boot timeout
//! to have every worker serving; past that, or if it fails first, the new master is killed
//! and this one goes on as if nothing happened (the answer says why). Once the new master
//! serves, this one hands over its state and stops as on SIGTERM, but its draining workers'
//! counter operations go to the new master, whose counters are the cluster's from then on.
//!
//! The new master: its workers' counter operations go to the old master until they serve,
//! then wait until the old one's state arrives (or cannot), so every value they see counts
//! everything before; its counters are the cluster's from then on.

use std::collections::BTreeMap;

use clustered_ipc::{CounterOp, Message, Outcome};

use super::action::{Action, Notice};
use super::input::{ReplyId, Timer};
use super::state::Machine;
use super::subscriptions::PUSH_INTERVAL;
use super::upgrade::OLD_MASTER;
use crate::master::command::{Answer, Done};
use crate::master::ids::WorkerKey;

impl Machine {
    /// Starts an upgrade, unless one is under way, a reload runs or the master stops.
    pub(super) fn request_upgrade(&mut self, reply: Option<ReplyId>) {
        let refusal = if self.is_stopping() {
            Some("the master is stopping")
        } else if self.upgrade.starting.is_some() {
            Some("an upgrade is under way already")
        } else if self.reload.is_running() {
            Some("a rolling reload is under way; upgrade once it has ended")
        } else if !self.ready {
            Some("the master is still starting; upgrade once every worker serves")
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return self.answer(reply, Answer::Refused(refusal.into()));
        }
        tracing::info!("upgrading the master: starting a new one from the executable on disk");
        self.upgrade.starting = Some(reply);
        self.upgrade.attempts = self.upgrade.attempts.wrapping_add(1);
        let attempt = self.upgrade.attempts;
        self.arm(self.config.boot_timeout, Timer::UpgradeDeadline { attempt });
        self.push(Action::StartUpgrade);
    }

    /// The new master failed (it could not start, exited, or spoke nonsense): it is killed,
    /// this one serves on.
    pub(super) fn on_upgrade_failed(&mut self, reason: String) {
        let Some(reply) = self.upgrade.starting.take() else {
            return;
        };
        tracing::error!("the upgrade failed: {reason}; this master keeps serving");
        self.push(Action::AbortUpgrade);
        let answer = Answer::Failed(format!(
            "the upgrade failed: {reason}; the old master keeps serving"
        ));
        self.answer(reply, answer);
    }

    /// The new master of upgrade `attempt` had the boot timeout to serve.
    pub(super) fn on_upgrade_deadline(&mut self, attempt: u64) {
        if attempt != self.upgrade.attempts {
            return;
        }
        let timeout = self.config.boot_timeout;
        self.on_upgrade_failed(format!(
            "the new master had no serving workers within the boot timeout ({timeout:?})"
        ));
    }

    /// Every worker of the new master serves: this master hands over and stops.
    pub(super) fn on_new_master_serving(&mut self, old_pid: u32, new_pid: u32) {
        let Some(reply) = self.upgrade.starting.take() else {
            return;
        };
        tracing::info!(new_pid, "the new master serves; handing over and draining");
        self.upgrade.handed_over = true;
        self.push(Action::HandOver {
            counters: self.counters.values(),
        });
        self.notify(Notice::HandedOver { to: new_pid });
        let mut done = Done::saying(format!(
            "upgraded: master {new_pid} serves; master {old_pid} drains and exits"
        ));
        done.upgraded = Some((old_pid, new_pid));
        self.answer(reply, Answer::Done(done));
        self.begin_stop();
    }

    /// Whether this master's counter operations go elsewhere, taking the operation when they
    /// do: to the new master it handed over to; from a master an upgrade started, to the old
    /// master until it serves, then into a queue until the old master's state arrives (which
    /// counts every operation forwarded before).
    pub(super) fn divert_counter(
        &mut self,
        key: WorkerKey,
        seq: u64,
        name: String,
        op: CounterOp,
    ) -> Option<(WorkerKey, u64, String, CounterOp)> {
        let forward =
            self.upgrade.handed_over || (self.upgrade.awaiting_state.is_some() && !self.ready);
        if forward {
            if op == CounterOp::Subscribe && !self.upgrade.handed_over {
                // Followed here, once the counters are this master's.
                self.subscriptions.subscribe(&name, key);
            }
            self.push(Action::ForwardCounter {
                worker: key,
                seq,
                name,
                op,
            });
            return None;
        }
        match &mut self.upgrade.awaiting_state {
            Some(waiting) => {
                waiting.push((key, seq, name, op));
                None
            }
            None => Some((key, seq, name, op)),
        }
    }

    /// The new master's answer to a counter operation this one forwarded.
    pub(super) fn on_forwarded_counter(&mut self, worker: WorkerKey, seq: u64, outcome: Outcome) {
        self.send(worker, Message::Reply { seq, outcome });
    }

    /// New side: the old master's counters (none when its state could not be had); the
    /// operations that waited for them are applied now, in order.
    pub(super) fn on_adopt(&mut self, counters: BTreeMap<String, i64>) {
        let Some(waiting) = self.upgrade.awaiting_state.take() else {
            return;
        };
        let names: Vec<String> = counters.keys().cloned().collect();
        self.counters.restore(counters);
        // Followers hear the value they may have missed while it was the old master's.
        let mut followed = false;
        for name in names {
            // Every one is marked, so no short cut.
            followed |= self.subscriptions.changed(name);
        }
        if followed {
            self.arm(PUSH_INTERVAL, Timer::PushCounters);
        }
        for (key, seq, name, op) in waiting {
            self.on_counter(key, seq, name, op);
        }
    }

    /// New side: a counter operation of one of the old master's draining workers.
    pub(super) fn on_foreign_counter(&mut self, id: u64, name: String, op: CounterOp) {
        // A draining worker of another master follows nothing here.
        let op = match op {
            CounterOp::Subscribe => CounterOp::Get,
            op => op,
        };
        let outcome = match self.counters.apply(OLD_MASTER, &name, op) {
            Ok(value) => {
                self.counter_applied(OLD_MASTER, name, op, value);
                Outcome::Ok(value.into())
            }
            Err(reason) => Outcome::Error(reason),
        };
        self.push(Action::AnswerForeign { id, outcome });
    }
}
