//! [`Listener`]: the connections the master hands to this worker for one address.

use std::net::SocketAddr;

use cluster_ipc::ListenKey;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A connection delivered by the master, with its client's address.
pub(crate) type Delivered = (TcpStream, SocketAddr);

/// The connections accepted by the master on one address and handed to this worker.
///
/// Returned by [`crate::Worker::listen`]. Once the worker drains, [`Listener::accept`] yields
/// the connections already delivered and then `None`.
#[derive(Debug)]
pub struct Listener {
    key: ListenKey,
    local_addr: SocketAddr,
    incoming: mpsc::Receiver<Delivered>,
}

impl Listener {
    pub(crate) fn new(
        key: ListenKey,
        local_addr: SocketAddr,
        incoming: mpsc::Receiver<Delivered>,
    ) -> Self {
        Self {
            key,
            local_addr,
            incoming,
        }
    }

    /// The next connection and its client's address; `None` once the worker is draining and
    /// every delivered connection has been taken.
    ///
    /// Cancel-safe: dropping the future loses no connection.
    pub async fn accept(&mut self) -> Option<(TcpStream, SocketAddr)> {
        self.incoming.recv().await
    }

    /// The address the master bound (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address as it was asked for; the cluster-wide name of this listener.
    pub fn key(&self) -> &ListenKey {
        &self.key
    }
}
