//! A Node.js-style cluster for Rust async servers: one master process owns the port and hands
//! each connection to one of many worker processes running the same binary.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use cluster::{Cluster, ClusterLayer, ServeHttp};
//!
//! # async fn example() -> Result<(), cluster::Error> {
//! let app = Router::new()
//!     .route("/", get(|| async { "hello world\n" }))
//!     .layer(ClusterLayer::new());
//! Cluster::new().workers(4).serve("127.0.0.1:3000", app).await
//! # }
//! ```
//!
//! The crates behind it: [`ipc`] (the wire), [`core`] (processes), [`tower`] (HTTP).

pub use cluster_core as core;
pub use cluster_ipc as ipc;
pub use cluster_tower as tower;

pub use cluster_core::{
    Cluster, ClusterControl, ClusterEvent, Error, Exit, Listener, RestartPolicy, Worker,
    WorkerHandle, WorkerInfo,
};
pub use cluster_tower::{ClusterLayer, ClusterListener, ServeHttp};
