//! [`ClusterListener`]: a worker's delivered connections as an [`axum::serve::Listener`].

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpStream;

/// Lets `axum::serve` (or anything taking an [`axum::serve::Listener`]) serve the connections
/// the master hands to this worker.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use clustered_core::Cluster;
/// use clustered_tower::ClusterListener;
///
/// # async fn example() -> Result<(), clustered_core::Error> {
/// Cluster::new()
///     .run(|worker| async move {
///         let app = Router::new().route("/", get(|| async { "hi\n" }));
///         let listener = ClusterListener::new(worker.listen("127.0.0.1:3000").await?);
///         axum::serve(listener, app).await?;
///         Ok::<_, clustered_core::BoxError>(())
///     })
///     .await
/// # }
/// ```
///
/// [`ClusterListener::accept`] returns `None` once the worker drains. axum's serve loop cannot
/// be told that, so through the [`axum::serve::Listener`] trait `accept` pends from then on:
/// pair `axum::serve` with `with_graceful_shutdown(worker.draining())` to stop serving.
///
/// The client's address is the real one (the master's accepted peer). For axum's
/// `ConnectInfo<SocketAddr>`, serve `listener.tap_io(|_| ())` (axum's `ListenerExt`) with
/// `app.into_make_service_with_connect_info::<SocketAddr>()`: axum implements its `Connected`
/// for `SocketAddr` only over its own `TcpListener` and over `TapIo`, and the orphan rule keeps
/// this crate from adding an implementation (`examples/axum_serve.rs` does it).
#[derive(Debug)]
pub struct ClusterListener {
    inner: clustered_core::Listener,
}

impl ClusterListener {
    /// Wraps a worker's listener.
    pub fn new(inner: clustered_core::Listener) -> Self {
        Self { inner }
    }

    /// The next connection the master handed to this worker and its client's address;
    /// `None` once the worker drains and every delivered connection has been taken.
    pub async fn accept(&mut self) -> Option<(TcpStream, SocketAddr)> {
        self.inner.accept().await
    }
}

impl axum::serve::Listener for ClusterListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match ClusterListener::accept(self).await {
            Some(connection) => connection,
            // Draining: no connection will come again; graceful shutdown ends the serve loop.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.local_addr())
    }
}
