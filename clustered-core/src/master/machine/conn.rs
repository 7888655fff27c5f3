//! [`Conn`]: a connection the master holds, as the machine sees it (the descriptor stays with
//! the driver).

use std::net::SocketAddr;

use clustered_ipc::ListenKey;

use crate::master::ids::ConnId;

/// An accepted connection waiting for a worker, or handed to one and not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conn {
    /// The driver's name for the descriptor.
    pub(crate) id: ConnId,
    /// The listener that accepted it.
    pub(crate) key: ListenKey,
    /// The client's address.
    pub(crate) peer: SocketAddr,
}
