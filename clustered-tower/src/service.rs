//! [`ClusterService`]: the service [`crate::ClusterLayer`] produces.

use std::task::{Context, Poll};

use clustered_core::WorkerInfo;
use http::{HeaderValue, Request, Response};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::worker_marks::{Marking, this_worker};

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
        // Under `serve` the request is marked already (it carries the `WorkerInfo`): nothing
        // is added or counted twice.
        let marking = match &self.worker {
            Some((info, header)) if request.extensions().get::<WorkerInfo>().is_none() => {
                request.extensions_mut().insert(*info);
                Some(Marking::begin(request.method(), header.clone()))
            }
            _ => None,
        };
        ResponseFuture::new(self.inner.call(request), marking)
    }
}
