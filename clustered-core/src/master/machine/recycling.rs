//! Recycling: a worker that has served its `max_requests` (plus its own jitter) or holds more
//! than `max_memory` is replaced the way a reload replaces it — its replacement first, then it
//! drains, finishing what it serves — one worker at a time, never during a reload or a stop.
//! The worker's heartbeats bring what it has served and its memory. A replacement that fails
//! leaves the worker serving, and nothing is recycled for a while. A `max_memory` that one of
//! the first workers already holds at its first heartbeat (sent within about 2 s of joining,
//! so it includes what the worker allocated meanwhile) would recycle every worker forever: the
//! master stops at start-up instead, with an error naming both figures. A later worker (a
//! restart's, a reload's) found so is left serving and memory recycling turns off, saying
//! why: a deploy that grew the program does not take a running service down.

use std::time::Duration;

use super::action::Notice;
use super::input::Timer;
use super::rng::Rng;
use super::state::{Machine, Phase};
use super::workers::Origin;
use crate::error::Error;
use crate::master::ids::WorkerKey;
use crate::master::process_exit::ExitReason;

/// How long recycling waits after a replacement failed.
pub(super) const RECYCLE_PAUSE: Duration = Duration::from_secs(30);

/// How soon the master looks at the served counts again while they change, with
/// max-requests on: a worker says its load within 10 ms of a change, in its region, which the
/// master reads only when it wakes; this look wakes it (an idle cluster, whose counts do not
/// change, is not woken).
pub(super) const SERVED_LOOK: Duration = Duration::from_millis(10);

impl Machine {
    /// A worker's served count changed: with max-requests on, look again soon (the next
    /// heartbeat in memory wakes nobody).
    pub(super) fn look_at_served_soon(&mut self) {
        if self.config.recycle.max_requests.is_none() {
            return;
        }
        self.served_look.changed = true;
        if !std::mem::replace(&mut self.served_look.armed, true) {
            self.arm(SERVED_LOOK, Timer::ServedLook);
        }
    }

    /// The look came (the driver fed the heartbeats it found first): again while the counts
    /// change, else not until one does.
    pub(super) fn on_served_look(&mut self) {
        if std::mem::take(&mut self.served_look.changed) {
            self.arm(SERVED_LOOK, Timer::ServedLook);
        } else {
            self.served_look.armed = false;
        }
    }

    /// Starts replacing `key` if it is past a limit and nothing else is being replaced.
    pub(super) fn recycle_if_due(&mut self, key: WorkerKey, rss: u64) {
        let recycle = self.config.recycle;
        let Some((fresh, origin)) = self
            .workers
            .get_mut(&key)
            .map(|worker| (worker.rss.replace(rss).is_none(), worker.origin))
        else {
            return;
        };
        let max_memory = recycle.max_memory.filter(|_| !self.memory_recycling_off);
        if let Some(limit) = max_memory.filter(|limit| fresh && rss >= *limit) {
            let too_low = Error::MaxMemoryTooLow {
                limit,
                from: recycle.max_memory_from,
                rss,
            };
            match origin {
                Origin::Initial if self.phase == Phase::Running => self.fail(too_low),
                Origin::Initial => {}
                Origin::Restart | Origin::Reload => {
                    tracing::error!(
                        "{too_low}; memory recycling is off until the master restarts, the worker keeps serving"
                    );
                    self.memory_recycling_off = true;
                }
            }
            return;
        }
        let paused = self
            .recycle_paused_until
            .is_some_and(|until| self.now < until);
        if self.phase != Phase::Running || self.reload.is_running() || paused {
            return;
        }
        let Some(worker) = self.workers.get(&key) else {
            return;
        };
        let serving = !worker.is_leaving() && self.listeners.len() > 0 && self.serves(worker);
        if !serving || !self.is_current_slot(worker.slot) {
            return;
        }
        let request_limit = recycle
            .max_requests
            .map(|limit| limit.saturating_add(jitter(key, recycle.max_requests_jitter, self.seed)));
        let reason = if request_limit.is_some_and(|limit| worker.served >= limit) {
            ExitReason::MaxRequests
        } else if max_memory.is_some_and(|limit| rss >= limit) {
            ExitReason::MaxMemory
        } else {
            return;
        };
        let (slot, pid, served) = (worker.slot, worker.pid(), worker.served);
        if !self.reload.begin_recycle(slot) {
            return;
        }
        if let Some(worker) = self.workers.get_mut(&key) {
            worker.stopped_for = Some(reason);
        }
        tracing::info!(slot, pid, served, rss, %reason, "recycling worker");
        self.notify(Notice::Recycling {
            worker: key,
            reason,
        });
        self.advance_reload();
    }

    /// A recycling of `old` failed: it keeps serving as before; none is tried for a while.
    pub(super) fn recycling_failed(&mut self, old: Option<WorkerKey>) {
        if let Some(worker) = old.and_then(|key| self.workers.get_mut(&key)) {
            worker.stopped_for = None;
        }
        self.recycle_paused_until = Some(self.now + RECYCLE_PAUSE);
    }
}

/// The extra requests `worker` serves before it is recycled: 0 to `spread`, spread evenly over
/// workers (drawn from the master's `seed` and the worker's key), so that workers started
/// together, or by different masters, are not replaced together.
pub(super) fn jitter(worker: WorkerKey, spread: u64, seed: u64) -> u64 {
    if spread == 0 {
        return 0;
    }
    Rng::new(seed.wrapping_add(worker.0)).next_u64() % spread.saturating_add(1)
}
