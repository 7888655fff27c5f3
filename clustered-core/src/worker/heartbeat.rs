//! The worker's `heartbeat`: that it is alive, every [`HEARTBEAT_PERIOD`], and its load
//! ([`crate::worker::load`]) when it changes. It runs as a task of the worker's runtime, so a worker
//! whose event loop is blocked (or stopped) falls silent and the master notices. While the
//! load changes it looks every 10 ms; while it does not, it sleeps until a change wakes it or
//! the next heartbeat is due, so an idle worker wakes about once a second (once a period,
//! which tokio's timer wheel reaches in two or three steps). Each heartbeat also carries the
//! worker's resident memory, read at most once a second (for `CLUSTER_MAX_MEMORY`).

use std::sync::Weak;
use std::time::{Duration, Instant};

use clustered_ipc::{HEARTBEAT_PERIOD, Message};

use super::link::Link;
use crate::error::IpcError;
use crate::proc_stats::OwnMemory;
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
    loop {
        let mut changing = true;
        if current() == reported {
            let due = tokio::time::Instant::from_std(last_sent + HEARTBEAT_PERIOD);
            let change = next_change(|| current() == reported);
            changing = tokio::time::timeout_at(due, change).await.is_ok();
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
        let heartbeat = Message::Heartbeat {
            conns: now.connections,
            inflight: now.requests,
            served: now.served,
            rss,
        };
        match link.try_send(&heartbeat) {
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
