//! Serving HTTP in the workers: [`ServeHttp::serve`] for a whole cluster, and
//! [`serve_connections`] for one worker's listener.

use std::future::Future;

use cluster_core::{BoxError, Cluster, Error, Listener};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower_service::Service;

/// Serves an HTTP service on every worker of a [`Cluster`].
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use cluster_core::Cluster;
/// use cluster_tower::{ClusterLayer, ServeHttp};
///
/// # async fn example() -> Result<(), cluster_core::Error> {
/// let app = Router::new()
///     .route("/", get(|| async { "hello world\n" }))
///     .layer(ClusterLayer::new());
/// Cluster::new().serve("127.0.0.1:3000", app).await
/// # }
/// ```
pub trait ServeHttp {
    /// In the master: binds `address` (failing at once if it is taken), starts the workers and
    /// supervises them until SIGTERM/SIGINT. In a worker: serves `service` on the connections
    /// the master hands over, with HTTP/1.1 and HTTP/2 (prior knowledge, `h2c`) on the same
    /// port, until the master asks it to drain. The master never calls `service`.
    fn serve<S, B>(
        self,
        address: impl Into<String>,
        service: S,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>;
}

impl ServeHttp for Cluster {
    fn serve<S, B>(
        self,
        address: impl Into<String>,
        service: S,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let address = address.into();
        self.bind(address.clone()).run(move |worker| async move {
            let listener = worker.listen(&address).await?;
            serve_connections(listener, service).await;
            Ok::<_, Error>(())
        })
    }
}

/// Serves every connection `listener` delivers with hyper-util's auto builder (HTTP/1.1 with
/// upgrades, and HTTP/2 prior knowledge), until the worker drains; then lets in-flight requests
/// finish while keep-alive connections are closed (`Connection: close`, HTTP/2 GOAWAY).
pub async fn serve_connections<S, B>(mut listener: Listener, service: S)
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    while let Some((stream, peer)) = listener.accept().await {
        let service = TowerToHyperService::new(service.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, error, "connection ended with an error");
            }
        });
    }
    tracing::debug!(open = graceful.count(), "draining connections");
    graceful.shutdown().await;
}
