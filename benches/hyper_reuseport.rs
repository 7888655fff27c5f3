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
//! that of `reuseport` (both in `floor`).
//!
//! `HOST` (default `127.0.0.1`), `PORT` (default 3000; `0` picks a free port). Prints
//! `listening on http://ADDR` once every process listens; SIGTERM or SIGINT stops them all.

mod floor;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use floor::Connections;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

fn main() -> std::io::Result<()> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let address: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|error| std::io::Error::other(format!("HOST/PORT: {error}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        if floor::is_serving_process() {
            serve(Connections::of_serving_process(address)?).await
        } else {
            let processes = floor::processes_asked().unwrap_or(2);
            floor::supervise(address, processes, floor::handoff_asked(), "http").await
        }
    })
}

/// A serving process: serves every connection it gets, until the parent is gone.
async fn serve(connections: Connections) -> std::io::Result<()> {
    let builder = auto::Builder::new(TokioExecutor::new());
    while let Some(stream) = connections.next().await? {
        tokio::spawn(serve_connection(builder.clone(), stream));
    }
    Ok(())
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
