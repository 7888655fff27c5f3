//! Benchmark baseline for TLS: the `hello` app (`GET /` → `hello world\n`) served over HTTPS by
//! one process with tokio-rustls (ring, rustls's own per-process ticketer, so sessions resume
//! within it, and `TCP_NODELAY` on every connection, as the cluster's workers have) on a tokio
//! `current_thread` runtime; the certificate from `CLUSTER_TLS_CERT` and
//! `CLUSTER_TLS_KEY`, `HOST` and `PORT` as for `hello`; prints `listening on https://ADDR`.
//!
//! With `HANDOFF=1` the same serving process gets its connections from a bare parent that
//! accepts them and hands each over (`handoff_floor`): the floor of the `rr` policy's design
//! for TLS, as the one process is that of `reuseport` with one worker. SIGTERM or SIGINT stops
//! the parent and its child.

mod handoff_floor;

use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The parent's socket registers with this runtime's reactor.
    let _entered = runtime.enter();
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = || std::net::TcpListener::bind(format!("{host}:{port}"));
    match handoff_floor::parent() {
        Some(parent) => runtime.block_on(serve_handed(acceptor()?, parent?)),
        None if handoff_floor::asked() => runtime.block_on(hand_off(listener()?)),
        None => runtime.block_on(serve(acceptor()?, listener()?)),
    }
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

/// The one process: accepts and serves every connection itself.
async fn serve(acceptor: TlsAcceptor, listener: std::net::TcpListener) -> Result<(), Error> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    println!("listening on https://{}", listener.local_addr()?);
    let app = app();
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve_connection(acceptor.clone(), app.clone(), stream)?);
    }
}

/// The serving process of `HANDOFF=1`: serves what the parent hands over, until it is gone.
async fn serve_handed(acceptor: TlsAcceptor, parent: handoff_floor::Parent) -> Result<(), Error> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    println!("ready");
    let app = app();
    while let Some(stream) = parent.next_connection().await? {
        tokio::spawn(serve_connection(acceptor.clone(), app.clone(), stream)?);
    }
    Ok(())
}

/// The parent of `HANDOFF=1`: starts the serving process, then accepts on `listener` and hands
/// every connection to it, until SIGTERM or SIGINT.
async fn hand_off(listener: std::net::TcpListener) -> Result<(), Error> {
    let mut command = Command::new(std::env::current_exe()?);
    command.stdout(Stdio::piped());
    let (ours, theirs) = handoff_floor::connect_child(&mut command)?;
    let mut child = command.spawn()?;
    drop(theirs);
    // The child says `ready` once it serves.
    if let Some(stdout) = child.stdout.take() {
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut String::new())?;
    }
    let address = listener.local_addr()?;
    std::thread::spawn(move || handoff_floor::hand_off(listener, vec![ours]));
    println!("listening on https://{address}");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let _ = child.kill();
    let _ = child.wait();
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
