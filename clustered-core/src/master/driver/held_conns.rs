//! [`HeldConns`]: the connections the master holds until a worker acknowledges them, and the
//! cluster-wide bound on how many it may hold.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use clustered_ipc::ListenKey;
use rustc_hash::FxHashMap;

use crate::master::ids::ConnId;
use crate::master::machine::Conn;

/// A connection a listener accepted: its descriptor, never registered with the master's
/// event loop (the master only hands it on).
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) key: ListenKey,
    pub(crate) fd: OwnedFd,
    /// The client's address (`0.0.0.0:0` for a Unix socket's client, which has none).
    pub(crate) peer: SocketAddr,
}

/// Accepted connections by id; dropping one closes the master's descriptor (once a handoff in
/// flight has let go of it too: it is shared, not copied).
#[derive(Debug)]
pub(crate) struct HeldConns {
    next: u64,
    // Keyed by the master's own ids (never a peer's input): a fast hash is safe here.
    held: FxHashMap<ConnId, Arc<OwnedFd>>,
    /// How many it may hold at once ([`crate::limits::connection_budget`]): past it the master
    /// stops accepting and the kernel's listen backlog holds new clients.
    budget: usize,
}

impl HeldConns {
    /// None held yet, `budget` at most.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            next: 0,
            held: FxHashMap::default(),
            budget,
        }
    }

    /// Holds `accepted`; returns it as the machine sees it.
    pub(crate) fn hold(&mut self, accepted: Accepted) -> Conn {
        let id = ConnId(self.next);
        self.next += 1;
        self.held.insert(id, Arc::new(accepted.fd));
        Conn {
            id,
            key: accepted.key,
            peer: accepted.peer,
        }
    }

    /// How many more it may hold.
    pub(crate) fn room(&self) -> usize {
        self.budget.saturating_sub(self.held.len())
    }

    /// The descriptor of connection `id`, while held.
    pub(crate) fn get(&self, id: ConnId) -> Option<&Arc<OwnedFd>> {
        self.held.get(&id)
    }

    /// Closes the master's copy of `id`.
    pub(crate) fn close(&mut self, id: ConnId) {
        self.held.remove(&id);
    }
}
