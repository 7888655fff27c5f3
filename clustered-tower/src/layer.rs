//! [`ClusterLayer`]: the tower layer that makes a service cluster-aware.

use tower_layer::Layer;

use crate::service::ClusterService;

/// A tower layer that marks each request and response with the worker serving it.
///
/// In a cluster worker, every response carries `x-worker-id: <slot>`, every request a
/// [`clustered_core::WorkerInfo`] extension, and each request is counted in
/// `cluster_http_requests_total` and `cluster_http_request_duration_seconds` (by method and
/// status class). Outside a worker it changes nothing.
///
/// [`crate::ServeHttp::serve`] and [`crate::serve_connections`] do all this themselves, once
/// per request, leaving out what [`crate::HttpConfig::worker_id_header`] and
/// [`crate::HttpConfig::request_metrics`] turn off: the layer is for other servers
/// (`axum::serve` over a [`crate::ClusterListener`]). Under them it finds each request marked
/// and adds nothing (through `Router::layer` it still costs axum's wrapping of every route in
/// one more boxed service, as any layer does).
///
/// ```
/// use axum::{Router, routing::get};
/// use clustered_tower::ClusterLayer;
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello world\n" }))
///     .layer(ClusterLayer::new());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterLayer {
    _private: (),
}

impl ClusterLayer {
    /// Creates the layer (the same as `ClusterLayer::default()`).
    pub fn new() -> Self {
        Self { _private: () }
    }
}

impl<S> Layer<S> for ClusterLayer {
    type Service = ClusterService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClusterService::new(inner)
    }
}
