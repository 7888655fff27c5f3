//! Benchmark baseline for TLS: the `hello` app (`GET /` → `hello world\n`) served over HTTPS by
//! one process with tokio-rustls (ring, rustls's own per-process ticketer, so sessions resume
//! within it, and `TCP_NODELAY` on every connection, as the cluster's workers have) on a tokio
//! `current_thread` runtime; the certificate from `CLUSTER_TLS_CERT` and
//! `CLUSTER_TLS_KEY`, `HOST` and `PORT` as for `hello`; prints `listening on https://ADDR`.
//!
//! With `PROCESSES=N` the same serving process runs N times under a bare parent, each with its
//! own `SO_REUSEPORT` listener on the port (the floor of the `reuseport` policy with N
//! workers); with `HANDOFF=1` (N default 1) a bare parent accepts every connection and hands it
//! to the next (the floor of `rr`), both from `floor`. SIGTERM or SIGINT stops the parent and
//! its children.

mod floor;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use floor::Connections;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let address: SocketAddr = format!("{host}:{port}").parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let handoff = floor::handoff_asked();
        // A floor: `PROCESSES` serving processes, one by default with `HANDOFF=1`.
        let floor_processes = floor::processes_asked().or(handoff.then_some(1));
        if floor::is_serving_process() {
            serve(acceptor()?, Connections::of_serving_process(address)?).await
        } else if let Some(processes) = floor_processes {
            Ok(floor::supervise(address, processes, handoff, "https").await?)
        } else {
            let acceptor = acceptor()?;
            let listener = tokio::net::TcpListener::bind(address).await?;
            println!("listening on https://{}", listener.local_addr()?);
            serve(acceptor, Connections::Listener(listener)).await
        }
    })
}

/// The rustls acceptor every connection's handshake goes through.
fn acceptor() -> Result<TlsAcceptor, Error> {
    let cert = std::env::var("CLUSTER_TLS_CERT")?;
    let key = std::env::var("CLUSTER_TLS_KEY")?;
    let chain = CertificateDer::pem_file_iter(&cert)?.collect::<Result<Vec<_>, _>>()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, PrivateKeyDer::from_pem_file(&key)?)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves every connection it gets, until the parent (if any) is gone.
async fn serve(acceptor: TlsAcceptor, connections: Connections) -> Result<(), Error> {
    let app = app();
    while let Some(stream) = connections.next().await? {
        tokio::spawn(serve_connection(acceptor.clone(), app.clone(), stream)?);
    }
    Ok(())
}

fn app() -> Router {
    Router::new().route("/", get(|| async { "hello world\n" }))
}

/// The task that serves one connection: its handshake, then HTTP/1.1 or h2.
fn serve_connection(
    acceptor: TlsAcceptor,
    app: Router,
    stream: TcpStream,
) -> std::io::Result<impl Future<Output = ()>> {
    // As the cluster's workers serve (and Node's HTTP server by default): without it, Nagle's
    // algorithm holds back a response's last segment behind the client's delayed
    // acknowledgement.
    stream.set_nodelay(true)?;
    Ok(async move {
        let Ok(session) = acceptor.accept(stream).await else {
            return;
        };
        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(session), TowerToHyperService::new(app))
            .await;
    })
}
