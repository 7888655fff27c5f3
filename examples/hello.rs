//! The main example: a clustered axum hello world.
//!
//! ```sh
//! cargo run --example hello        # then: curl localhost:3000
//! ```
//!
//! Environment: `CLUSTER_WORKERS` (worker count, default one per core), `HOST` (default
//! `127.0.0.1`), `PORT` (default 3000; `0` picks a free port). Once every worker listens, the
//! master prints `listening on http://HOST:PORT` with the real port. With `CLUSTER_TLS_CERT`
//! and `CLUSTER_TLS_KEY` (PEM files; `CLUSTER_TLS_HANDSHAKE_TIMEOUT` seconds, default 10) it
//! serves HTTPS instead (`https://HOST:PORT`; HTTP/2 and HTTP/1.1 by ALPN).
//!
//! Routes: `GET /` → `hello world`; `GET /slow?ms=N` → `slow done` after N ms;
//! `GET /whoami` → `worker <slot> pid <pid> client <ip>:<port>`: who served the request, and
//! for whom (axum's `ConnectInfo`, the address the master accepted the connection from).
//!
//! `#[clustered::main]` runs the master on one thread and each worker on one serving thread
//! (`CLUSTER_WORKER_THREADS=N` for more). It installs no logging of its own: the cluster's
//! warnings and errors go to stderr (`RUST_LOG=info` shows its progress too).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query};
use axum::routing::get;
use axum::{Extension, Router};
use clustered::{Cluster, ClusterLayer, Exit, ServeHttp, TlsConfig, WorkerInfo};
use serde::Deserialize;

#[derive(Deserialize)]
struct Slow {
    ms: u64,
}

async fn hello() -> &'static str {
    "hello world\n"
}

async fn slow(Query(Slow { ms }): Query<Slow>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow done\n"
}

async fn whoami(
    Extension(worker): Extension<WorkerInfo>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
) -> String {
    format!("worker {} pid {} client {client}\n", worker.id, worker.pid)
}

#[clustered::main]
async fn main() -> Exit {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let app = Router::new()
        .route("/", get(hello))
        .route("/slow", get(slow))
        .route("/whoami", get(whoami))
        .layer(ClusterLayer::new());
    let address = format!("{host}:{port}");
    let tls = match TlsConfig::from_env() {
        Ok(tls) => tls,
        Err(error) => {
            eprintln!("hello: {error}");
            std::process::exit(2);
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let cluster = Cluster::new()
        .on_ready(move |addresses| println!("listening on {scheme}://{}", addresses[0]));
    match tls {
        Some(tls) => cluster.serve_tls(address, app, tls).await.into(),
        None => cluster.serve(address, app).await.into(),
    }
}
