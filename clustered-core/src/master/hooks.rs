//! The user code the master calls back: at its start, and once the cluster is ready.

use clustered_ipc::ListenAddr;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::control::ClusterControl;

/// A future a hook returns, run as a task of its own.
pub(crate) type HookFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Called once in the master when every worker is listening, with the bound addresses.
pub type ReadyHook = Arc<dyn Fn(&[ListenAddr]) + Send + Sync>;

/// Runs in the master, as a task, once it starts.
pub(crate) type MasterHook = Arc<dyn Fn(ClusterControl) -> HookFuture + Send + Sync>;
