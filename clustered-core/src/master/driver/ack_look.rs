//! [`AckLook`]: when the driver looks at the workers' acknowledgement rings
//! (`crate::handoff_acks`) without another reason to wake up.
//!
//! The driver reads the rings before every input, so under load the acknowledgements of one
//! accept's handoffs are read when the next accept wakes the master. When no input comes, the
//! master looks [`FIRST_LOOK`] after its last handoff, so that its copy of a connection a
//! worker took is closed soon (until then it holds a place in the cluster-wide bound, and a
//! connection the worker closes without shutting it down stays open). Soon, not at once:
//! connections that come one at a time, each after the look of the one before, would cost the
//! master a second wake-up each, the look's (2 ms measured 0.45 more wake-ups per connection
//! than the accepts under `openssl s_time`, at 430 connections a second); at 20 ms only a
//! trickle of under 50 a second pays it. A look that finds
//! handoffs still unacknowledged (a busy worker) looks again twice as late, up to
//! [`LAST_LOOK`]: a stalled worker costs a few wake-ups, not a stream of them, and the
//! liveness checks deal with it.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// How soon after the last handoff the master looks, when nothing wakes it before.
pub(super) const FIRST_LOOK: Duration = Duration::from_millis(20);
/// The longest wait between two looks while handoffs stay unacknowledged.
pub(super) const LAST_LOOK: Duration = Duration::from_millis(512);

/// The driver's next look at the rings, if one is due.
#[derive(Debug)]
pub(super) struct AckLook {
    due: Option<Instant>,
    /// The timer's deadline: `due`, or up to half of [`FIRST_LOOK`] before it (not reset at
    /// every handoff; when it fires early, it is reset to `due`).
    armed: Option<Instant>,
    delay: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Default for AckLook {
    fn default() -> Self {
        AckLook {
            due: None,
            armed: None,
            delay: FIRST_LOOK,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
        }
    }
}

impl AckLook {
    /// A handoff was made just now to a worker with a ring.
    pub(super) fn handed_off(&mut self) {
        self.delay = FIRST_LOOK;
        self.look_at(Instant::now().checked_add(FIRST_LOOK));
    }

    /// Whether a look is due at some point.
    pub(super) fn is_due(&self) -> bool {
        self.due.is_some()
    }

    /// Waits for the timer; `true` if the look is due (`false`: it fired early, and is reset
    /// to when it is). Only while [`AckLook::is_due`].
    pub(super) async fn fired(&mut self) -> bool {
        self.timer.as_mut().await;
        let now = Instant::now();
        match self.due {
            Some(due) if due > now => {
                self.arm(due);
                false
            }
            _ => {
                self.due = None;
                self.armed = None;
                true
            }
        }
    }

    /// The driver looked because the look was due; `still_unacknowledged` tells whether
    /// handoffs to workers with rings remain unacknowledged.
    pub(super) fn looked(&mut self, still_unacknowledged: bool) {
        if still_unacknowledged {
            self.delay = (self.delay * 2).min(LAST_LOOK);
            self.look_at(Instant::now().checked_add(self.delay));
        }
    }

    fn look_at(&mut self, due: Option<Instant>) {
        let Some(due) = due else { return };
        self.due = Some(due);
        // The timer may fire up to half of FIRST_LOOK early: resetting it costs more than a
        // comparison, and a handoff every few microseconds would reset it every time.
        let early_enough = self.armed.is_some_and(|armed| {
            armed <= due && due.saturating_duration_since(armed) < FIRST_LOOK / 2
        });
        if !early_enough {
            self.arm(due);
        }
    }

    fn arm(&mut self, at: Instant) {
        self.armed = Some(at);
        self.timer.as_mut().reset(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_look_is_due_shortly_after_the_last_handoff() {
        let mut look = AckLook::default();
        assert!(!look.is_due());
        let start = Instant::now();
        look.handed_off();
        assert!(look.is_due());
        tokio::time::advance(FIRST_LOOK / 4).await;
        // Another handoff: the timer may fire at the first deadline (it is not reset for so
        // little), but the look waits for the second.
        look.handed_off();
        let mut fired = 0;
        while !look.fired().await {
            fired += 1;
            assert!(fired < 3, "fires early once at most");
        }
        assert!(start.elapsed() >= FIRST_LOOK + FIRST_LOOK / 4);
        assert!(!look.is_due());
    }

    #[tokio::test(start_paused = true)]
    async fn looks_at_unanswered_handoffs_back_off_to_the_last_look() {
        let mut look = AckLook::default();
        look.handed_off();
        let mut waits = Vec::new();
        for _ in 0..12 {
            let before = Instant::now();
            assert!(look.fired().await);
            waits.push(before.elapsed());
            look.looked(true);
        }
        assert_eq!(waits[0], FIRST_LOOK);
        assert_eq!(waits[1], FIRST_LOOK * 2);
        assert_eq!(waits[2], FIRST_LOOK * 4);
        assert_eq!(*waits.last().unwrap(), LAST_LOOK);
        // Answered: no look is due any more.
        assert!(look.fired().await);
        look.looked(false);
        assert!(!look.is_due());
        // A new handoff starts again from the first look.
        look.handed_off();
        let before = Instant::now();
        assert!(look.fired().await);
        assert_eq!(before.elapsed(), FIRST_LOOK);
    }
}
