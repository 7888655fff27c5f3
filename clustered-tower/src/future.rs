//! [`ResponseFuture`]: the response future of [`crate::ClusterService`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Response};
use pin_project_lite::pin_project;

use crate::header::WORKER_ID_HEADER;
use crate::http_metrics::RequestTimer;

pin_project! {
    /// The response future of [`crate::ClusterService`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        worker_id: Option<HeaderValue>,
        timer: Option<RequestTimer>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(
        inner: F,
        worker_id: Option<HeaderValue>,
        timer: Option<RequestTimer>,
    ) -> Self {
        Self {
            inner,
            worker_id,
            timer,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(timer) = this.timer.take() {
            timer.finish(result.as_ref().ok().map(Response::status));
        }
        let mut response = result?;
        if let Some(worker_id) = this.worker_id.take() {
            response
                .headers_mut()
                .insert(WORKER_ID_HEADER.clone(), worker_id);
        }
        Poll::Ready(Ok(response))
    }
}
