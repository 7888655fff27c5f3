//! `axum::serve` on a worker's delivered connections, through [`cluster::ClusterListener`], for
//! programs that want axum's own serve loop (its options, `into_make_service_with_connect_info`).
//!
//! ```sh
//! cargo run --example axum_serve              # then: curl localhost:3000
//! ```
//!
//! Environment as for `hello`: `CLUSTER_WORKERS`, `HOST`, `PORT` (default 3000).

use axum::Router;
use axum::routing::get;
use cluster::{Cluster, ClusterLayer, ClusterListener, Exit};

#[tokio::main]
async fn main() -> Exit {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let address = format!("{host}:{port}");
    Cluster::new()
        .bind(address.clone())
        .on_ready(|addresses| println!("listening on http://{}", addresses[0]))
        .run(|worker| async move {
            let app = Router::new()
                .route("/", get(|| async { "hello from axum::serve\n" }))
                .layer(ClusterLayer::new());
            let listener = ClusterListener::new(worker.listen(&address).await?);
            let draining = worker.clone();
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { draining.draining().await })
                .await?;
            Ok::<_, cluster::core::BoxError>(())
        })
        .await
        .into()
}
