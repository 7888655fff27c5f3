//! The master's listening sockets: bound once per address, each with an accept task that feeds
//! accepted connections to the supervisor.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster_ipc::ListenKey;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::dispatch::Handoff;
use super::event::Event;
use crate::Error;

/// Connections accepted but not yet acknowledged by a worker, across the cluster. Past this the
/// master stops accepting and the kernel's listen backlog holds new clients.
const MAX_UNACKNOWLEDGED: usize = 4096;

/// Every address the master listens on.
pub(super) struct Listeners {
    bound: HashMap<ListenKey, Bound>,
    events: mpsc::Sender<Event>,
    unacknowledged: Arc<Semaphore>,
}

struct Bound {
    address: SocketAddr,
    accept_task: JoinHandle<()>,
}

impl Listeners {
    pub(super) fn new(events: mpsc::Sender<Event>) -> Self {
        Self {
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
        let listener = TcpListener::bind(address).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        tracing::debug!(%address, %local, "bound");
        let accept_task = tokio::spawn(accept_loop(
            key.clone(),
            listener,
            self.events.clone(),
            Arc::clone(&self.unacknowledged),
        ));
        self.bound.insert(
            key,
            Bound {
                address: local,
                accept_task,
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

    /// Stops accepting and closes every listening socket: new clients are refused.
    pub(super) fn close(&mut self) {
        for (_, bound) in self.bound.drain() {
            bound.accept_task.abort();
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
