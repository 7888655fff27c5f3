//! The master: binds the listening sockets, spawns and supervises the workers (restarting those
//! that die), hands them connections, reloads them one by one on SIGHUP, and stops them
//! gracefully on SIGTERM or SIGINT.
//!
//! Its decisions are a synchronous state machine ([`machine`]), its I/O a thin async driver
//! ([`driver`]) that carries them out; user code reaches it through [`ClusterControl`] and
//! [`WorkerHandle`]s and hears of it through [`ClusterEvent`]s.
//!
//! Imports flow one way: `driver` → `machine` → the leaves (`ids`, `command`,
//! `process_exit`, and `handle`'s plain `WorkerStatus` and `ReportedLoad`, which its actions
//! carry); `driver` → `inbox_routing` → `inbox`; the user-facing handles (`control`, `handle`, `cluster_event`, `inbox`,
//! `registry`, `hooks`) import only leaves and each other downwards, never the driver or the machine.

pub(crate) mod cluster_event;
pub(crate) mod command;
pub(crate) mod control;
mod driver;
mod fair_queue;
pub(crate) mod handle;
mod handover;
pub(crate) mod hooks;
mod ids;
mod inbox;
mod inbox_routing;
mod inherited;
pub(crate) mod logs;
mod machine;
#[cfg(feature = "metrics-endpoint")]
pub(crate) mod metrics_endpoint;
#[cfg(not(feature = "metrics-endpoint"))]
#[path = "metrics_endpoint_off.rs"]
pub(crate) mod metrics_endpoint;
pub(crate) mod metrics_view;
mod process_exit;
mod registry;

pub use self::cluster_event::{ClusterEvent, EventStream};
pub use self::command::{Answer, Done, MAX_WORKERS, PendingAnswer, Replacement, Scale};
pub use self::control::ClusterControl;
pub(crate) use self::driver::{Settings, run};
pub use self::handle::WorkerHandle;
pub(crate) use self::hooks::MasterHook;
pub use self::hooks::ReadyHook;
pub use self::inbox::{Inbox, InboxItem};
pub use self::logs::{LogLine, LogStream};
pub use self::machine::RestartPolicy;
pub(crate) use self::machine::{Config, Recycle};
pub use self::process_exit::ExitReason;
