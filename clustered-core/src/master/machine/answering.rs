//! Answering commands: a reload when it has finished or failed, a scale when the new count of
//! workers serves, a restart when the successor serves; anything still waiting when the
//! master stops is answered then.

use super::action::Action;
use super::answers::{PendingRestart, PendingScale};
use super::input::ReplyId;
use super::state::Machine;
use crate::master::command::{Answer, Done, Replacement};
use crate::master::ids::WorkerKey;

impl Machine {
    /// Answers `reply`, if someone waits for it.
    pub(super) fn answer(&mut self, reply: Option<ReplyId>, answer: Answer) {
        if let Some(reply) = reply {
            self.push(Action::Answer { reply, answer });
        }
    }

    /// Answers every reload of the run that ended.
    pub(super) fn answer_reloads(&mut self, answer: &Answer) {
        for reply in std::mem::take(&mut self.answers.reload) {
            self.answer(Some(reply), answer.clone());
        }
    }

    /// A scale from `from` to `to` workers is under way: answered once they serve (one before
    /// it that is still waiting is answered now: this one supersedes it).
    pub(super) fn await_scale(&mut self, reply: Option<ReplyId>, from: usize, to: usize) {
        for earlier in std::mem::take(&mut self.answers.scales) {
            let answer = format!(
                "scaled from {} to {} workers, then to {to} by a later command",
                earlier.from, earlier.to
            );
            let done = Done {
                scaled: Some((earlier.from, earlier.to)),
                ..Done::saying(answer)
            };
            self.answer(Some(earlier.reply), Answer::Done(done));
        }
        if let Some(reply) = reply {
            self.answers.scales.push(PendingScale { reply, from, to });
        }
    }

    /// `old` (of `slot`, pid `old_pid`) is being replaced: answered once a successor serves.
    pub(super) fn await_restart(
        &mut self,
        reply: Option<ReplyId>,
        slot: usize,
        old: WorkerKey,
        old_pid: u32,
    ) {
        if let Some(reply) = reply {
            let restart = PendingRestart {
                reply,
                slot,
                old,
                old_pid,
            };
            self.answers.restarts.push(restart);
        }
    }

    /// Answers the scales and restarts whose workers serve now (looked at after every input,
    /// while any waits).
    pub(super) fn settle_answers(&mut self) {
        if self.answers.scales.is_empty() && self.answers.restarts.is_empty() {
            return;
        }
        let serving_slots = self
            .workers
            .values()
            .filter(|worker| {
                !worker.is_agent()
                    && !worker.is_leaving()
                    && self.is_current_slot(worker.slot)
                    && self.serves(worker)
            })
            .count();
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.answers.scales)
            .into_iter()
            .partition(|scale| serving_slots >= scale.to);
        self.answers.scales = waiting;
        for scale in done {
            let answer = format!("scaled from {} to {} workers", scale.from, scale.to);
            let done = Done {
                scaled: Some((scale.from, scale.to)),
                ..Done::saying(answer)
            };
            self.answer(Some(scale.reply), Answer::Done(done));
        }
        let restarts = std::mem::take(&mut self.answers.restarts);
        for restart in restarts {
            if !self.is_current_slot(restart.slot) {
                let answer = format!(
                    "worker {} (pid {}) was stopped, and a scale then removed its slot",
                    restart.slot, restart.old_pid
                );
                self.answer(Some(restart.reply), Answer::Failed(answer));
                continue;
            }
            match self.successor_serving(restart.slot, restart.old) {
                Some(new_pid) => {
                    let answer = format!(
                        "worker {} replaced: pid {} -> {new_pid}",
                        restart.slot, restart.old_pid
                    );
                    let done = Done {
                        replaced: vec![Replacement {
                            id: restart.slot,
                            old_pid: (restart.old_pid != 0).then_some(restart.old_pid),
                            new_pid,
                        }],
                        ..Done::saying(answer)
                    };
                    self.answer(Some(restart.reply), Answer::Done(done));
                }
                None => self.answers.restarts.push(restart),
            }
        }
    }

    /// The pid of a worker other than `old` that serves `slot`, if one does.
    fn successor_serving(&self, slot: usize, old: WorkerKey) -> Option<u32> {
        self.workers
            .iter()
            .find(|(key, worker)| {
                **key != old && worker.slot == slot && !worker.is_leaving() && self.serves(worker)
            })
            .map(|(_, worker)| worker.pid())
    }

    /// The master stops: whatever still waits fails, saying so.
    pub(super) fn fail_answers(&mut self, why: &str) {
        let answers = std::mem::take(&mut self.answers);
        let replies = answers
            .reload
            .into_iter()
            .chain(answers.next_reload)
            .chain(answers.scales.into_iter().map(|scale| scale.reply))
            .chain(answers.restarts.into_iter().map(|restart| restart.reply))
            .chain(
                answers
                    .certificates
                    .into_iter()
                    .map(|pending| pending.reply),
            );
        for reply in replies.collect::<Vec<_>>() {
            self.answer(Some(reply), Answer::Failed(why.to_owned()));
        }
    }
}
