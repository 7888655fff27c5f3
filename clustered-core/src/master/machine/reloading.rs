//! Rolling reload: per slot (a batch at a time) start a replacement, wait until it listens on
//! every address, then retire the old worker. A replacement that dies, cannot start or is not
//! listening in time aborts the reload and the old workers keep serving.

use super::action::Notice;
use super::input::{ReplyId, Timer};
use super::reload::Step;
use super::state::{Machine, Phase};
use super::workers::Origin;
use crate::master::command::{Answer, Done};
use crate::master::ids::WorkerKey;
use crate::role::AGENT_ID;

impl Machine {
    /// Starts a reload, or notes one more after the one running; `reply` is answered when the
    /// reload it joins has finished or failed.
    pub(super) fn request_reload(&mut self, reply: Option<ReplyId>) {
        if self.phase != Phase::Running {
            let refusal = "no reload: the cluster is not running (it is starting or stopping)";
            return self.answer(reply, Answer::Refused(refusal.into()));
        }
        let agent = self.config.agent.then_some(AGENT_ID);
        if !self
            .reload
            .begin(agent.into_iter().chain(1..=self.config.worker_count))
        {
            tracing::info!("a reload is running; another will follow it");
            self.answers.next_reload.extend(reply);
            return;
        }
        let asked_during_the_last = std::mem::take(&mut self.answers.next_reload);
        self.answers.reload.extend(asked_during_the_last);
        self.answers.reload.extend(reply);
        tracing::info!("rolling reload started");
        self.notify(Notice::ReloadStarted);
        self.advance_reload();
    }

    /// Starts replacements up to the batch size; finishes the reload when none is left.
    pub(super) fn advance_reload(&mut self) {
        while let Some(slot) = self.reload.next_slot(self.config.reload_batch) {
            let old = self.serving_worker(slot);
            let old_pid = old
                .and_then(|old| self.workers.get(&old))
                .map(|worker| worker.pid());
            if slot == AGENT_ID
                && let Some(old) = old
            {
                // One agent at a time: the old one stops first, its successor starts once it
                // has exited.
                self.retire(old);
                let new = None;
                self.reload.add_step(Step {
                    slot,
                    old: Some(old),
                    old_pid,
                    new,
                });
                continue;
            }
            let new = self.start_successor(slot);
            self.reload.add_step(Step {
                slot,
                old,
                old_pid,
                new: Some(new),
            });
        }
        let recycling = self.reload.is_recycling();
        if let Some((replaced, again)) = self.reload.finish_if_done() {
            if !recycling {
                tracing::info!("rolling reload finished");
                self.notify(Notice::ReloadFinished);
                let serving = self.workers.values().filter(|w| !w.is_leaving()).count();
                let done = Done {
                    replaced,
                    ..Done::saying(format!(
                        "reloaded: every worker was replaced ({serving} now serve)"
                    ))
                };
                self.answer_reloads(&Answer::Done(done));
            }
            if again {
                self.request_reload(None);
            }
        }
    }

    /// Starts a reload's replacement for `slot`, with its deadline.
    fn start_successor(&mut self, slot: usize) -> WorkerKey {
        let new = self.spawn(slot, Origin::Reload);
        self.arm(
            self.config.reload_timeout,
            Timer::ReloadDeadline { worker: new },
        );
        new
    }

    /// `old` exited: if a reload step waited for that (the agent's), its successor starts.
    pub(super) fn reload_on_exit(&mut self, old: WorkerKey) {
        if let Some(slot) = self.reload.successor_due(old) {
            let new = self.start_successor(slot);
            self.reload.set_successor(slot, new);
        }
    }

    /// A replacement listening on every address (and ready, when that is waited for) takes
    /// over its slot.
    pub(super) fn reload_on_listening(&mut self, key: WorkerKey) {
        if !self.workers.get(&key).is_some_and(|w| self.serves(w)) {
            return;
        }
        let new_pid = self.workers.get(&key).map_or(0, |worker| worker.pid());
        // None: not a replacement this reload waits for.
        let Some(step) = self.reload.complete(key, new_pid) else {
            return;
        };
        let old_pid = step.old_pid.unwrap_or(0);
        if let Some(old) = step.old {
            self.retire(old);
        }
        tracing::info!(slot = step.slot, old_pid, new_pid, "worker reloaded");
        self.notify(Notice::Reloaded {
            slot: step.slot,
            old_pid,
            new_pid,
        });
        self.advance_reload();
    }

    /// A replacement that could not start or died before listening aborts the reload.
    pub(super) fn reload_on_loss(&mut self, key: WorkerKey, why: String) {
        if let Some(slot) = self.reload.slot_of(key) {
            self.fail_reload(slot, why);
        }
    }

    /// A replacement's time to listen ran out (if it is still awaited).
    pub(super) fn on_reload_deadline(&mut self, key: WorkerKey) {
        if let Some(slot) = self.reload.slot_of(key) {
            let reason = format!(
                "the new worker was not listening within {:?}",
                self.config.reload_timeout
            );
            self.fail_reload(slot, reason);
        }
    }

    /// Stops the reload: replacements not yet listening are killed, old workers keep serving.
    /// A recycling that fails leaves its worker serving, and is not tried again for a while.
    fn fail_reload(&mut self, slot: usize, reason: String) {
        let recycling = self.reload.is_recycling();
        let (steps, again) = self.reload.abort();
        for step in steps {
            if let Some(new) = step.new {
                self.abandon(new);
            }
            if step.slot == AGENT_ID {
                // The old agent was stopped for its successor: the slot starts over.
                self.arm(
                    self.config.restart.initial_backoff,
                    Timer::RestartDue { slot: AGENT_ID },
                );
            }
            if recycling {
                self.recycling_failed(step.old);
            }
        }
        if recycling {
            tracing::error!(
                slot,
                "recycling aborted: {reason}; the old worker keeps serving"
            );
            if again {
                self.request_reload(None);
            }
        } else {
            tracing::error!(
                slot,
                "reload aborted: {reason}; the old workers keep serving"
            );
            let failed =
                format!("reload aborted at worker {slot}: {reason}; the old workers keep serving");
            self.answer_reloads(&Answer::Failed(failed.clone()));
            // The reload asked for during this one does not run either.
            for reply in std::mem::take(&mut self.answers.next_reload) {
                let answer = format!("not reloaded: the reload before it failed ({failed})");
                self.answer(Some(reply), Answer::Failed(answer));
            }
            self.notify(Notice::ReloadFailed { slot, reason });
        }
    }
}
