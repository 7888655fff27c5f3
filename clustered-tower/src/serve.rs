//! Serving HTTP in the workers: [`ServeHttp::serve`] for a whole cluster, and
//! [`serve_connections`] for one worker's listener.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clustered_core::{BoxError, Cluster, Error, Listener};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tower_service::Service;

use crate::config::HttpConfig;
use crate::connection::{ConnectionService, ConnectionState};
use crate::drain::Drain;
use crate::served_io::ServedIo;
#[cfg(feature = "tls")]
use crate::tls::TlsConfig;
#[cfg(feature = "tls")]
use crate::tls_metrics;
use crate::tracked::TrackedIo;
use crate::watchdog::{self, Verdict};
use crate::when_woken::WhenWoken;
use crate::worker_marks::WorkerMarks;

/// How long a draining worker keeps an HTTP/1 connection open for its client's next request
/// (answered with `Connection: close`) before closing it once idle.
pub const KEEP_ALIVE_DRAIN_GRACE: Duration = Duration::from_secs(1);

/// A tower service the workers can serve over HTTP, with response bodies `B` (an
/// `axum::Router` is one).
pub trait Servable<B>:
    Service<
        Request<Incoming>,
        Response = Response<B>,
        Error: Into<BoxError>,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> Servable<B> for S
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
}

/// A response body the workers can send.
pub trait ServableBody:
    http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> ServableBody for B
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
}

