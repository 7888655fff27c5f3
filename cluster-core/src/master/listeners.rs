//! The master's sockets: bound once per address. How depends on the policy:
//!
//! - `rr`, `sticky`, `least`: listening, with an accept task feeding connections to the supervisor.
//! - `shared`: listening, not accepted from here: each worker gets a copy and accepts.
//! - `reuseport`: bound with `SO_REUSEPORT` but not listening, which resolves port 0 and
//!   reserves the port; each worker binds and listens on its own socket, the kernel balances.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::os::fd::{AsFd, OwnedFd};

use cluster_ipc::{ListenKey, Policy};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::dispatch::Handoff;
use super::event::Event;
use crate::Error;
use crate::reuseport::reuseport_socket;

/// Connections accepted but not yet acknowledged by a worker, across the cluster. Past this the
/// master stops accepting and the kernel's listen backlog holds new clients.
const MAX_UNACKNOWLEDGED: usize = 4096;

/// Every address the master listens on.
pub(super) struct Listeners {
    policy: Policy,
    bound: HashMap<ListenKey, Bound>,
    events: mpsc::Sender<Event>,
    unacknowledged: Arc<Semaphore>,
}

struct Bound {
    address: SocketAddr,
    socket: BoundSocket,
}

/// What the master holds for one address.
enum BoundSocket {
    /// The master accepts (rr, sticky).
    Accepting(JoinHandle<()>),
    /// The workers accept on copies of it (shared).
    Shared(std::net::TcpListener),
    /// Bound, not listening: keeps the port for the workers' own sockets (reuseport).
    Reserved { _port: TcpSocket },
}

impl Listeners {
    pub(super) fn new(policy: Policy, events: mpsc::Sender<Event>) -> Self {
        Self {
            policy,
            bound: HashMap::new(),
            events,
            unacknowledged: Arc::new(Semaphore::new(MAX_UNACKNOWLEDGED)),
        }
    }

    /// Binds `address` unless it is bound already; returns the bound address.
    pub(super) async fn bind(&mut self, address: &str) -> Result<SocketAddr, Error> {
        let key = ListenKey::from(address);
        if let Some(bound) = self.bound.get(&key) {
            return Ok(bound.address);
        }
        let bind_error = |source| Error::Bind {
            address: address.to_owned(),
            source,
        };
        let (local, socket) = match self.policy {
            Policy::Rr | Policy::Sticky | Policy::Least => {
                let listener = TcpListener::bind(address).await.map_err(bind_error)?;
                let local = listener.local_addr().map_err(bind_error)?;
                let accept_task = tokio::spawn(accept_loop(
                    key.clone(),
                    listener,
                    self.events.clone(),
                    Arc::clone(&self.unacknowledged),
                ));
                (local, BoundSocket::Accepting(accept_task))
            }
            Policy::Shared => {
                let listener = TcpListener::bind(address).await.map_err(bind_error)?;
                let local = listener.local_addr().map_err(bind_error)?;
                (
                    local,
                    BoundSocket::Shared(listener.into_std().map_err(bind_error)?),
                )
            }
            Policy::Reuseport => {
                let socket = reuseport_socket(address).await.map_err(bind_error)?;
                let local = socket.local_addr().map_err(bind_error)?;
                (local, BoundSocket::Reserved { _port: socket })
            }
        };
        tracing::debug!(%address, %local, policy = ?self.policy, "bound");
        self.bound.insert(
            key,
            Bound {
                address: local,
                socket,
            },
        );
        Ok(local)
    }

    /// The bound address of `key`, if it is bound.
    pub(super) fn address_of(&self, key: &ListenKey) -> Option<SocketAddr> {
        self.bound.get(key).map(|bound| bound.address)
    }

    pub(super) fn len(&self) -> usize {
        self.bound.len()
    }

    /// Every bound address, in no particular order.
    pub(super) fn addresses(&self) -> Vec<SocketAddr> {
        self.bound.values().map(|bound| bound.address).collect()
    }

    /// A copy of the listening socket of `key` for a worker, under the `shared` policy.
    pub(super) fn share(&self, key: &ListenKey) -> std::io::Result<Option<OwnedFd>> {
        match self.bound.get(key).map(|bound| &bound.socket) {
            Some(BoundSocket::Shared(listener)) => listener.as_fd().try_clone_to_owned().map(Some),
            _ => Ok(None),
        }
    }

    /// Stops accepting and closes the master's sockets: under `rr` and `sticky` new clients
    /// are refused from now on (under `shared` and `reuseport` once the workers close theirs).
    pub(super) fn close(&mut self) {
        for (_, bound) in self.bound.drain() {
            if let BoundSocket::Accepting(accept_task) = bound.socket {
                accept_task.abort();
            }
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.close();
    }
}

async fn accept_loop(
    key: ListenKey,
    listener: TcpListener,
    events: mpsc::Sender<Event>,
    unacknowledged: Arc<Semaphore>,
) {
    loop {
        let Ok(permit) = Arc::clone(&unacknowledged).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let handoff = Handoff::new(key.clone(), stream, peer, permit);
                if events.send(Event::Connection(handoff)).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                // Out of descriptors or an aborted handshake: the listener itself is fine.
                tracing::warn!(%key, %error, "accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
