//! The TLS session-ticket keys the master gave this worker (when it joined, and at each
//! rotation): the same in every worker of the cluster, so a ticket one issued resumes on any
//! other. `clustered-tower`'s TLS seals and opens tickets with them.

use std::sync::OnceLock;

pub use clustered_ipc::{TicketKey, TicketKeys};
use tokio::sync::watch;

fn slot() -> &'static watch::Sender<Option<TicketKeys>> {
    static KEYS: OnceLock<watch::Sender<Option<TicketKeys>>> = OnceLock::new();
    KEYS.get_or_init(|| watch::Sender::new(None))
}

/// The keys in use, kept current: `None` until the master has given them (and outside a
/// cluster).
pub fn subscribe() -> watch::Receiver<Option<TicketKeys>> {
    slot().subscribe()
}

/// The master gave new keys.
pub(crate) fn set(keys: TicketKeys) {
    slot().send_replace(Some(keys));
}
