//! The future of a hook: user code a cluster runs as a task of its own.

use std::future::Future;
use std::pin::Pin;

/// A future a hook returns, run as a task of its own.
pub(crate) type HookFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
