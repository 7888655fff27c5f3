//! `axum::serve` on a worker's delivered connections, through [`clustered::ClusterListener`], for
//! programs that want axum's own serve loop (its options, `into_make_service_with_connect_info`).
//!
//! `GET /` → `hello from axum::serve, client <ip>:<port>` (axum's `ConnectInfo`).
//!
//! ```sh
//! cargo run --example axum_serve              # then: curl localhost:3000
//! ```
//!
//! Environment as for `hello`: `CLUSTER_WORKERS`, `HOST`, `PORT` (default 3000).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::serve::ListenerExt;
use clustered::{BoxError, Cluster, ClusterLayer, ClusterListener, Exit};

async fn hello(ConnectInfo(client): ConnectInfo<SocketAddr>) -> String {
    format!("hello from axum::serve, client {client}\n")
}

#[clustered::main]
async fn main() -> Exit {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let address = format!("{host}:{port}");
    Cluster::new()
        .bind(address.clone())
        .on_ready(|addresses| println!("listening on http://{}", addresses[0]))
        .run(|worker| async move {
            let app = Router::new()
                .route("/", get(hello))
                .layer(ClusterLayer::new());
            // tap_io: axum gives ConnectInfo<SocketAddr> over its own listeners and TapIo only.
            let listener = ClusterListener::new(worker.listen(&address).await?).tap_io(|_| ());
            let draining = worker.clone();
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { draining.draining().await })
                .await?;
            Ok::<_, BoxError>(())
        })
        .await
        .into()
}
