//! Runtime scaling (`clusterctl scale`, SIGTTIN and SIGTTOU, as Gunicorn's): new slots start
//! workers at once; removed slots, always the highest, drain and are not replaced.

use super::action::Notice;
use super::input::ReplyId;
use super::state::{Machine, Phase};
use super::workers::Origin;
use crate::master::command::{Answer, Done, Scale};

impl Machine {
    /// Changes the worker count, unless the cluster is not running or a reload is under way
    /// (then it says so and changes nothing); answered once the new count serves.
    pub(super) fn scale(&mut self, scale: Scale, reply: Option<ReplyId>) {
        let refusal = if self.phase != Phase::Running {
            Some("not scaling: the cluster is not running (it is starting or stopping)")
        } else if self.reload.is_running() {
            Some("not scaling during a rolling reload (or a recycling); scale again after it")
        } else {
            None
        };
        if let Some(refusal) = refusal {
            tracing::warn!(?scale, "{refusal}");
            return self.answer(reply, Answer::Refused(refusal.into()));
        }
        let from = self.config.worker_count;
        let to = scale.target(from);
        if to == from {
            let done = Done {
                scaled: Some((to, to)),
                ..Done::saying(format!("{to} workers already"))
            };
            return self.answer(reply, Answer::Done(done));
        }
        tracing::info!(from, to, "scaling workers");
        self.config.worker_count = to;
        for slot in from + 1..=to {
            self.spawn(slot, Origin::Restart);
        }
        for slot in to + 1..=from {
            if let Some(worker) = self.serving_worker(slot) {
                self.retire(worker);
            }
        }
        self.notify(Notice::Scaled { from, to });
        self.await_scale(reply, from, to);
    }

    /// Whether `slot` is one of the cluster's slots now (a removed one gets no successor).
    pub(super) fn is_current_slot(&self, slot: usize) -> bool {
        slot <= self.config.worker_count
    }
}
