//! The worker's `heartbeat`: that it is alive, every [`HEARTBEAT_PERIOD`], and its load
//! ([`crate::worker::load`]) when it changes. It runs as a task of the worker's runtime, so a
//! worker whose event loop is blocked (or stopped) falls silent and the master notices. While
//! the load changes it looks every 10 ms; while it does not, it sleeps until a change wakes it
//! or the next heartbeat is due, so an idle worker wakes once a period (a timerfd: tokio's
//! timer wheel would take two or three steps to reach a deadline this far off). A heartbeat
//! carries the resident memory too, read at most once a second (for `CLUSTER_MAX_MEMORY`). It
//! is said in the worker's region (`crate::handoff_acks`), which the master reads without
//! waking up, or in a frame by a worker without one.

use std::sync::Weak;
use std::time::{Duration, Instant};

use clustered_ipc::HEARTBEAT_PERIOD;

use super::link::Link;
use crate::error::IpcError;
use crate::handoff_acks::LoadReport;
use crate::proc_stats::OwnMemory;
use crate::timer_fd::Alarm;
use crate::worker::load::{Load, current, next_change};

/// How often the worker's resident memory is read for its heartbeats, at most.
const MEMORY_INTERVAL: Duration = Duration::from_secs(1);

/// How often a changed load is reported, at most.
const REPORT_INTERVAL: Duration = Duration::from_millis(10);

/// Reports the load to the master whenever it changed, and at least every period, until the
/// link is gone.
pub(crate) async fn report(link: Weak<Link>) {
    let mut reported = Load::default();
    let mut last_sent = Instant::now();
    let memory = OwnMemory::open();
    let (mut rss, mut rss_read) = (memory.resident_bytes(), Instant::now());
    // One wake-up at the deadline (tokio's wheel would take two or three).
    let mut alarm = Alarm::new();
    loop {
        let mut changing = true;
        if current() == reported {
            let due = last_sent + HEARTBEAT_PERIOD;
            let change = next_change(|| current() == reported);
            alarm.set(Some(due));
            changing = tokio::select! {
                () = change => true,
                () = alarm.fired() => false,
            };
        }
        if changing {
            // Coalesce a burst of changes into one report.
            tokio::time::sleep(REPORT_INTERVAL).await;
        }
        let Some(link) = link.upgrade() else { return };
        let now = current();
        if now == reported && last_sent.elapsed() < HEARTBEAT_PERIOD {
            continue;
        }
        if rss_read.elapsed() >= MEMORY_INTERVAL {
            (rss, rss_read) = (memory.resident_bytes(), Instant::now());
        }
        let load = LoadReport {
            conns: now.connections,
            inflight: now.requests,
            served: now.served,
            rss,
        };
        match link.beat(load) {
            Ok(()) => {
                reported = now;
                last_sent = Instant::now();
            }
            // A full queue skips this report; the next one carries the news.
            Err(IpcError::Backpressure) => {}
            Err(_) => return,
        }
    }
}
