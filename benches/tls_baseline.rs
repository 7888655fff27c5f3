//! Benchmark baseline for TLS: the `hello` app (`GET /` → `hello world\n`) served over HTTPS by
//! one process with tokio-rustls (ring, rustls's own per-process ticketer, so sessions resume
//! within it, and `TCP_NODELAY` on every connection, as the cluster's workers have) on a tokio
//! `current_thread` runtime; the certificate from `CLUSTER_TLS_CERT` and
//! `CLUSTER_TLS_KEY`, `HOST` and `PORT` as for `hello`; prints `listening on https://ADDR`.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
        let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
        let listener = tokio::net::TcpListener::bind(format!("{host}:{port}")).await?;
        println!("listening on https://{}", listener.local_addr()?);
        let app = Router::new().route("/", get(|| async { "hello world\n" }));
        loop {
            let (stream, _) = listener.accept().await?;
            // As the cluster's workers serve (and Node's HTTP server by default): without it,
            // Nagle's algorithm holds back a response's last segment behind the client's
            // delayed acknowledgement.
            stream.set_nodelay(true)?;
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(session) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(session), TowerToHyperService::new(app))
                    .await;
            });
        }
    })
}
