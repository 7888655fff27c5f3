//! [`ClusterLayer`]: the tower layer that makes a service cluster-aware.

use tower_layer::Layer;

use crate::service::ClusterService;

/// Wraps a service so that, in a cluster worker, every response carries `x-worker-id: <slot>`
/// and every request carries a [`clustered_core::WorkerInfo`] in its extensions.
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
    /// The layer.
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
