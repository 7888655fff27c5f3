//! The HTTP face of the cluster.
//!
//! - [`ClusterLayer`] (a tower [`Layer`](tower_layer::Layer), laid out like tower's
//!   middleware: [`layer`], [`service`], [`future`]) tags every response with `x-worker-id` and
//!   every request with a [`cluster_core::WorkerInfo`] extension.
//! - [`ServeHttp::serve`] runs a whole cluster of an HTTP service in one call; in each worker it
//!   serves the connections the master hands over with hyper-util (HTTP/1.1 and HTTP/2 `h2c`).
//! - [`ClusterListener`] plugs a worker's connections into `axum::serve` instead.

mod connection;
pub mod future;
pub mod layer;
mod listener;
mod serve;
pub mod service;

pub use layer::ClusterLayer;
pub use listener::ClusterListener;
pub use serve::{KEEP_ALIVE_DRAIN_GRACE, ServeHttp, serve_connections};
pub use service::{ClusterService, WORKER_ID_HEADER};
