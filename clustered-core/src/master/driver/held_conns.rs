//! [`HeldConns`]: the connections the master holds until a worker acknowledges them.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use tokio::sync::OwnedSemaphorePermit;

use super::report::Accepted;
use crate::master::ids::ConnId;
use crate::master::machine::Conn;

/// Accepted connections by id; dropping one closes the master's descriptor (once a handoff in
/// flight has let go of it too: it is shared, not copied) and frees its place in the
/// cluster-wide bound.
#[derive(Debug, Default)]
pub(crate) struct HeldConns {
    next: u64,
    // Keyed by the master's own ids (never a peer's input): a fast hash is safe here.
    held: FxHashMap<ConnId, (Arc<OwnedFd>, OwnedSemaphorePermit)>,
}

impl HeldConns {
    /// Holds `accepted`; returns it as the machine sees it.
    pub(crate) fn hold(&mut self, accepted: Accepted) -> Conn {
        let id = ConnId(self.next);
        self.next += 1;
        self.held
            .insert(id, (Arc::new(accepted.fd), accepted.permit));
        Conn {
            id,
            key: accepted.key,
            peer: accepted.peer,
        }
    }

    /// The descriptor of connection `id`, while held.
    pub(crate) fn get(&self, id: ConnId) -> Option<&Arc<OwnedFd>> {
        self.held.get(&id).map(|(fd, _)| fd)
    }

    /// Closes the master's copy of `id`.
    pub(crate) fn close(&mut self, id: ConnId) {
        self.held.remove(&id);
    }
}