/// Running a [`Cluster`] that serves an HTTP service in every worker.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use clustered_core::Cluster;
/// use clustered_tower::{ClusterLayer, ServeHttp};
///
/// # async fn example() -> Result<(), clustered_core::Error> {
/// let app = Router::new()
///     .route("/", get(|| async { "hello world\n" }))
///     .layer(ClusterLayer::new());
/// Cluster::new().serve("127.0.0.1:3000", app).await
/// # }
/// ```
pub trait ServeHttp {
    /// Runs the cluster, every worker serving `service` on `address` (HTTP/1.1 and `h2c` on
    /// one port) with [`HttpConfig::default`], until SIGTERM or SIGINT.
    ///
    /// Fails at once if `address` cannot be bound. The master never calls `service`; each
    /// worker runs [`serve_connections`].
    fn serve<S, B>(
        self,
        address: impl Into<String>,
        service: S,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        S: Servable<B>,
        B: ServableBody,
        Self: Sized,
    {
        self.serve_with(address, service, HttpConfig::default())
    }

    /// [`ServeHttp::serve`] with these HTTP settings.
    fn serve_with<S, B>(
        self,
        address: impl Into<String>,
        service: S,
        config: HttpConfig,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        S: Servable<B>,
        B: ServableBody;

    /// [`ServeHttp::serve`] over TLS (HTTPS: HTTP/2 or HTTP/1.1 by ALPN), each worker making
    /// the handshakes of the connections it takes.
    #[cfg(feature = "tls")]
    fn serve_tls<S, B>(
        self,
        address: impl Into<String>,
        service: S,
        tls: TlsConfig,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        S: Servable<B>,
        B: ServableBody;
}

impl ServeHttp for Cluster {
    fn serve_with<S, B>(
        self,
        address: impl Into<String>,
        service: S,
        config: HttpConfig,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        S: Servable<B>,
        B: ServableBody,
    {
        serve_cluster(self, address.into(), service, config, None)
    }

    #[cfg(feature = "tls")]
    fn serve_tls<S, B>(
        self,
        address: impl Into<String>,
        service: S,
        tls: TlsConfig,
    ) -> impl Future<Output = Result<(), Error>> + Send
    where
        S: Servable<B>,
        B: ServableBody,
    {
        serve_cluster(
            self,
            address.into(),
            service,
            HttpConfig::default(),
            Some(tls),
        )
    }
}

/// Runs `cluster`, every worker serving `service` on `address`, over TLS when `tls` says so.
fn serve_cluster<S, B>(
    cluster: Cluster,
    address: String,
    service: S,
    config: HttpConfig,
    tls: Option<Tls>,
) -> impl Future<Output = Result<(), Error>> + Send
where
    S: Servable<B>,
    B: ServableBody,
{
    cluster.bind(address.clone()).run(move |worker| async move {
        let listener = worker.listen(&address).await?;
        serve_listener(listener, service, &config, tls.as_ref()).await;
        Ok::<_, Error>(())
    })
}

/// Serves `service` on every connection `listener` delivers (HTTP/1.1 with upgrades, and
/// HTTP/2 prior knowledge) until the worker drains, then returns once every connection is done.
///
/// On drain, requests in flight finish and connections close without racing their clients:
///
/// - HTTP/1: responses from then on carry `Connection: close`; a connection with no request
///   in flight after [`KEEP_ALIVE_DRAIN_GRACE`] is closed.
/// - HTTP/2: GOAWAY at once.
/// - A connection the application took over (an upgrade, e.g. a WebSocket) is the
///   application's to end: every request carries the worker's [`Drain`], and this function
///   waits until every such connection and every `Drain` is gone.
///
/// The timeouts and limits are `config`'s. A panic in `service` answers that request with
/// 500; the connection and the worker live on. Handlers can take the client's address as
/// axum's `ConnectInfo<SocketAddr>`. Every request is marked as [`crate::ClusterLayer`] marks
/// it (`x-worker-id`, `WorkerInfo`, the request metrics), once: a `ClusterLayer` in `service`
/// adds nothing more.
pub async fn serve_connections<S, B>(listener: Listener, service: S, config: &HttpConfig)
where
    S: Servable<B>,
    B: ServableBody,
{
    serve_listener(listener, service, config, None).await;
}

/// [`serve_connections`] over TLS: each connection's handshake first, in its own task, bounded
/// by the handshake timeout; when the worker drains, a handshake under way gets
/// [`KEEP_ALIVE_DRAIN_GRACE`] to finish, and its connection is then served as any other.
#[cfg(feature = "tls")]
pub async fn serve_connections_tls<S, B>(
    listener: Listener,
    service: S,
    config: &HttpConfig,
    tls: &TlsConfig,
) where
    S: Servable<B>,
    B: ServableBody,
{
    serve_listener(listener, service, config, Some(tls)).await;
}

/// What a TLS connection begins with: its handshake's settings (none in a build without TLS).
#[cfg(feature = "tls")]
type Tls = TlsConfig;
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
enum Tls {}

async fn serve_listener<S, B>(
    mut listener: Listener,
    mut service: S,
    config: &HttpConfig,
    handshake: Option<&Tls>,
) where
    S: Servable<B>,
    B: ServableBody,
{
    prebuild_router(&mut service);
    #[cfg(feature = "tls")]
    let tls = handshake.map(|tls| {
        (
            tokio_rustls::TlsAcceptor::from(std::sync::Arc::clone(tls.server_config())),
            tls.timeout(),
        )
    });
    #[cfg(not(feature = "tls"))]
    let _ = handshake;
    // Loads the certificate again whenever the master says (`clusterctl tls reload`).
    #[cfg(feature = "tls")]
    let _reload = handshake.map(|tls| reload_on_request(tls.clone()));
    let builder = config.builder();
    let (header_timeout, idle_timeout) = (
        config.header_read_timeout_setting(),
        config.idle_timeout_setting(),
    );
    let draining = Arc::new(AtomicBool::new(false));
    let (drain_tx, drain_rx) = watch::channel(false);
    let drain = Drain::new(drain_rx);
    let marks = Arc::new(WorkerMarks::new(drain.clone(), config));
    while let Some((stream, peer)) = listener.accept().await {
        let state = Arc::new(ConnectionState::new(
            peer,
            Arc::clone(&draining),
            drain.clone(),
            Arc::clone(&marks),
        ));
        let service = ConnectionService::new(service.clone(), Arc::clone(&state));
        let io = TrackedIo::new(
            stream,
            Arc::clone(&state),
            clustered_core::load::track_connection(),
        );
        #[cfg(feature = "tls")]
        if let Some((acceptor, timeout)) = &tls {
            let (acceptor, timeout, builder) = (acceptor.clone(), *timeout, builder.clone());
            tokio::spawn(async move {
                let Some(io) = tls_handshake(&acceptor, io, timeout, &state, peer).await else {
                    return;
                };
                let connection = Box::pin(
                    builder
                        .serve_connection_with_upgrades(
                            TokioIo::new(io),
                            TowerToHyperService::new(service),
                        )
                        .into_owned(),
                );
                drive(connection, state, header_timeout, idle_timeout, peer).await;
            });
            continue;
        }
        // Boxed: hyper's connection state is about 3 KB, which spawning would otherwise copy
        // several times over (a seventh of a new connection's instructions in the worker).
        let connection = Box::pin(
            builder
                .serve_connection_with_upgrades(
                    TokioIo::new(ServedIo::Plain(io)),
                    TowerToHyperService::new(service),
                )
                .into_owned(),
        );
        tokio::spawn(drive(connection, state, header_timeout, idle_timeout, peer));
    }
    draining.store(true, Ordering::Relaxed);
    drain_tx.send_replace(true);
    drop((drain, marks));
    tracing::debug!(open = drain_tx.receiver_count(), "draining connections");
    drain_tx.closed().await;
}

/// The TLS session over `io` (from `peer`) once its handshake is done, or `None` (counted and
/// logged) when it fails or runs out of `timeout`. When the worker drains, a handshake begun
/// before, or delivered just as it began, has a client there: it gets the grace a keep-alive
/// client gets, and one that never sends its hello holds the drain no longer than that.
#[cfg(feature = "tls")]
async fn tls_handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    io: TrackedIo<clustered_core::Connection>,
    timeout: Duration,
    state: &ConnectionState,
    peer: std::net::SocketAddr,
) -> Option<ServedIo> {
    let handshake = tokio::time::timeout(timeout, acceptor.accept(io));
    tokio::pin!(handshake);
    let session = tokio::select! {
        biased;
        session = &mut handshake => session,
        () = state.drain().draining() => tokio::time::timeout(KEEP_ALIVE_DRAIN_GRACE, handshake)
            .await
            .and_then(|session| session),
    };
    match session {
        Ok(Ok(session)) => {
            let resumed =
                session.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            tls_metrics::handshake(resumed);
            Some(ServedIo::Tls(Box::new(session)))
        }
        Ok(Err(error)) => {
            tls_metrics::failed(tls_metrics::Failure::of(&error));
            tracing::debug!(%peer, %error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tls_metrics::failed(tls_metrics::Failure::Timeout);
            tracing::debug!(%peer, "TLS handshake timed out (its timeout, or the drain's grace)");
            None
        }
    }
}

/// Loads `tls`'s certificate again each time the master asks (while the guard lives), saying
/// how that went.
#[cfg(feature = "tls")]
fn reload_on_request(tls: TlsConfig) -> clustered_core::certificates::CertificateReload {
    clustered_core::certificates::on_reload(move || match tls.reload_certificate() {
        Ok(()) => {
            tracing::info!("loaded the TLS certificate again; new connections get it");
            Ok(())
        }
        Err(error) => {
            tracing::error!("{error}; the certificate before keeps serving");
            Err(error.to_string())
        }
    })
}

/// One served connection, hyper's.
type ServedConnection<S> = hyper_util::server::conn::auto::UpgradeableConnection<
    'static,
    TokioIo<ServedIo>,
    TowerToHyperService<ConnectionService<S>>,
    hyper_util::rt::TokioExecutor,
>;

/// Serves one connection until it ends: on drain, HTTP/1 gets its grace for a next request
/// (answered with `Connection: close`) and HTTP/2 its GOAWAY; the watchdog cuts off one stalled
/// in its headers or idle too long.
async fn drive<S, B>(
    mut connection: std::pin::Pin<Box<ServedConnection<S>>>,
    state: Arc<ConnectionState>,
    header_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    peer: std::net::SocketAddr,
) where
    S: Servable<B>,
    B: ServableBody,
{
    // Polled only when their own wake-ups say so, not on every read and write of the socket.
    let interruption = WhenWoken::new(interruption(&state, header_timeout, idle_timeout));
    let result = tokio::select! {
        biased;
        result = connection.as_mut() => result,
        interruption = interruption => match interruption {
            Interruption::Drain => {
                // HTTP/1: a client between requests may send its next one (answered with
                // `Connection: close`) during the grace; HTTP/2 gets its GOAWAY at once.
                let finished = match state.is_http2() {
                    true => None,
                    false => tokio::time::timeout(KEEP_ALIVE_DRAIN_GRACE, connection.as_mut())
                        .await
                        .ok(),
                };
                match finished {
                    Some(result) => result,
                    // Nothing to finish: closed (dropping it closes the socket).
                    None if !state.is_http2() && state.in_flight() == 0 => Ok(()),
                    None => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                }
            }
            // Mid-headers: nothing to finish (dropping it closes the socket).
            Interruption::Watchdog(Verdict::HeaderTimeout) => Ok(()),
            Interruption::Watchdog(_) => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        },
    };
    if let Err(error) = result {
        tracing::debug!(%peer, error, "connection ended with an error");
    }
}

/// What ends a connection's plain serving.
enum Interruption {
    /// The worker drains.
    Drain,
    /// The watchdog's verdict.
    Watchdog(Verdict),
}

/// Resolves with the first interruption of the connection `state` describes.
async fn interruption(
    state: &ConnectionState,
    header_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
) -> Interruption {
    tokio::select! {
        () = state.drain().draining() => Interruption::Drain,
        verdict = watchdog::watch(|| state.sample(), header_timeout, idle_timeout) => {
            Interruption::Watchdog(verdict)
        }
    }
}

/// Turns an axum `Router` into its pre-built form once, as `axum::serve` does: a `Router<()>`
/// called as a plain service builds each matched handler's route (with every layer) on every
/// request, about a fifth of a keep-alive request's instructions. Any other service is left as
/// it is.
fn prebuild_router<S: 'static>(service: &mut S) {
    if let Some(router) = (service as &mut dyn Any).downcast_mut::<axum::Router>() {
        *router = std::mem::take(router).with_state(());
    }
}
