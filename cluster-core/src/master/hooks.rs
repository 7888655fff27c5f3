//! The user code the master calls back: at its start, and once the cluster is ready.

use std::net::SocketAddr;
use std::sync::Arc;

use super::control::ClusterControl;
use crate::hooks::HookFuture;

/// Called once in the master when every worker is listening, with the bound addresses.
pub type ReadyHook = Arc<dyn Fn(&[SocketAddr]) + Send + Sync>;

/// Runs in the master, as a task, once it starts.
pub(crate) type MasterHook = Arc<dyn Fn(ClusterControl) -> HookFuture + Send + Sync>;
