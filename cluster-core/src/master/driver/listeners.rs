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

use super::report::{Accepted, Report};
use crate::reuseport::reuseport_socket;

/// Connections accepted but not yet acknowledged by a worker, across the cluster. Past this the
/// master stops accepting and the kernel's listen backlog holds new clients.
const MAX_UNACKNOWLEDGED: usize = 4096;

/// Every address the master listens on.
pub(crate) struct Listeners {
    policy: Policy,
    bound: HashMap<ListenKey, Bound>,
    reports: mpsc::Sender<Report>,
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
    pub(crate) fn new(policy: Policy, reports: mpsc::Sender<Report>) -> Self {
        Self {
            policy,
            bound: HashMap::new(),
            reports,
            unacknowledged: Arc::new(Semaphore::new(MAX_UNACKNOWLEDGED)),
        }
    }

    /// Binds `address` unless it is bound already; returns the bound address.
    pub(crate) async fn bind(&mut self, address: &str) -> std::io::Result<SocketAddr> {
        let key = ListenKey::from(address);
        if let Some(bound) = self.bound.get(&key) {
            return Ok(bound.address);
        }
        let (local, socket) = match self.policy {
            Policy::Rr | Policy::Sticky | Policy::Least => {
                let listener = TcpListener::bind(address).await?;
                let local = listener.local_addr()?;
                let accept_task = tokio::spawn(accept_loop(
                    key.clone(),
                    listener,
                    self.reports.clone(),
                    Arc::clone(&self.unacknowledged),
                ));
                (local, BoundSocket::Accepting(accept_task))
            }
            Policy::Shared => {
                let listener = TcpListener::bind(address).await?;
                let local = listener.local_addr()?;
                (local, BoundSocket::Shared(listener.into_std()?))
            }
            Policy::Reuseport => {
                let socket = reuseport_socket(address).await?;
                let local = socket.local_addr()?;
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

    /// A copy of the listening socket of `key` for a worker, under the `shared` policy.
    pub(crate) fn share(&self, key: &ListenKey) -> std::io::Result<Option<OwnedFd>> {
        match self.bound.get(key).map(|bound| &bound.socket) {
            Some(BoundSocket::Shared(listener)) => listener.as_fd().try_clone_to_owned().map(Some),
            _ => Ok(None),
        }
    }

    /// Stops accepting and closes the master's sockets: under `rr` and `sticky` new clients
    /// are refused from now on (under `shared` and `reuseport` once the workers close theirs).
    pub(crate) fn close(&mut self) {
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
    reports: mpsc::Sender<Report>,
    unacknowledged: Arc<Semaphore>,
) {
    loop {
        let Ok(permit) = Arc::clone(&unacknowledged).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let accepted = Accepted {
                    key: key.clone(),
                    stream,
                    peer,
                    permit,
                };
                if reports.send(Report::Accepted(accepted)).await.is_err() {
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
