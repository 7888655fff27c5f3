//! [`ResponseFuture`]: the response future of [`crate::ClusterService`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use crate::worker_marks::Marking;

pin_project! {
    /// The response future of [`crate::ClusterService`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        marking: Option<Marking>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, marking: Option<Marking>) -> Self {
        Self { inner, marking }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        if let Some(marking) = this.marking.take() {
            marking.finish(result.as_mut().ok());
        }
        Poll::Ready(result)
    }
}
