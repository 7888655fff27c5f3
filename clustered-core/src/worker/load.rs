//! This worker's load: open connections, in-flight requests, and requests served. Servers count them with
//! guards ([`track_connection`], [`track_request`]; `clustered-tower` does it for HTTP) and the
//! worker reports them to the master in a `heartbeat` when they change, at most every 10 ms,
//! which drives the `least` policy. An idle worker's reporter sleeps until the load changes
//! (a change wakes it) or a heartbeat is due.
//!
//! ```
//! let connection = clustered_core::load::track_connection();
//! assert_eq!(clustered_core::load::current().connections, 1);
//! drop(connection);
//! assert_eq!(clustered_core::load::current().connections, 0);
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static SERVED: AtomicU64 = AtomicU64::new(0);
/// The reporter sleeps: the next change wakes it.
static REPORTER_ASLEEP: AtomicBool = AtomicBool::new(false);
static CHANGED: Notify = Notify::const_new();

/// Wakes the reporter if it sleeps (one relaxed load when it does not).
fn changed() {
    if REPORTER_ASLEEP.load(Ordering::Relaxed) && REPORTER_ASLEEP.swap(false, Ordering::AcqRel) {
        CHANGED.notify_one();
    }
}

/// Called by the reporter to sleep: resolves at the next change of the load (at once if it
/// changed since the reporter last looked, which `unchanged` says).
pub(crate) async fn next_change(unchanged: impl Fn() -> bool) {
    /// Lowers the flag however the sleep ends (a timeout drops this future).
    struct Asleep;
    impl Drop for Asleep {
        fn drop(&mut self) {
            REPORTER_ASLEEP.store(false, Ordering::Relaxed);
        }
    }
    let _asleep = Asleep;
    REPORTER_ASLEEP.store(true, Ordering::Release);
    // A change before the flag was up woke nobody: look once more.
    if unchanged() {
        CHANGED.notified().await;
    }
}

/// This process's load right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Load {
    /// Open connections.
    pub connections: u64,
    /// Requests being handled.
    pub requests: u64,
    /// Requests finished since this process started.
    pub served: u64,
}

/// The current load of this process.
pub fn current() -> Load {
    Load {
        connections: CONNECTIONS.load(Ordering::Relaxed),
        requests: REQUESTS.load(Ordering::Relaxed),
        served: SERVED.load(Ordering::Relaxed),
    }
}

/// Counts one open connection until dropped.
#[must_use = "the connection counts only while the guard lives"]
#[derive(Debug)]
pub struct ConnectionGuard(());

/// Counts one in-flight request until dropped.
#[must_use = "the request counts only while the guard lives"]
#[derive(Debug)]
pub struct RequestGuard(());

/// Counts a connection as open while the returned guard lives.
pub fn track_connection() -> ConnectionGuard {
    CONNECTIONS.fetch_add(1, Ordering::Relaxed);
    changed();
    ConnectionGuard(())
}

/// Counts a request as in flight while the returned guard lives.
pub fn track_request() -> RequestGuard {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    changed();
    RequestGuard(())
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
        changed();
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        REQUESTS.fetch_sub(1, Ordering::Relaxed);
        SERVED.fetch_add(1, Ordering::Relaxed);
        changed();
    }
}
