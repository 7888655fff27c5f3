//! The worker's `heartbeat`: its load ([`crate::load`]) reported to the master when it changes.

use std::sync::Weak;
use std::time::Duration;

use cluster_ipc::Message;

use super::link::Link;
use crate::error::Error;
use crate::load::{Load, current};

/// How often a changed load is reported, at most.
const REPORT_INTERVAL: Duration = Duration::from_millis(10);

/// Reports the load to the master whenever it changed, until the link is gone.
pub(crate) async fn report(link: Weak<Link>) {
    let mut reported = Load::default();
    loop {
        tokio::time::sleep(REPORT_INTERVAL).await;
        let Some(link) = link.upgrade() else { return };
        let now = current();
        if now == reported {
            continue;
        }
        let heartbeat = Message::Heartbeat {
            conns: now.connections,
            inflight: now.requests,
        };
        match link.try_send(&heartbeat) {
            Ok(()) => reported = now,
            // A full queue skips this report; the next one carries the news.
            Err(Error::Backpressure) => {}
            Err(_) => return,
        }
    }
}
