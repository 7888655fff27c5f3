//! [`Timers`]: the deadlines the machine waits for, as plain data. The machine arms them as
//! it decides (at the time of the input being handled, plus a delay), tells the driver the
//! earliest ([`Timers::next_deadline`], through `Machine::poll_timeout`), and when the driver
//! says that time has come, takes every timer due by then, in the order they fall due. A
//! timer is never cancelled: when it expires the machine checks whether it still matters.

use std::collections::BTreeMap;
use std::time::Instant;

use super::input::Timer;

/// Every armed timer, by deadline (ties in the order they were armed).
#[derive(Debug, Default)]
pub(super) struct Timers {
    armed: BTreeMap<(Instant, u64), Timer>,
    next_id: u64,
}

impl Timers {
    /// Arms `timer` to expire at `at`.
    pub(super) fn arm(&mut self, at: Instant, timer: Timer) {
        self.armed.insert((at, self.next_id), timer);
        self.next_id = self.next_id.wrapping_add(1);
    }

    /// When the earliest armed timer expires, if any is armed.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.armed.keys().next().map(|(at, _)| *at)
    }

    /// Takes every timer due by `now`, earliest first. Those armed while they are handled
    /// wait for the next call, even if due at once (so no handling can spin).
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<Timer> {
        let mut due = Vec::new();
        while let Some(entry) = self.armed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        due
    }

    /// Every armed timer and its deadline, earliest first.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (Instant, &Timer)> {
        self.armed.iter().map(|((at, _), timer)| (*at, timer))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timers_fall_due_in_deadline_order_and_only_once() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut timers = Timers::default();
        timers.arm(at(300), Timer::Liveness);
        timers.arm(at(100), Timer::RestartDue { slot: 1 });
        timers.arm(at(100), Timer::RestartDue { slot: 2 });
        assert_eq!(timers.next_deadline(), Some(at(100)));
        assert!(timers.take_due(at(99)).is_empty());
        assert_eq!(
            timers.take_due(at(250)),
            [Timer::RestartDue { slot: 1 }, Timer::RestartDue { slot: 2 }]
        );
        assert_eq!(timers.next_deadline(), Some(at(300)));
        assert_eq!(timers.take_due(at(1000)), [Timer::Liveness]);
        assert_eq!(timers.next_deadline(), None);
        assert!(timers.take_due(at(2000)).is_empty());
    }
}
