//! When to restart a worker that died on its own: exponential backoff with jitter, reset once a
//! worker has stayed up, and a crash-loop guard (PM2's `min_uptime` + `max_restarts`), with
//! a shorter one for workers that never come to serve (boot timeouts in a row).

use std::collections::HashMap;
use std::time::Duration;

use super::rng::Rng;

/// The restart knobs, set on [`crate::Cluster`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// The first restart's delay (before jitter). Default 100 ms.
    pub initial_backoff: Duration,
    /// The longest delay between restarts. Default 10 s.
    pub max_backoff: Duration,
    /// A worker that lived at least this long counts as stable: its slot's backoff is reset.
    /// Default 1 s.
    pub min_uptime: Duration,
    /// Early deaths in a row (each within `min_uptime`) that one slot may have before the
    /// master gives up with [`crate::Error::CrashLoop`]. Default 10.
    pub max_restarts: u32,
}

/// Workers of one slot killed in a row for not serving within the boot timeout before the
/// master gives up with [`crate::Error::BootTimeouts`]: a program that never listens (or,
/// with readiness on, never says ready) is a failed start, not something to retry every
/// minute.
pub(super) const MAX_BOOT_TIMEOUTS: u32 = 3;

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            min_uptime: Duration::from_secs(1),
            max_restarts: 10,
        }
    }
}

/// The decision for one death.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Restart {
    /// Start a new worker in the slot after this delay.
    After(Duration),
    /// The slot died early too many times in a row: stop the cluster.
    GiveUp {
        /// Early deaths in a row.
        early_deaths: u32,
    },
}

/// Per-slot counts of early deaths in a row, and of boot timeouts in a row.
#[derive(Debug, Default)]
pub(super) struct RestartTracker {
    early_deaths: HashMap<usize, u32>,
    boot_timeouts: HashMap<usize, u32>,
}

impl RestartTracker {
    /// Records that the worker in `slot` died after `uptime`, and decides what to do (the
    /// jitter drawn from `rng`).
    pub(super) fn on_death(
        &mut self,
        policy: &RestartPolicy,
        slot: usize,
        uptime: Duration,
        rng: &mut Rng,
    ) -> Restart {
        let early = self.early_deaths.entry(slot).or_default();
        if uptime >= policy.min_uptime {
            *early = 0;
            return Restart::After(jittered(policy.initial_backoff, rng));
        }
        *early += 1;
        if *early > policy.max_restarts {
            return Restart::GiveUp {
                early_deaths: *early,
            };
        }
        let doubling = 2u32.saturating_pow(*early - 1);
        let delay = policy
            .initial_backoff
            .saturating_mul(doubling)
            .min(policy.max_backoff);
        Restart::After(jittered(delay, rng))
    }

    /// Records how a worker of `slot` ended its boot: it came to serve (the count starts over)
    /// or it was killed at its boot deadline. `true` when that makes [`MAX_BOOT_TIMEOUTS`]
    /// in a row: the master gives up.
    pub(super) fn on_boot_end(&mut self, slot: usize, timed_out: bool) -> bool {
        let in_a_row = self.boot_timeouts.entry(slot).or_default();
        *in_a_row = match timed_out {
            true => in_a_row.saturating_add(1),
            false => 0,
        };
        *in_a_row >= MAX_BOOT_TIMEOUTS
    }
}

/// A delay between half and all of `delay`, so slots that died together do not restart in
/// lockstep.
pub(super) fn jittered(delay: Duration, rng: &mut Rng) -> Duration {
    delay.mul_f64(0.5 + rng.fraction() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            min_uptime: Duration::from_secs(1),
            max_restarts: 4,
        }
    }

    fn delay(restart: Restart) -> Duration {
        match restart {
            Restart::After(delay) => delay,
            Restart::GiveUp { .. } => panic!("gave up"),
        }
    }

    #[test]
    fn the_first_restart_is_within_the_initial_backoff() {
        let mut tracker = RestartTracker::default();
        let mut rng = Rng::new(1);
        let first = delay(tracker.on_death(&policy(), 1, Duration::ZERO, &mut rng));
        assert!(first <= Duration::from_millis(100) && first >= Duration::from_millis(50));
    }

    #[test]
    fn boot_timeouts_in_a_row_give_up_and_a_worker_that_serves_starts_the_count_over() {
        let mut tracker = RestartTracker::default();
        assert!(!tracker.on_boot_end(1, true));
        assert!(!tracker.on_boot_end(1, true));
        assert!(!tracker.on_boot_end(1, false), "it served");
        assert!(!tracker.on_boot_end(2, true), "slots count separately");
        for _ in 1..MAX_BOOT_TIMEOUTS {
            assert!(!tracker.on_boot_end(1, true));
        }
        assert!(tracker.on_boot_end(1, true));
    }

    #[test]
    fn the_same_seed_draws_the_same_delays() {
        let draw = |seed| {
            let (mut tracker, mut rng) = (RestartTracker::default(), Rng::new(seed));
            (0..4)
                .map(|_| delay(tracker.on_death(&policy(), 1, Duration::ZERO, &mut rng)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn early_deaths_double_the_delay_up_to_the_cap_then_give_up() {
        let mut tracker = RestartTracker::default();
        let mut rng = Rng::new(1);
        let delays: Vec<Duration> = (0..4)
            .map(|_| delay(tracker.on_death(&policy(), 1, Duration::ZERO, &mut rng)))
            .collect();
        let caps = [100, 200, 400, 500].map(Duration::from_millis);
        for (delay, cap) in delays.iter().zip(caps) {
            assert!(*delay <= cap && *delay >= cap / 2, "{delay:?} vs {cap:?}");
        }
        assert_eq!(
            tracker.on_death(&policy(), 1, Duration::ZERO, &mut rng),
            Restart::GiveUp { early_deaths: 5 }
        );
    }

    #[test]
    fn a_stable_worker_resets_its_slot_and_slots_count_separately() {
        let mut tracker = RestartTracker::default();
        let mut rng = Rng::new(1);
        for _ in 0..4 {
            tracker.on_death(&policy(), 1, Duration::ZERO, &mut rng);
        }
        assert!(matches!(
            tracker.on_death(&policy(), 2, Duration::ZERO, &mut rng),
            Restart::After(_)
        ));
        let after_stable = delay(tracker.on_death(&policy(), 1, Duration::from_secs(5), &mut rng));
        assert!(after_stable <= Duration::from_millis(100));
        for _ in 0..4 {
            assert!(matches!(
                tracker.on_death(&policy(), 1, Duration::ZERO, &mut rng),
                Restart::After(_)
            ));
        }
    }
}
