//! Benchmark reference: `PROCESSES` (default 2) bare hyper processes, each one tokio
//! `current_thread` runtime with its own `SO_REUSEPORT` listener on the same port, answering
//! every request with `hello world\n` over HTTP/1.1 or HTTP/2 (prior knowledge). No master, no
//! router, no middleware: the floor a cluster of that many processes could reach, with the
//! kernel spreading connections.
//!
//! With `HANDOFF=1` the same processes serve connections that a bare parent accepts and hands
//! them, round robin, one descriptor per `sendmsg` over a Unix socket pair: a blocking `accept4`
//! loop on a thread of its own, no event loop, no protocol, no acknowledgement. That is the floor
//! of the `rr` policy's design (a master that accepts every connection), as the first mode is
//! that of `reuseport`.
//!
//! `HOST` (default `127.0.0.1`), `PORT` (default 3000; `0` picks a free port). Prints
//! `listening on http://ADDR` once every process listens; SIGTERM or SIGINT stops them all.

mod handoff_floor;

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
    // The parent's socket registers with this runtime's reactor.
    let _entered = runtime.enter();
    match (std::env::var_os(CHILD), handoff_floor::parent()) {
        (Some(_), Some(parent)) => runtime.block_on(serve_handed(parent?)),
        (Some(_), None) => runtime.block_on(serve(address)),
        (None, _) => runtime.block_on(supervise(address, handoff_floor::asked())),
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
/// starts the serving processes on it and stops them on SIGTERM or SIGINT. With `handoff` it
/// listens itself instead, and hands each connection to the next process.
async fn supervise(address: SocketAddr, handoff: bool) -> std::io::Result<()> {
    let holder = reuseport_socket(address)?;
    let address = holder.local_addr()?;
    let processes: usize = std::env::var("PROCESSES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let mut children: Vec<Child> = Vec::new();
    let mut handed_to = Vec::new();
    for _ in 0..processes {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .env(CHILD, "1")
            .env("HOST", address.ip().to_string())
            .env("PORT", address.port().to_string())
            .stdout(Stdio::piped());
        let theirs = if handoff {
            let (ours, theirs) = handoff_floor::connect_child(&mut command)?;
            handed_to.push(ours);
            Some(theirs)
        } else {
            None
        };
        children.push(command.spawn()?);
        drop(theirs);
    }
    for child in &mut children {
        // Each child says `ready` once it listens.
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        }
    }
    if handoff {
        let listener = holder.listen(1024)?.into_std()?;
        listener.set_nonblocking(false)?;
        std::thread::spawn(move || handoff_floor::hand_off(listener, handed_to));
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

/// A serving process of `HANDOFF=1`: serves each connection the parent sends, until the
/// parent is gone.
async fn serve_handed(parent: handoff_floor::Parent) -> std::io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    println!("ready");
    let builder = auto::Builder::new(TokioExecutor::new());
    while let Some(stream) = parent.next_connection().await? {
        tokio::spawn(serve_connection(builder.clone(), stream));
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
        tokio::spawn(serve_connection(builder.clone(), stream));
    }
}

/// Serves one connection, HTTP/1.1 or HTTP/2, every request answered by `hello`.
async fn serve_connection(builder: auto::Builder<TokioExecutor>, stream: tokio::net::TcpStream) {
    let service = hyper::service::service_fn(hello);
    let _ = builder
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn hello(_: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"hello world\n",
    ))))
}
