//! Rolling reload: for each slot (a batch at a time) start a replacement, wait until it listens
//! on every address, then retire the old worker (no new connections, `disconnect`, killed after
//! the shutdown timeout). A replacement that dies or is not listening in time aborts the reload
//! and the old workers keep serving. A reload asked for during another runs once after it.

use std::collections::VecDeque;

use tokio::time::Instant;

use super::event::WorkerKey;
use super::{ClusterEvent, Master};

/// The reload in progress, if any.
#[derive(Debug, Default)]
pub(super) struct Reload {
    running: bool,
    /// Slots not yet started.
    queue: VecDeque<usize>,
    /// Replacements started and not yet listening.
    steps: Vec<Step>,
    /// Another reload was asked for while this one ran.
    again: bool,
}

#[derive(Debug)]
struct Step {
    slot: usize,
    old: Option<WorkerKey>,
    new: WorkerKey,
    deadline: Instant,
}

impl Reload {
    /// When the oldest replacement must be listening.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.steps.iter().map(|step| step.deadline).min()
    }
}

impl Master {
    pub(super) fn request_reload(&mut self) {
        if self.stopping {
            return;
        }
        if self.reload.running {
            tracing::info!("a reload is running; another will follow it");
            self.reload.again = true;
            return;
        }
        tracing::info!("rolling reload started");
        self.reload = Reload {
            running: true,
            queue: (1..=self.worker_count).collect(),
            ..Reload::default()
        };
        self.control.emit(ClusterEvent::ReloadStarted);
        self.advance_reload();
    }

    /// Starts replacements up to the batch size; finishes the reload when none is left.
    fn advance_reload(&mut self) {
        while self.reload.steps.len() < self.cluster.reload_batch {
            let Some(slot) = self.reload.queue.pop_front() else {
                break;
            };
            let old = self.serving_worker(slot);
            match self.spawn(slot) {
                Ok(new) => self.reload.steps.push(Step {
                    slot,
                    old,
                    new,
                    deadline: Instant::now() + self.cluster.reload_timeout,
                }),
                Err(error) => return self.fail_reload(slot, error.to_string()),
            }
        }
        if self.reload.running && self.reload.steps.is_empty() && self.reload.queue.is_empty() {
            tracing::info!("rolling reload finished");
            let again = self.reload.again;
            self.reload = Reload::default();
            self.control.emit(ClusterEvent::ReloadFinished);
            if again {
                self.request_reload();
            }
        }
    }

    /// A replacement listening on every address takes over its slot.
    pub(super) fn reload_on_listening(&mut self, key: WorkerKey) {
        let Some(index) = self.reload.steps.iter().position(|step| step.new == key) else {
            return;
        };
        let listening = self.workers.get(&key).map_or(0, |w| w.listening.len());
        if listening < self.listeners.len() {
            return;
        }
        let step = self.reload.steps.swap_remove(index);
        let new_pid = self.workers.get(&key).map_or(0, |w| w.pid);
        let old_pid = step
            .old
            .and_then(|old| self.workers.get(&old))
            .map_or(0, |w| w.pid);
        if let Some(old) = step.old {
            self.retire(old);
        }
        tracing::info!(slot = step.slot, old_pid, new_pid, "worker reloaded");
        self.control.emit(ClusterEvent::Reloaded {
            id: step.slot,
            old_pid,
            new_pid,
        });
        self.advance_reload();
    }

    /// A replacement that exits before listening aborts the reload.
    pub(super) fn reload_on_exit(&mut self, key: WorkerKey, slot: usize, how: &str) {
        if self.reload.steps.iter().any(|step| step.new == key) {
            self.fail_reload(
                slot,
                format!("the new worker exited before listening: {how}"),
            );
        }
    }

    pub(super) fn reload_timed_out(&mut self) {
        let now = Instant::now();
        if let Some(step) = self.reload.steps.iter().find(|step| step.deadline <= now) {
            let reason = format!(
                "the new worker was not listening within {:?}",
                self.cluster.reload_timeout
            );
            self.fail_reload(step.slot, reason);
        }
    }

    /// Stops the reload: replacements not yet listening are killed, old workers keep serving.
    fn fail_reload(&mut self, slot: usize, reason: String) {
        tracing::error!(
            slot,
            "reload aborted: {reason}; the old workers keep serving"
        );
        for step in std::mem::take(&mut self.reload.steps) {
            if let Some(replacement) = self.workers.get_mut(&step.new) {
                replacement.abandon();
            }
        }
        self.reload = Reload::default();
        self.control
            .emit(ClusterEvent::ReloadFailed { id: slot, reason });
    }
}
