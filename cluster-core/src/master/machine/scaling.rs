//! Runtime scaling (`clusterctl scale`, SIGTTIN and SIGTTOU, as Gunicorn's): new slots start
//! workers at once; removed slots, always the highest, drain and are not replaced.

use super::action::Notice;
use super::state::{Machine, Phase};
use super::workers::Origin;
use crate::master::command::Scale;

impl Machine {
    /// Changes the worker count, unless the cluster is not running or a reload is under way
    /// (then it says so and changes nothing).
    pub(super) fn scale(&mut self, scale: Scale) {
        if self.phase != Phase::Running {
            tracing::warn!(?scale, "not scaling: the cluster is not running");
            return;
        }
        if self.reload.is_running() {
            tracing::warn!(
                ?scale,
                "not scaling during a rolling reload; scale again after it"
            );
            return;
        }
        let from = self.config.worker_count;
        let to = scale.target(from);
        if to == from {
            return;
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
    }

    /// Whether `slot` is one of the cluster's slots now (a removed one gets no successor).
    pub(super) fn is_current_slot(&self, slot: usize) -> bool {
        slot <= self.config.worker_count
    }
}
