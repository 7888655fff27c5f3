//! The processes of a cluster: a master that spawns workers from the same executable, owns the
//! listening sockets and hands each accepted connection's descriptor to a worker; and the
//! worker side that joins the master and receives those connections.
//!
//! One program, two roles. [`Cluster::run`] decides by the environment (`Role::detect`):
//!
//! - **master** (the process the user started): binds each address once, re-executes
//!   [`std::env::current_exe`] (resolved once at start) with the same arguments for every worker
//!   slot, with `CLUSTER_WORKER_ID=<slot>` and its end of a socketpair as descriptor 3
//!   (`CLUSTER_IPC_FD`). It accepts connections and hands each to the next listening worker
//!   (round-robin), keeping its copy until the worker acknowledges it, so a failed handoff goes
//!   to another worker instead of being lost. A worker that dies on its own is restarted with
//!   backoff ([`RestartPolicy`]); SIGHUP replaces the workers one by one with no request lost;
//!   SIGUSR2 hands the sockets and the state to a new master started from the executable on
//!   disk (an upgrade of the master itself); SIGTERM or SIGINT stops it gracefully. [`ClusterControl`] does the same from
//!   code and streams [`ClusterEvent`]s.
//! - **worker**: joins the master over the inherited socket, asks it for each address it listens
//!   on ([`Worker::listen`]) and receives connections from a [`Listener`]. It drains and stops
//!   when the master asks or when the master is gone (its IPC channel closes).
//!
//! The master's decisions are a synchronous state machine, apart from its I/O (a thin async
//! driver carries them out); see `ARCHITECTURE.md`. Each process runs one tokio thread by
//! default ([`runtime`]). Workers run in their own process group, so a terminal's Ctrl-C
//! reaches only the master. Nothing here calls `fork()` without `exec`.

mod bind;
mod cluster;
pub mod control_socket;
mod cpus;
pub mod env;
mod error;
mod exit;
mod handoff_acks;
mod limits;
mod log_format;
mod logging;
mod master;
mod policy;
mod proc_stats;
mod role;
pub mod runtime;
mod scheduling;
pub mod shared_metrics;
mod signal;
mod sync;
mod timer_fd;
mod worker;
mod worker_request;

pub use cluster::{Cluster, MIN_HANG_TIMEOUT, Recycling, Timeouts};
pub use clustered_ipc::ListenAddr;
pub use clustered_ipc::WireError;
pub use error::{BoxError, Error, IpcError};
pub use exit::Exit;
pub use master::{
    Answer, ClusterControl, ClusterEvent, Done, EventStream, ExitReason, Inbox, InboxItem, LogLine,
    LogStream, MAX_WORKERS, PendingAnswer, ReadyHook, Replacement, RestartPolicy, Scale,
    WorkerHandle,
};
pub use policy::Policy;
pub use role::{AGENT_ID, WorkerInfo};
pub use signal::Signal;
pub use worker::{Connection, Listener, Worker, agent, certificates, ipc, load, ticket_keys};
pub use worker_request::WorkerRequest;
