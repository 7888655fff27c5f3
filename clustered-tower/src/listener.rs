//! [`ClusterListener`]: a worker's delivered connections as an [`axum::serve::Listener`].

use std::io;
use std::net::SocketAddr;

use clustered_core::Connection;

/// A worker's delivered connections as an [`axum::serve::Listener`], for `axum::serve`.
///
/// Pair `axum::serve` with `with_graceful_shutdown(worker.draining())`: once the worker
/// drains, `accept` through the `Listener` trait never returns.
///
/// For axum's `ConnectInfo<SocketAddr>` (the client the master accepted), serve
/// `listener.tap_io(|_| ())` (axum's `ListenerExt`): axum provides it over its own listeners
/// and `TapIo` only, and the orphan rule forbids this crate to add it.
///
/// ```no_run
/// use std::net::SocketAddr;
///
/// use axum::extract::ConnectInfo;
/// use axum::serve::ListenerExt;
/// use axum::{Router, routing::get};
/// use clustered_core::Cluster;
/// use clustered_tower::ClusterListener;
///
/// async fn hi(ConnectInfo(client): ConnectInfo<SocketAddr>) -> String {
///     format!("hi {client}\n")
/// }
///
/// # async fn example() -> Result<(), clustered_core::Error> {
/// Cluster::new()
///     .bind("127.0.0.1:3000")
///     .run(|worker| async move {
///         let app = Router::new().route("/", get(hi));
///         let listener = ClusterListener::new(worker.listen("127.0.0.1:3000").await?);
///         let draining = worker.clone();
///         axum::serve(
///             listener.tap_io(|_| ()),
///             app.into_make_service_with_connect_info::<SocketAddr>(),
///         )
///         .with_graceful_shutdown(async move { draining.draining().await })
///         .await?;
///         Ok::<_, clustered_core::BoxError>(())
///     })
///     .await
/// # }
/// ```
#[derive(Debug)]
pub struct ClusterListener {
    inner: clustered_core::Listener,
}

impl ClusterListener {
    /// Wraps a worker's listener.
    pub fn new(inner: clustered_core::Listener) -> Self {
        Self { inner }
    }

    /// The next connection handed to this worker, with its client's address (`0.0.0.0:0`
    /// over a Unix socket); `None` once the worker drains and every delivered connection has
    /// been taken.
    pub async fn accept(&mut self) -> Option<(Connection, SocketAddr)> {
        self.inner.accept().await
    }
}

impl axum::serve::Listener for ClusterListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        match ClusterListener::accept(self).await {
            Some(connection) => connection,
            // Draining: no connection will come again; graceful shutdown ends the serve loop.
            None => std::future::pending().await,
        }
    }

    /// The bound TCP address; an error for a Unix socket, which has no IP address.
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr().as_tcp().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "a Unix socket has no IP address",
            )
        })
    }
}
