//! [`ClusterService`]: the service [`crate::ClusterLayer`] produces.

use std::task::{Context, Poll};

use cluster_core::WorkerInfo;
use http::{HeaderValue, Request, Response};
use tower_service::Service;

use crate::future::ResponseFuture;

/// Adds the worker's identity to requests (extension) and responses (header).
///
/// Outside a cluster worker (in tests, or a program run without a cluster) it passes requests
/// through unchanged.
#[derive(Debug, Clone)]
pub struct ClusterService<S> {
    inner: S,
    worker: Option<(WorkerInfo, HeaderValue)>,
}

impl<S> ClusterService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        let worker = WorkerInfo::current().map(|info| (info, HeaderValue::from(info.id)));
        Self { inner, worker }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ClusterService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let header = self.worker.as_ref().map(|(info, header)| {
            request.extensions_mut().insert(*info);
            header.clone()
        });
        ResponseFuture::new(self.inner.call(request), header)
    }
}
