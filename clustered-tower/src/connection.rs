//! The service each served connection runs: the user's service, made safe and drainable.
//!
//! - A panic in the user's service (while creating or polling its future) becomes a
//!   `500 Internal Server Error` for that request; the connection and the worker live on.
//! - Once the worker drains, HTTP/1 responses end keep-alive the way the request's protocol
//!   version understands: `Connection: close` for HTTP/1.1, and for HTTP/1.0 an HTTP/1.0
//!   response without the `keep-alive` token (hyper would otherwise answer a keep-alive
//!   HTTP/1.0 client `connection: close, keep-alive`, which `ab -k` and nginx's HTTP/1.0
//!   upstreams take as keep-alive, and write into the closed socket). So a keep-alive client
//!   gets its next answer and then reconnects (to another worker), instead of racing an
//!   idle-connection close.
//! - It notes whether the connection speaks HTTP/2, which drains with GOAWAY instead.
//! - It counts each request as in flight, for the connection and for the worker
//!   ([`clustered_core::load`]), until its response body is done (a streaming response counts
//!   while it streams).
//! - It gives each request the client's address as axum's [`ConnectInfo<SocketAddr>`] (the
//!   address the master accepted the connection from), the worker's [`Drain`] signal and
//!   its `WorkerInfo`, and marks it as [`crate::ClusterLayer`] would (`x-worker-id`, the
//!   request metrics), once: a `ClusterLayer` inside finds the request marked and adds
//!   nothing.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::drain::Drain;
use crate::watchdog::Sample;
use crate::worker_marks::{Marking, WorkerMarks};

/// The body of a response from [`ConnectionService`]: the user's, or the 500 of a panic.
pub(crate) type ConnectionBody<B> = Either<TrackedBody<B>, Full<Bytes>>;

/// What the serve loop knows of one connection: who the client is, the worker's drain signal,
/// and its requests.
#[derive(Debug)]
pub(crate) struct ConnectionState {
    /// The client.
    peer: SocketAddr,
    /// Shared by every connection of the worker: set when it drains. The same news as
    /// `drain`, read on every request without taking the watch's lock.
    draining: Arc<AtomicBool>,
    drain: Drain,
    /// What every request of the serve loop carries.
    marks: Arc<WorkerMarks>,
    /// Requests begun.
    started: AtomicU64,
    /// Requests whose response is done (or that failed).
    finished: AtomicU64,
    /// It has carried an HTTP/2 request.
    http2: AtomicBool,
    /// Reads from the socket that returned bytes (the watchdog's sign of a request under way).
    reads: AtomicU64,
}

impl ConnectionState {
    pub(crate) fn new(
        peer: SocketAddr,
        draining: Arc<AtomicBool>,
        drain: Drain,
        marks: Arc<WorkerMarks>,
    ) -> Self {
        Self {
            peer,
            draining,
            drain,
            marks,
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            reads: AtomicU64::new(0),
        }
    }

    /// Requests begun so far.
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Requests begun and not done.
    pub(crate) fn in_flight(&self) -> u64 {
        self.started()
            .saturating_sub(self.finished.load(Ordering::Relaxed))
    }

    /// Whether it speaks HTTP/2 (which drains with GOAWAY).
    pub(crate) fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Relaxed)
    }

    /// The worker's drain signal.
    pub(crate) fn drain(&self) -> &Drain {
        &self.drain
    }

    /// Notes a read that returned bytes.
    pub(crate) fn note_read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// Its counters, for the watchdog.
    pub(crate) fn sample(&self) -> Sample {
        Sample {
            started: self.started(),
            reads: self.reads.load(Ordering::Relaxed),
            in_flight: self.in_flight(),
            http2: self.is_http2(),
        }
    }
}

/// Per-connection wrapper around the user's service. hyper-util clones it for every request,
/// so all it holds besides the user's service is one shared pointer.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionService<S> {
    inner: S,
    state: Arc<ConnectionState>,
    /// `inner.call` may run the application's code, so a panic there is caught too. Not for an
    /// axum `Router`, whose `call` only routes (handlers and layers run when its future is
    /// polled, which is always guarded): catching it would cost a keep-alive request a few
    /// hundred instructions of copies of the request and the future.
    guard_call: bool,
}

impl<S> ConnectionService<S> {
    pub(crate) fn new(inner: S, state: Arc<ConnectionState>) -> Self
    where
        S: 'static,
    {
        let guard_call = std::any::TypeId::of::<S>() != std::any::TypeId::of::<axum::Router>();
        Self {
            inner,
            state,
            guard_call,
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
        let extensions = request.extensions_mut();
        let mut marked = self.state.marks.extensions(std::mem::take(extensions));
        marked.insert(ConnectInfo(self.state.peer));
        *extensions = marked;
        let marking = self.state.marks.begin(request.method());
        let version = request.version();
        if version == Version::HTTP_2 {
            self.state.http2.store(true, Ordering::Relaxed);
        }
        let close_after = match self.state.draining.load(Ordering::Relaxed) {
            true if version == Version::HTTP_10 => Some(Version::HTTP_10),
            true if version < Version::HTTP_2 => Some(Version::HTTP_11),
            _ => None,
        };
        let in_flight = Some(InFlight::begin(Arc::clone(&self.state)));
        if !self.guard_call {
            // Built in place: the future is not moved through a `catch_unwind` closure.
            return ConnectionFuture {
                inner: Some(self.inner.call(request)),
                close_after,
                marking,
                in_flight,
            };
        }
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
            marking,
            in_flight,
        }
    }
}

/// One request in flight, on its connection and in the worker's load, until dropped.
#[derive(Debug)]
pub(crate) struct InFlight {
    state: Arc<ConnectionState>,
    _load: clustered_core::load::RequestGuard,
}

impl InFlight {
    fn begin(state: Arc<ConnectionState>) -> Self {
        state.started.fetch_add(1, Ordering::Relaxed);
        Self {
            state,
            _load: clustered_core::load::track_request(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state.finished.fetch_add(1, Ordering::Relaxed);
    }
}

pin_project! {
    /// The future of [`ConnectionService`].
    pub(crate) struct ConnectionFuture<F> {
        #[pin]
        inner: Option<F>,
        // Draining: the response ends keep-alive, as this version of HTTP/1 understands.
        close_after: Option<Version>,
        // Timed, and its response to carry `x-worker-id` (in a worker).
        marking: Option<Marking>,
        // Moves into the response body; dropped with the future if there is none.
        in_flight: Option<InFlight>,
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
            Ok(Poll::Ready(Err(error))) => {
                if let Some(marking) = this.marking.take() {
                    marking.finish::<()>(None);
                }
                return Poll::Ready(Err(error));
            }
            Ok(Poll::Ready(Ok(response))) => {
                let in_flight = this.in_flight.take();
                response.map(|inner| Either::Left(TrackedBody { inner, in_flight }))
            }
            Err(()) => {
                // Never poll a panicked future again.
                this.inner.set(None);
                internal_error()
            }
        };
        if let Some(marking) = this.marking.take() {
            marking.finish(Some(&mut response));
        }
        if let Some(version) = *this.close_after {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            // An HTTP/1.0 response without `keep-alive` is what makes hyper close after it
            // (and add no `keep-alive` token of its own).
            *response.version_mut() = version;
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

pin_project! {
    /// A response body that keeps its request in flight until it is done.
    pub(crate) struct TrackedBody<B> {
        #[pin]
        inner: B,
        in_flight: Option<InFlight>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
