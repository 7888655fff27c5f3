//! A Node.js-style cluster for Rust async servers: one master process owns the port and hands
//! each connection to one of many worker processes running the same binary.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use cluster::{Cluster, ClusterLayer, ServeHttp, ipc};
//!
//! # async fn example() -> Result<(), cluster::Error> {
//! let app = Router::new()
//!     .route("/", get(|| async {
//!         let _ = ipc::send("count"); // to the master
//!         "hello world\n"
//!     }))
//!     .layer(ClusterLayer::new());
//! Cluster::new().workers(4).serve("127.0.0.1:3000", app).await
//! # }
//! ```
//!
//! The crates behind it: [`wire`] (frames and descriptors over Unix sockets), [`core`]
//! (processes), [`tower`] (HTTP); [`ipc`] is the user messaging API of [`core`].

pub use cluster_core as core;
pub use cluster_ipc as wire;
pub use cluster_tower as tower;

pub use cluster_core::{
    Cluster, ClusterControl, ClusterEvent, Error, Exit, Incoming, Listener, RestartPolicy, Worker,
    WorkerHandle, WorkerInfo, ipc,
};
pub use cluster_tower::{ClusterLayer, ClusterListener, ServeHttp};
