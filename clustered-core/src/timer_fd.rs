//! A deadline that wakes its process once, when it is due: a Linux `timerfd` registered with the
//! runtime.
//!
//! tokio's timers live in a hierarchical wheel, and a runtime parks until the next slot of the
//! level its earliest timer sits in, not until the timer itself: a deadline 2 s away is reached
//! in two or three steps (the start of its 4 s slot, of its 64 ms slot, then the millisecond),
//! each a wake-up of an otherwise idle process. A `timerfd` set to the deadline makes the
//! kernel wake the process once, at the deadline. For the long waits of an idle process (a
//! worker's heartbeat, the master's liveness check); short ones stay tokio's.
//!
//! Written here rather than taken from `tokio-timerfd`: that crate registers its descriptor
//! with tokio's `AsyncFd::with_interest`, deprecated as unsound, and this is 60 lines of
//! `rustix`.

use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::time::{Duration, Instant};

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Sleep;

/// A one-shot timer on `CLOCK_MONOTONIC` (the clock of [`Instant`]), armed with [`set`].
///
/// [`set`]: TimerFd::set
#[derive(Debug)]
pub(crate) struct TimerFd {
    fd: AsyncFd<OwnedFd>,
}

impl TimerFd {
    /// A disarmed timer. Must be called inside a tokio runtime.
    pub(crate) fn new() -> io::Result<Self> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // SAFETY: `fd` is an `OwnedFd`: it stays open, and the same descriptor, for as long as
        // the `AsyncFd` owns it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Self { fd })
    }

    /// Arms the timer to expire at `at` (at once if that has passed); `None` disarms it. An
    /// expiry not yet waited for is forgotten.
    pub(crate) fn set(&self, at: Option<Instant>) -> io::Result<()> {
        let value = match at {
            // The smallest interval, not zero: a zero value disarms.
            Some(at) => timespec(
                at.saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1)),
            ),
            None => timespec(Duration::ZERO),
        };
        let spec = Itimerspec {
            it_interval: timespec(Duration::ZERO),
            it_value: value,
        };
        // Setting it also drops an expiry not yet read (the kernel zeroes the count); a
        // readiness tokio still holds for it finds nothing to read and waits again.
        timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
        Ok(())
    }

    /// Waits until the timer expires (forever, while it is disarmed).
    pub(crate) async fn expired(&self) -> io::Result<()> {
        self.fd
            .async_io(Interest::READABLE, |fd| {
                let mut count = [0u8; 8];
                rustix::io::read(fd, &mut count)?;
                Ok(())
            })
            .await
    }
}

/// A deadline to wait for: a [`TimerFd`], or tokio's timer when no timerfd can be had (a full
/// descriptor table) or one fails.
#[derive(Debug)]
pub(crate) struct Alarm {
    at: Option<Instant>,
    /// The deadline the timerfd holds and that has not been waited out: setting it again
    /// needs no system call (a heartbeat's deadline stays put while the load changes).
    armed: Option<Instant>,
    timer: Timer,
}

#[derive(Debug)]
enum Timer {
    Fd(TimerFd),
    Wheel(Pin<Box<Sleep>>),
}

impl Alarm {
    /// A disarmed alarm. Must be called inside a tokio runtime.
    pub(crate) fn new() -> Self {
        let timer = match TimerFd::new() {
            Ok(timer) => Timer::Fd(timer),
            Err(error) => {
                tracing::debug!(%error, "no timerfd: deadlines use tokio's timer");
                Timer::wheel(Instant::now())
            }
        };
        Self {
            at: None,
            armed: None,
            timer,
        }
    }

    /// Arms the alarm for `at` (`None` disarms it: it then never fires).
    pub(crate) fn set(&mut self, at: Option<Instant>) {
        self.at = at;
        match &mut self.timer {
            Timer::Fd(_) if at.is_some() && at == self.armed => {}
            Timer::Fd(timer) => {
                self.armed = at;
                if let Err(error) = timer.set(at) {
                    tracing::debug!(%error, "timerfd failed: deadlines use tokio's timer");
                    self.timer = Timer::wheel(at.unwrap_or_else(Instant::now));
                }
            }
            Timer::Wheel(sleep) => {
                if let Some(at) = at {
                    sleep.as_mut().reset(at.into());
                }
            }
        }
    }

