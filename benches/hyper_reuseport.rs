//! Benchmark reference: `PROCESSES` (default 2) bare hyper processes, each one tokio
//! `current_thread` runtime with its own `SO_REUSEPORT` listener on the same port, answering
//! every request with `hello world\n` over HTTP/1.1 or HTTP/2 (prior knowledge). No master, no
//! router, no middleware: the floor a cluster of that many processes could reach, with the
//! kernel spreading connections.
//!
//! `HOST` (default `127.0.0.1`), `PORT` (default 3000; `0` picks a free port). Prints
//! `listening on http://ADDR` once every process listens; SIGTERM or SIGINT stops them all.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpSocket;

const CHILD: &str = "HYPER_REUSEPORT_CHILD";

fn main() -> std::io::Result<()> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let address: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|error| std::io::Error::other(format!("HOST/PORT: {error}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match std::env::var_os(CHILD) {
        Some(_) => runtime.block_on(serve(address)),
        None => runtime.block_on(supervise(address)),
    }
}

fn reuseport_socket(address: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(address)?;
    Ok(socket)
}

/// The parent: holds the port (bound, not listening, so the kernel gives it no connection),
/// starts the serving processes on it and stops them on SIGTERM or SIGINT.
async fn supervise(address: SocketAddr) -> std::io::Result<()> {
    let holder = reuseport_socket(address)?;
    let address = holder.local_addr()?;
    let processes: usize = std::env::var("PROCESSES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let mut children: Vec<Child> = Vec::new();
    for _ in 0..processes {
        let child = Command::new(std::env::current_exe()?)
            .env(CHILD, "1")
            .env("HOST", address.ip().to_string())
            .env("PORT", address.port().to_string())
            .stdout(Stdio::piped())
            .spawn()?;
        children.push(child);
    }
    for child in &mut children {
        // Each child says `ready` once it listens.
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        }
    }
    println!("listening on http://{address}");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(())
}

/// A serving process: its own listener in the port's `SO_REUSEPORT` group.
async fn serve(address: SocketAddr) -> std::io::Result<()> {
    // Gone with the parent, however it ends.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    let listener = reuseport_socket(address)?.listen(1024)?;
    println!("ready");
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(hello);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn hello(_: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"hello world\n",
    ))))
}
