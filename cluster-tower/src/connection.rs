//! The service each served connection runs: the user's service, made safe and drainable.
//!
//! - A panic in the user's service (while creating or polling its future) becomes a
//!   `500 Internal Server Error` for that request; the connection and the worker live on.
//! - Once the worker drains, HTTP/1 responses carry `Connection: close`, so a keep-alive client
//!   gets its next answer and then reconnects (to another worker), instead of racing an
//!   idle-connection close.
//! - It notes whether the connection speaks HTTP/2, which drains with GOAWAY instead.
//! - It counts each request as in flight ([`cluster_core::load`]) until its response is ready.
//! - It gives each request the client's address as axum's [`ConnectInfo<SocketAddr>`] (the
//!   address the master accepted the connection from).

use std::future::Future;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use tower_service::Service;

/// The body of a response from [`ConnectionService`]: the user's, or the 500 of a panic.
pub(crate) type ConnectionBody<B> = Either<B, Full<Bytes>>;

/// Per-connection wrapper around the user's service.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionService<S> {
    inner: S,
    /// Shared by every connection of the worker: set when it drains.
    draining: Arc<AtomicBool>,
    /// This connection has carried an HTTP/2 request.
    http2: Arc<AtomicBool>,
    /// The client.
    peer: SocketAddr,
}

impl<S> ConnectionService<S> {
    pub(crate) fn new(
        inner: S,
        draining: Arc<AtomicBool>,
        http2: Arc<AtomicBool>,
        peer: SocketAddr,
    ) -> Self {
        Self {
            inner,
            draining,
            http2,
            peer,
        }
    }
}

impl<S, ReqBody, B> Service<Request<ReqBody>> for ConnectionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<B>>,
{
    type Response = Response<ConnectionBody<B>>;
    type Error = S::Error;
    type Future = ConnectionFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let version = request.version();
        if version == Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        let close_after = version < Version::HTTP_2 && self.draining.load(Ordering::Relaxed);
        let inner = match catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => Some(future),
            Err(_) => {
                tracing::error!("the request handler panicked; answered 500");
                None
            }
        };
        ConnectionFuture {
            inner,
            close_after,
            _in_flight: cluster_core::load::track_request(),
        }
    }
}

pin_project! {
    /// The future of [`ConnectionService`].
    pub(crate) struct ConnectionFuture<F> {
        #[pin]
        inner: Option<F>,
        close_after: bool,
        _in_flight: cluster_core::load::RequestGuard,
    }
}

impl<F, B, E> Future for ConnectionFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ConnectionBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let polled = match this.inner.as_mut().as_pin_mut() {
            None => Err(()),
            Some(inner) => catch_unwind(AssertUnwindSafe(|| inner.poll(cx))).map_err(|_| {
                tracing::error!("the request handler panicked; answered 500");
            }),
        };
        let mut response = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result?.map(Either::Left),
            Err(()) => {
                // Never poll a panicked future again.
                this.inner.set(None);
                internal_error()
            }
        };
        if *this.close_after {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(response))
    }
}

fn internal_error<B>() -> Response<ConnectionBody<B>> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        b"internal server error\n",
    ))));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
