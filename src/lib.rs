//! Node.js's `cluster` for Rust async servers: one master process owns the port and hands each
//! connection to one of many worker processes running the same binary; it restarts the ones
//! that crash or hang, replaces them one by one with no failed request, and stops gracefully.
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
//! Everything a program names is here, from four groups:
//!
//! - **Running a cluster**: [`Cluster`] (the builder; [`main`] runs `async fn main` on the
//!   runtime each role needs, see [`runtime`]), [`Exit`], [`Error`], [`RestartPolicy`],
//!   [`Policy`], and the environment variables an operator sets ([`env`](mod@env)).
//! - **Serving**: [`ServeHttp::serve`] for a tower/axum service, with [`ClusterLayer`],
//!   [`HttpConfig`], [`Drain`] and [`WorkerInfo`] (feature `http`, on by default);
//!   [`Worker::listen`] and [`Listener`] for a raw TCP server; [`ClusterListener`] for
//!   `axum::serve`.
//! - **Messages between processes**: [`ipc`] (in workers), [`agent`] (the one process that runs
//!   what must run once), [`Inbox`] and [`WorkerRequest`] (in the master), all failing with
//!   [`IpcError`].
//! - **Steering from master code**: [`ClusterControl`] (reload, scale, restart, shutdown, each
//!   answered with an [`Answer`]), [`ClusterEvent`]s, [`WorkerHandle`]s, logs; from outside, the
//!   `clusterctl` CLI (package `clustered-ctl`) over the [`control_socket`], and the metrics
//!   every process records with [`metrics`] (summed by the master, see [`shared_metrics`]).
//!
//! Linux only: the cluster is built on Linux's `memfd`, `pidfd`, `PR_SET_PDEATHSIG` and
//! `SO_PEERCRED`.

#![forbid(unsafe_code)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "clustered runs on Linux only (it is built on memfd, pidfd, PR_SET_PDEATHSIG and SO_PEERCRED); build this program for a Linux target"
);

pub use clustered_core::{
    AGENT_ID, Answer, BoxError, Cluster, ClusterControl, ClusterEvent, Connection, Done, Error,
    EventStream, Exit, ExitReason, Inbox, InboxItem, IpcError, ListenAddr, Listener, LogLine,
    LogStream, MAX_WORKERS, MIN_HANG_TIMEOUT, PendingAnswer, Policy, ReadyHook, Recycling,
    Replacement, RestartPolicy, Scale, Signal, Timeouts, WireError, Worker, WorkerHandle,
    WorkerInfo, WorkerRequest,
};
pub use clustered_core::{agent, control_socket, env, ipc, load, runtime, shared_metrics};
pub use clustered_macros::main;
#[cfg(feature = "http")]
pub use clustered_tower::{
    ClusterLayer, ClusterListener, ClusterService, Drain, HttpConfig, Servable, ServableBody,
    ServeHttp, WORKER_ID_HEADER, serve_connections,
};
#[cfg(feature = "tls")]
pub use clustered_tower::{DEFAULT_HANDSHAKE_TIMEOUT, TlsConfig, TlsError, serve_connections_tls};
/// The `metrics` crate, whose recorder the cluster installs in every process: record with
/// `metrics::counter!`, `gauge!`, `histogram!` and the master sums them up (see
/// [`shared_metrics`]).
pub use metrics;

/// The README's code, compiled as it is shown (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