    /// Waits until the deadline set last (forever, while disarmed).
    pub(crate) async fn fired(&mut self) {
        let Some(at) = self.at else {
            return std::future::pending().await;
        };
        if let Timer::Fd(timer) = &self.timer {
            match timer.expired().await {
                Ok(()) => {
                    self.armed = None;
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, "timerfd failed: deadlines use tokio's timer");
                    self.timer = Timer::wheel(at);
                }
            }
        }
        if let Timer::Wheel(sleep) = &mut self.timer {
            sleep.as_mut().await;
        }
    }
}

impl Timer {
    fn wheel(at: Instant) -> Self {
        Timer::Wheel(Box::pin(tokio::time::sleep_until(at.into())))
    }
}

fn timespec(duration: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(duration.subsec_nanos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expires_once_at_its_deadline_and_not_while_disarmed() {
        let timer = TimerFd::new().unwrap();
        let start = Instant::now();
        timer.set(Some(start + Duration::from_millis(30))).unwrap();
        timer.expired().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(30));

        timer.set(None).unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(50), timer.expired()).await;
        assert!(waited.is_err(), "a disarmed timer expired");

        timer
            .set(Some(Instant::now() - Duration::from_secs(1)))
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), timer.expired())
            .await
            .expect("a deadline in the past expires at once")
            .unwrap();
    }

    #[tokio::test]
    async fn an_alarm_fires_at_its_deadline_and_never_while_disarmed() {
        let mut alarm = Alarm::new();
        let waited = tokio::time::timeout(Duration::from_millis(30), alarm.fired()).await;
        assert!(waited.is_err(), "a disarmed alarm fired");
        let start = Instant::now();
        alarm.set(Some(start + Duration::from_millis(20)));
        tokio::time::timeout(Duration::from_secs(5), alarm.fired())
            .await
            .expect("the alarm fires");
        assert!(start.elapsed() >= Duration::from_millis(20));
        alarm.set(None);
        let waited = tokio::time::timeout(Duration::from_millis(30), alarm.fired()).await;
        assert!(waited.is_err(), "a disarmed alarm fired");
    }

    #[tokio::test]
    async fn an_alarm_set_to_the_same_deadline_again_fires_once_then_again_when_set_after() {
        let mut alarm = Alarm::new();
        let at = Instant::now() + Duration::from_millis(20);
        alarm.set(Some(at));
        alarm.set(Some(at));
        tokio::time::timeout(Duration::from_secs(5), alarm.fired())
            .await
            .expect("the alarm fires");
        assert!(Instant::now() >= at);
        // Waited out: the same deadline, set again, fires again (at once, it has passed).
        alarm.set(Some(at));
        tokio::time::timeout(Duration::from_secs(5), alarm.fired())
            .await
            .expect("the alarm set again to its passed deadline fires");
        // An expiry left unread while another branch won still counts.
        let soon = Instant::now() + Duration::from_millis(10);
        alarm.set(Some(soon));
        tokio::time::sleep(Duration::from_millis(20)).await;
        alarm.set(Some(soon));
        tokio::time::timeout(Duration::from_secs(5), alarm.fired())
            .await
            .expect("the unread expiry fires");
    }

    #[tokio::test]
    async fn setting_it_again_forgets_an_expiry_not_waited_for() {
        let timer = TimerFd::new().unwrap();
        timer.set(Some(Instant::now())).unwrap();
        std::thread::sleep(Duration::from_millis(5)); // it has expired, unread
        timer
            .set(Some(Instant::now() + Duration::from_secs(60)))
            .unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(50), timer.expired()).await;
        assert!(waited.is_err(), "an old expiry was kept");
    }
}
