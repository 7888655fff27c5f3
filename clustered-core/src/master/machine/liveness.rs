//! Liveness: a worker must be heard from every heartbeat period. One silent for
//! [`SUSPECT_AFTER`], or that owes an answer to a handoff and has said nothing for
//! [`UNANSWERED_SUSPECT_AFTER`], gets no new connections until it is heard from again (an idle
//! worker beats slowly, so a stopped one is found out by the first connection it does not
//! answer, not by a fast idle heartbeat); one silent for the
//! hang timeout is killed and replaced, and once it has exited the connections handed to it and
//! not acknowledged go to others (a worker acknowledges a handoff before it hands the
//! connection to its server, and a dead one reads nothing). One not listening within the boot
//! timeout is killed and replaced too.

use std::time::{Duration, Instant};

use super::config::{SUSPECT_AFTER, UNANSWERED_SUSPECT_AFTER};
use super::input::Timer;
use super::state::{Machine, Phase};
use super::workers::{Origin, WorkerState};
use crate::master::ids::WorkerKey;
use crate::master::process_exit::ExitReason;

impl Machine {
    /// The worker was heard from: alive. A suspect one takes connections again.
    pub(super) fn heard_from(&mut self, key: WorkerKey) {
        let Some(worker) = self.workers.get_mut(&key) else {
            return;
        };
        worker.last_heard = self.now;
        if std::mem::take(&mut worker.suspect) {
            tracing::info!(
                slot = worker.slot,
                pid = worker.pid(),
                "worker answers again"
            );
            self.drain_backlog();
        }
    }

    /// Starts looking for silent workers, and keeps looking until the master finishes: the
    /// check runs when the first worker could turn suspect or hung if it said nothing more
    /// (and at least every [`SUSPECT_AFTER`]), so while every worker beats, an idle master
    /// wakes for it every few seconds, not on a ticker.
    pub(super) fn watch_liveness(&mut self) {
        if let Some(next) = self.next_liveness_check() {
            self.check_liveness_by(next);
        }
    }

    /// Marks silent workers suspect, and kills those silent for the hang timeout.
    pub(super) fn on_liveness_check(&mut self) {
        if self.phase == Phase::Finished {
            return;
        }
        if self.liveness_due.is_some_and(|due| self.now < due) {
            // Armed before an earlier one, which has run and armed the next.
            return;
        }
        self.liveness_due = None;
        let (now, hang_timeout) = (self.now, self.config.hang_timeout);
        let mut hung = Vec::new();
        for (key, worker) in &mut self.workers {
            if !worker.online || worker.killed_for.is_some() {
                continue;
            }
            let silent = now.saturating_duration_since(worker.last_heard);
            let owes_answer = silent.min(worker.unanswered_for(now)) >= UNANSWERED_SUSPECT_AFTER;
            if hang_timeout.is_some_and(|limit| silent >= limit) {
                hung.push((*key, silent));
            } else if (silent >= SUSPECT_AFTER || owes_answer) && !worker.suspect {
                tracing::warn!(
                    slot = worker.slot,
                    pid = worker.pid(),
                    ?silent,
                    "worker is silent; no new connections for it until it answers"
                );
                worker.suspect = true;
            }
        }
        for (key, silent) in hung {
            tracing::error!(?silent, "worker hung (no heartbeat); killing it");
            self.kill(key, ExitReason::Hung);
        }
        self.watch_liveness();
    }

    /// The earliest time a worker heard from as it was last would turn suspect (silent, or
    /// owing an answer) or hung; [`SUSPECT_AFTER`] from now at the latest (`None` past the
    /// end of the clock).
    fn next_liveness_check(&self) -> Option<Instant> {
        let now = self.now;
        let after = |since: Instant, limit: Duration| since.checked_add(limit);
        let mut next = after(now, SUSPECT_AFTER);
        for worker in self.workers.values() {
            if !worker.online || worker.killed_for.is_some() {
                continue;
            }
            let heard = worker.last_heard;
            let silent = (!worker.suspect).then(|| after(heard, SUSPECT_AFTER));
            let owing = worker.answer_due_since().filter(|_| !worker.suspect);
            let owing = owing.map(|since| after(since.max(heard), UNANSWERED_SUSPECT_AFTER));
            let hung = self.config.hang_timeout.map(|limit| after(heard, limit));
            for at in [silent, owing, hung].into_iter().flatten().flatten() {
                next = Some(next.map_or(at, |next| next.min(at)));
            }
        }
        // Never now again: that check has just run.
        let soonest = now.checked_add(Duration::from_millis(1))?;
        next.map(|next| next.max(soonest))
    }

    /// A worker that is not a reload's replacement must listen within the boot timeout, when
    /// the cluster has addresses of its own (a worker of `run` may listen on nothing).
    pub(super) fn arm_boot_deadline(&mut self, key: WorkerKey, origin: Origin) {
        if origin != Origin::Reload && !self.config.addresses.is_empty() {
            let deadline = Timer::BootDeadline { worker: key };
            self.arm(self.config.boot_timeout, deadline);
        }
    }

    /// The boot timeout of a worker ran out: killed unless it serves by now.
    pub(super) fn on_boot_deadline(&mut self, key: WorkerKey) {
        let Some(worker) = self.workers.get(&key) else {
            return;
        };
        if worker.disconnecting || worker.killed_for.is_some() || self.serves(worker) {
            return;
        }
        tracing::error!(
            slot = worker.slot,
            pid = worker.pid(),
            "{}; killing it",
            self.boot_failure(worker)
        );
        self.kill(key, ExitReason::BootTimeout);
    }

    /// Why `worker` was not serving at its boot deadline, in one line that says what to do.
    pub(super) fn boot_failure(&self, worker: &WorkerState) -> String {
        let timeout = self.config.boot_timeout;
        let listens = worker.listening.len() >= self.listeners.len();
        if worker.is_agent() || !listens || !self.config.wait_ready {
            let what = match worker.is_agent() {
                true => "did not join the master",
                false => "was not listening on every address",
            };
            return format!(
                "worker {} {what} within the boot timeout ({timeout:?})",
                worker.slot
            );
        }
        format!(
            "worker {} listens but never said it is ready within the boot timeout ({timeout:?}), \
             and readiness is on (CLUSTER_WAIT_READY / Cluster::wait_ready): call \
             Worker::ready() or ipc::ready() once it has warmed up, or turn readiness off",
            worker.slot
        )
    }
}
