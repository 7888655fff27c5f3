//! [`MetricsEndpoint`]: the master's admin address, `CLUSTER_METRICS_ADDR` (or
//! [`crate::Cluster::metrics_addr`]): the whole cluster's metrics at `GET /metrics` in
//! Prometheus text format, and the health checks a load balancer or Kubernetes probes:
//! `/livez` (200 while the master's loop runs) and `/readyz` (200 while a worker serves every
//! address and no stop has begun; 503 saying why otherwise, from the moment a stop begins).
//! The master, never a worker, answers, so every scrape sees every process. HTTP/1.1 with
//! hyper; a client gets 10 s to send its request's head, and at most 64 connections are served
//! at once (more are closed at once).

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::master::control::ClusterControl;
use crate::master::metrics_view::exposition;

/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The content type of Prometheus text exposition.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The master's metrics server; stops accepting when dropped.
#[derive(Debug)]
pub(crate) struct MetricsEndpoint {
    acceptor: JoinHandle<()>,
    /// A copy of the listening socket, for an upgrade to hand over.
    listener: OwnedFd,
}

impl MetricsEndpoint {
    /// Binds `address` (an error naming it when it cannot be), or serves `inherited` (bound by
    /// the master this one upgrades), and serves the cluster's metrics there; prints
    /// `metrics on http://HOST:PORT/metrics` once bound (the real port, also for port 0).
    pub(crate) async fn open(
        address: &str,
        control: ClusterControl,
        inherited: Option<OwnedFd>,
    ) -> Result<Self, Error> {
        let bind_error = |source| Error::MetricsBind {
            address: address.to_owned(),
            source,
        };
        let listener = match inherited {
            Some(fd) => {
                let listener = std::net::TcpListener::from(fd);
                listener.set_nonblocking(true).map_err(bind_error)?;
                TcpListener::from_std(listener).map_err(bind_error)?
            }
            None => TcpListener::bind(address).await.map_err(bind_error)?,
        };
        let bound = listener.local_addr().map_err(bind_error)?;
        let copy = listener.as_fd().try_clone_to_owned().map_err(bind_error)?;
        crate::log_format::announce(&format!("metrics on http://{bound}/metrics"));
        let acceptor = tokio::spawn(accept(listener, control));
        Ok(Self {
            acceptor,
            listener: copy,
        })
    }

    /// A copy of the listening socket, for an upgrade's new master.
    pub(crate) fn handover_fd(&self) -> std::io::Result<OwnedFd> {
        self.listener.try_clone()
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept(listener: TcpListener, control: ClusterControl) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!(%error, "metrics endpoint: accept failed");
                // Out of descriptors, most likely: let some close.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!("metrics endpoint: too many connections; one closed");
            continue;
        };
        let control = control.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, control.clone()));
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "metrics endpoint: connection ended with an error");
            }
            drop(permit);
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    control: ClusterControl,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = Response::builder();
    let path = request.uri().path();
    let response = if !matches!(path, "/metrics" | "/livez" | "/readyz") {
        response.status(StatusCode::NOT_FOUND).body(Full::from(
            "not found: the master serves /metrics, /livez and /readyz\n",
        ))
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        response
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET, HEAD")
            .body(Full::from("use GET\n"))
    } else if path == "/livez" {
        // Answered by the master's own runtime: it answers only while the master's loop runs.
        response.body(Full::from("ok: the master runs\n"))
    } else if path == "/readyz" {
        match control.registry().readiness() {
            Ok(()) => response.body(Full::from("ready: a worker serves every address\n")),
            Err(why) => response
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body(Full::from(format!("not ready: {why}\n"))),
        }
    } else {
        let text = exposition(&control);
        response
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::from(text))
    };
    Ok(response.unwrap_or_default())
}
