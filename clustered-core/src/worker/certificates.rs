//! When the master tells this worker to load its TLS certificate again (`clusterctl tls
//! reload`): a count that goes up each time, which `clustered-tower`'s TLS waits on.

use std::sync::OnceLock;

use tokio::sync::watch;

fn slot() -> &'static watch::Sender<u64> {
    static REQUESTS: OnceLock<watch::Sender<u64>> = OnceLock::new();
    REQUESTS.get_or_init(|| watch::Sender::new(0))
}

/// Changes each time the master asks this worker to load its certificate again.
pub fn reload_requests() -> watch::Receiver<u64> {
    slot().subscribe()
}

/// The master asked.
pub(crate) fn requested() {
    slot().send_modify(|count| *count = count.wrapping_add(1));
}
