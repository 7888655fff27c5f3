//! [`Listener`]: the connections the master hands to this worker for one address.

use std::net::SocketAddr;

use clustered_ipc::{ListenAddr, ListenKey};
use tokio::sync::{mpsc, watch};

use super::connection::{Connection, OwnListener};
use crate::limits::AcceptErrors;

/// A connection delivered by the master, with its client's address.
pub(crate) type Delivered = (Connection, SocketAddr);

/// Where a listener's connections come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// Handed over by the master (`rr`, `sticky`).
    Master(mpsc::Receiver<Delivered>),
    /// Accepted here from a socket this worker holds (`shared`, `reuseport`), until the worker
    /// drains: then the socket is closed at once. When the master waits for readiness, nothing
    /// is accepted before the worker is ready (`ready`, dropped once it is).
    Own {
        listener: Option<OwnListener>,
        draining: watch::Receiver<bool>,
        ready: Option<watch::Receiver<bool>>,
        errors: AcceptErrors,
    },
}

/// The connections accepted by the master on one address and handed to this worker.
///
/// Returned by [`crate::Worker::listen`]. Once the worker drains, [`Listener::accept`] yields
/// the connections already delivered and then `None` (under `shared` and `reuseport`, where
/// this worker accepts itself, it closes its socket and returns `None` at once).
#[derive(Debug)]
pub struct Listener {
    key: ListenKey,
    local_addr: ListenAddr,
    source: Source,
}

impl Listener {
    pub(crate) fn new(key: ListenKey, local_addr: ListenAddr, source: Source) -> Self {
        Self {
            key,
            local_addr,
            source,
        }
    }

    /// The next connection and its client's address (`0.0.0.0:0` over a Unix socket, whose
    /// clients have none); `None` once the worker is draining and every delivered connection
    /// has been taken.
    ///
    /// Cancel-safe: dropping the future loses no connection.
    pub async fn accept(&mut self) -> Option<(Connection, SocketAddr)> {
        match &mut self.source {
            Source::Master(incoming) => incoming.recv().await,
            Source::Own {
                listener,
                draining,
                ready,
                errors,
            } => loop {
                if let Some(until_ready) = ready {
                    let became_ready = tokio::select! {
                        biased;
                        () = drained(draining) => false,
                        ready = until_ready.wait_for(|ready| *ready) => ready.is_ok(),
                    };
                    if !became_ready {
                        *listener = None;
                        return None;
                    }
                    *ready = None;
                }
                let socket = listener.as_ref()?;
                tokio::select! {
                    biased;
                    () = drained(draining) => {
                        // Close now, so the kernel stops queueing connections here.
                        *listener = None;
                        return None;
                    }
                    accepted = socket.accept() => match accepted {
                        Ok(accepted) => {
                            errors.succeeded(self.key.as_str());
                            return Some(accepted);
                        }
                        Err(error) => {
                            let delay = errors.after(&error, self.key.as_str());
                            tokio::time::sleep(delay).await;
                        }
                    },
                }
            },
        }
    }

    /// The address the master bound (with the real port when port 0 was asked for), or the
    /// Unix socket's path.
    pub fn local_addr(&self) -> &ListenAddr {
        &self.local_addr
    }

    /// The address as it was asked for (`Worker::listen`'s argument).
    pub fn address(&self) -> &str {
        self.key.as_str()
    }
}

/// Resolves once the worker drains (or its link is gone, which is the same).
pub(super) async fn drained(draining: &mut watch::Receiver<bool>) {
    let _ = draining.wait_for(|draining| *draining).await;
}
