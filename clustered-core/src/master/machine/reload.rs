//! [`Reload`]: the state of a rolling reload. Per slot (a batch at a time) a replacement is
//! started; once it listens on every address it takes over and the old worker is retired. A
//! reload asked for during another runs once after it.

use std::collections::VecDeque;

use crate::master::command::Replacement;
use crate::master::ids::WorkerKey;

/// One slot being replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Step {
    pub(super) slot: usize,
    /// The worker serving the slot when the step began (none if the slot was empty).
    pub(super) old: Option<WorkerKey>,
    /// Its pid, kept: the agent's has exited by the time its successor serves.
    pub(super) old_pid: Option<u32>,
    /// Its replacement, started and not yet listening everywhere; none yet for the agent,
    /// whose successor starts once the old one has exited (there is never two).
    pub(super) new: Option<WorkerKey>,
}

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
    /// This is the replacement of one worker past its limits (recycling), not a reload.
    recycling: bool,
    /// The slots replaced so far, in the order their successors took over.
    replaced: Vec<Replacement>,
}

impl Reload {
    /// Whether a reload is under way.
    pub(super) fn is_running(&self) -> bool {
        self.running
    }

    /// Begins a reload of `slots`; `false` (and one more reload noted) if one is running.
    pub(super) fn begin(&mut self, slots: impl IntoIterator<Item = usize>) -> bool {
        if self.running {
            self.again = true;
            return false;
        }
        *self = Reload {
            running: true,
            queue: slots.into_iter().collect(),
            ..Reload::default()
        };
        true
    }

    /// Begins the replacement of `slot` alone, as a reload does it (recycling); `false` if a
    /// reload or another recycling is under way.
    pub(super) fn begin_recycle(&mut self, slot: usize) -> bool {
        if self.running {
            return false;
        }
        *self = Reload {
            running: true,
            recycling: true,
            queue: VecDeque::from([slot]),
            ..Reload::default()
        };
        true
    }

    /// `old` exited: the slot whose step waited for that to start its successor, if any.
    pub(super) fn successor_due(&self, old: WorkerKey) -> Option<usize> {
        self.steps
            .iter()
            .find(|step| step.old == Some(old) && step.new.is_none())
            .map(|step| step.slot)
    }

    /// The successor started for `slot`'s step.
    pub(super) fn set_successor(&mut self, slot: usize, new: WorkerKey) {
        if let Some(step) = self.steps.iter_mut().find(|step| step.slot == slot) {
            step.new = Some(new);
        }
    }

    /// Whether what runs replaces one worker past its limits rather than reloading.
    pub(super) fn is_recycling(&self) -> bool {
        self.recycling
    }

    /// The next slot to start, while fewer than `batch` steps are under way.
    pub(super) fn next_slot(&mut self, batch: usize) -> Option<usize> {
        if self.steps.len() >= batch {
            return None;
        }
        self.queue.pop_front()
    }

    pub(super) fn add_step(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// The step of the replacement `worker` (pid `new_pid`), now done.
    pub(super) fn complete(&mut self, worker: WorkerKey, new_pid: u32) -> Option<Step> {
        let index = self
            .steps
            .iter()
            .position(|step| step.new == Some(worker))?;
        let step = self.steps.swap_remove(index);
        self.replaced.push(Replacement {
            id: step.slot,
            old_pid: step.old_pid,
            new_pid,
        });
        Some(step)
    }

    /// The slot of the replacement `worker`, if this reload waits for it.
    pub(super) fn slot_of(&self, worker: WorkerKey) -> Option<usize> {
        self.steps
            .iter()
            .find(|step| step.new == Some(worker))
            .map(|step| step.slot)
    }

    /// Every slot has been replaced: ends the reload, with what it replaced and whether
    /// another was asked for.
    pub(super) fn finish_if_done(&mut self) -> Option<(Vec<Replacement>, bool)> {
        if !self.running || !self.steps.is_empty() || !self.queue.is_empty() {
            return None;
        }
        let done = std::mem::take(self);
        Some((done.replaced, done.again))
    }

    /// Ends the reload early; returns the replacements still under way, and whether another
    /// reload was asked for meanwhile.
    pub(super) fn abort(&mut self) -> (Vec<Step>, bool) {
        let aborted = std::mem::take(self);
        (aborted.steps, aborted.again)
    }
}
