//! The connection watchdog: one coarse periodic timer per connection that closes a connection
//! whose client stalls in the middle of a request's headers (slowloris), or that carries no
//! request for a long time.
//!
//! hyper's own header-read timeout arms and clears a timer for every request (an allocation
//! and two timer-wheel updates, about 8% of a keep-alive request's instructions here); this
//! one costs a relaxed counter per read and one timer per connection per period. The price is
//! precision: a stalled client is cut off between one and two timeouts after its first byte,
//! an idle one between one timeout and one timeout plus a period.

use std::time::Duration;

/// Why the watchdog closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Keep the connection.
    Keep,
    /// Bytes of a request arrived but its headers never completed in time: drop the connection.
    HeaderTimeout,
    /// No request for the idle timeout: close it politely.
    Idle,
}

/// What the connection's counters said at one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Requests begun.
    pub(crate) started: u64,
    /// Reads that returned bytes.
    pub(crate) reads: u64,
    /// Requests in flight.
    pub(crate) in_flight: u64,
    /// It speaks HTTP/2 (which has no header-read timeout).
    pub(crate) http2: bool,
}

/// The watchdog's decisions, tick by tick (no I/O: the serve loop samples and sleeps).
#[derive(Debug)]
pub(crate) struct Watchdog {
    period: Duration,
    header_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    last: Sample,
    /// How long no request has begun and none has been in flight.
    quiet: Duration,
    /// How long since bytes were first seen with no request begun.
    partial: Option<Duration>,
}

impl Watchdog {
    /// A watchdog for these timeouts, or `None` when both are off.
    pub(crate) fn new(
        header_timeout: Option<Duration>,
        idle_timeout: Option<Duration>,
    ) -> Option<Self> {
        let period = match (header_timeout, idle_timeout) {
            (Some(header), Some(idle)) => header.min(idle),
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => return None,
        };
        Some(Self {
            period: period.max(Duration::from_millis(1)),
            header_timeout,
            idle_timeout,
            last: Sample::default(),
            quiet: Duration::ZERO,
            partial: None,
        })
    }

    /// How long to sleep between ticks.
    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    /// One period has passed; `now` is what the connection's counters say.
    pub(crate) fn tick(&mut self, now: Sample) -> Verdict {
        let request_seen = now.started != self.last.started || now.in_flight > 0;
        let bytes_seen = now.reads != self.last.reads;
        self.last = now;
        if request_seen {
            self.quiet = Duration::ZERO;
            self.partial = None;
            return Verdict::Keep;
        }
        self.quiet = self.quiet.saturating_add(self.period);
        self.partial = match self.partial {
            Some(waited) => Some(waited.saturating_add(self.period)),
            None if bytes_seen && !now.http2 => Some(Duration::ZERO),
            None => None,
        };
        if let (Some(waited), Some(limit)) = (self.partial, self.header_timeout)
            && waited >= limit
        {
            return Verdict::HeaderTimeout;
        }
        match self.idle_timeout {
            Some(limit) if self.quiet >= limit => Verdict::Idle,
            _ => Verdict::Keep,
        }
    }
}

/// Resolves with the reason once the connection `sample` describes should be closed; never if
/// both timeouts are off.
pub(crate) async fn watch(
    sample: impl Fn() -> Sample,
    header_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
) -> Verdict {
    let Some(mut watchdog) = Watchdog::new(header_timeout, idle_timeout) else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(watchdog.period()).await;
        match watchdog.tick(sample()) {
            Verdict::Keep => {}
            verdict => return verdict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn sample(started: u64, reads: u64, in_flight: u64) -> Sample {
        Sample {
            started,
            reads,
            in_flight,
            http2: false,
        }
    }

    #[test]
    fn both_off_means_no_watchdog() {
        assert!(Watchdog::new(None, None).is_none());
    }

    #[test]
    fn the_period_is_the_shorter_timeout() {
        let watchdog = Watchdog::new(Some(30 * SECOND), Some(60 * SECOND)).unwrap();
        assert_eq!(watchdog.period(), 30 * SECOND);
        assert_eq!(Watchdog::new(None, Some(SECOND)).unwrap().period(), SECOND);
    }

    #[test]
    fn a_stalled_request_is_cut_off_one_period_after_its_bytes_were_seen() {
        let mut watchdog = Watchdog::new(Some(SECOND), Some(60 * SECOND)).unwrap();
        // Half the headers arrived during the first period: not yet (it may have just begun).
        assert_eq!(watchdog.tick(sample(0, 1, 0)), Verdict::Keep);
        assert_eq!(watchdog.tick(sample(0, 1, 0)), Verdict::HeaderTimeout);
    }

    #[test]
    fn a_slowloris_trickle_is_cut_off_too() {
        let mut watchdog = Watchdog::new(Some(SECOND), None).unwrap();
        assert_eq!(watchdog.tick(sample(0, 1, 0)), Verdict::Keep);
        assert_eq!(watchdog.tick(sample(0, 2, 0)), Verdict::HeaderTimeout);
    }

    #[test]
    fn requests_that_complete_keep_the_connection() {
        let mut watchdog = Watchdog::new(Some(SECOND), Some(2 * SECOND)).unwrap();
        for round in 1..10 {
            assert_eq!(watchdog.tick(sample(round, round * 3, 0)), Verdict::Keep);
        }
    }

    #[test]
    fn a_long_request_in_flight_is_never_cut_off() {
        let mut watchdog = Watchdog::new(Some(SECOND), Some(2 * SECOND)).unwrap();
        for reads in 1..10 {
            assert_eq!(watchdog.tick(sample(1, reads, 1)), Verdict::Keep);
        }
    }

    #[test]
    fn an_idle_connection_is_closed_after_the_idle_timeout() {
        let mut watchdog = Watchdog::new(Some(SECOND), Some(3 * SECOND)).unwrap();
        assert_eq!(watchdog.tick(sample(1, 1, 0)), Verdict::Keep);
        assert_eq!(watchdog.tick(sample(1, 1, 0)), Verdict::Keep);
        assert_eq!(watchdog.tick(sample(1, 1, 0)), Verdict::Keep);
        assert_eq!(watchdog.tick(sample(1, 1, 0)), Verdict::Idle);
    }

    #[test]
    fn http2_bytes_without_requests_are_only_idle() {
        let mut watchdog = Watchdog::new(Some(SECOND), Some(3 * SECOND)).unwrap();
        let ping = |reads| Sample {
            http2: true,
            ..sample(1, reads, 0)
        };
        assert_eq!(watchdog.tick(ping(1)), Verdict::Keep);
        assert_eq!(watchdog.tick(ping(2)), Verdict::Keep);
        assert_eq!(watchdog.tick(ping(3)), Verdict::Keep);
        assert_eq!(watchdog.tick(ping(4)), Verdict::Idle);
    }

    #[test]
    fn without_a_header_timeout_a_stall_is_only_idle() {
        let mut watchdog = Watchdog::new(None, Some(2 * SECOND)).unwrap();
        assert_eq!(watchdog.tick(sample(0, 1, 0)), Verdict::Idle);
    }
}
