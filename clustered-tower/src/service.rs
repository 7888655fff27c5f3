//! [`ClusterService`]: the service [`crate::ClusterLayer`] produces.

use std::sync::OnceLock;
use std::task::{Context, Poll};

use clustered_core::WorkerInfo;
use http::{HeaderValue, Request, Response};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::http_metrics::RequestTimer;

/// The service [`crate::ClusterLayer`] wraps around `S`: see the layer for what it adds.
#[derive(Debug, Clone)]
pub struct ClusterService<S> {
    inner: S,
    worker: Option<(WorkerInfo, HeaderValue)>,
}

impl<S> ClusterService<S> {
    /// Wraps `inner`, as [`crate::ClusterLayer`] does.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            worker: this_worker(),
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// This worker's identity and its `x-worker-id` value, made once per process; the value from a
/// leaked string, so that cloning it for every response copies a pointer instead of counting a
/// shared buffer.
fn this_worker() -> Option<(WorkerInfo, HeaderValue)> {
    static WORKER: OnceLock<Option<(WorkerInfo, HeaderValue)>> = OnceLock::new();
    WORKER
        .get_or_init(|| {
            WorkerInfo::current().map(|info| {
                (
                    info,
                    HeaderValue::from_static(String::leak(info.id.to_string())),
                )
            })
        })
        .clone()
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
        let timer = header
            .is_some()
            .then(|| RequestTimer::start(request.method()));
        ResponseFuture::new(self.inner.call(request), header, timer)
    }
}
