//! The HTTP face of the cluster.
//!
//! - [`ClusterLayer`] (a tower [`Layer`](tower_layer::Layer), laid out like tower's
//!   middleware: [`layer`], [`service`], [`future`]) tags every response with `x-worker-id` and
//!   every request with a [`clustered_core::WorkerInfo`] extension.
//! - [`ServeHttp::serve`] runs a whole cluster of an HTTP service in one call; in each worker it
//!   serves the connections the master hands over with hyper-util (HTTP/1.1 and HTTP/2 `h2c`),
//!   with the client's address as axum's `ConnectInfo<SocketAddr>` and every request marked as
//!   [`ClusterLayer`] would mark it (no layer needed); [`HttpConfig`] sets its
//!   timeouts and limits, and anything else of hyper-util's builders
//!   ([`ServeHttp::serve_with`]).
//! - [`ClusterListener`] plugs a worker's connections into `axum::serve` instead.

#![forbid(unsafe_code)]

mod config;
mod connection;
mod drain;
pub mod future;
mod header;
mod http_metrics;
pub mod layer;
mod listener;
#[cfg(feature = "tls")]
mod live_cert;
mod serve;
mod served_io;
pub mod service;
#[cfg(feature = "tls")]
mod tickets;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_error;
#[cfg(feature = "tls")]
mod tls_metrics;
mod tracked;
mod watchdog;
mod when_woken;
mod worker_marks;

pub use self::config::HttpConfig;
pub use self::drain::Drain;
pub use self::header::WORKER_ID_HEADER;
pub use self::layer::ClusterLayer;
pub use self::listener::ClusterListener;
#[cfg(feature = "tls")]
pub use self::serve::serve_connections_tls;
pub use self::serve::{
    KEEP_ALIVE_DRAIN_GRACE, Servable, ServableBody, ServeHttp, serve_connections,
};
pub use self::service::ClusterService;
#[cfg(feature = "tls")]
pub use self::tls::{DEFAULT_HANDSHAKE_TIMEOUT, TlsConfig, TlsError};
