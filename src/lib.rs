//! A Node.js-style cluster for Rust async servers: one master process owns the port and hands
//! each connection to one of many worker processes running the same binary.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use clustered::{Cluster, ClusterLayer, Exit, ServeHttp, ipc};
//!
//! #[clustered::main]
//! async fn main() -> Exit {
//!     let app = Router::new()
//!         .route("/", get(|| async {
//!             let _ = ipc::send("count"); // to the master
//!             "hello world\n"
//!         }))
//!         .layer(ClusterLayer::new());
//!     Cluster::new().workers(4).serve("127.0.0.1:3000", app).await.into()
//! }
//! ```
//!
//! [`main`] (`#[clustered::main]`) runs `async fn main` on one thread in the master and on one
//! serving thread per worker ([`runtime`]). The crates behind it: [`wire`] (frames and
//! descriptors over Unix sockets), [`core`] (processes), [`tower`] (HTTP); [`ipc`] is the user
//! messaging API of [`core`]. Everything a program names is re-exported here.

#![forbid(unsafe_code)]

pub use clustered_core as core;
pub use clustered_ipc as wire;
pub use clustered_tower as tower;

pub use clustered_core::{
    AGENT_ID, Answer, BoxError, Cluster, ClusterControl, ClusterEvent, Error, EventStream, Exit,
    ExitReason, Inbox, InboxItem, InboxRequest, Listener, MAX_WORKERS, PendingAnswer, Policy,
    ReadyHook, Recycling, RestartPolicy, Scale, Signal, Timeouts, Worker, WorkerHandle, WorkerInfo,
    ipc, load, runtime,
};
pub use clustered_core::{agent, control_socket, env, shared_metrics};
pub use clustered_macros::main;
pub use clustered_tower::{
    ClusterLayer, ClusterListener, ClusterService, Drain, HttpBody, HttpConfig, HttpService,
    ServeHttp, WORKER_ID_HEADER, serve_connections,
};
/// The `metrics` crate, whose recorder the cluster installs in every process: record with
/// `metrics::counter!`, `gauge!`, `histogram!` and the master sums them up (see
/// [`shared_metrics`]).
pub use metrics;
