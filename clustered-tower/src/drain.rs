//! [`Drain`]: the signal that this worker is draining, for the application.

use std::sync::Arc;

use tokio::sync::watch;

/// The signal that this worker is draining (a reload, a shutdown), in every request's
/// extensions (`Extension<Drain>` in axum).
///
/// Plain requests need nothing. A connection the application took over (a WebSocket or
/// another upgrade, a long stream) should end itself: wait for [`Drain::draining`], say
/// goodbye (a close frame) and close. The worker waits for such connections, and for every
/// `Drain` still held, until the master's shutdown timeout.
///
/// ```no_run
/// use axum::Extension;
/// use clustered_tower::Drain;
///
/// async fn stream(Extension(drain): Extension<Drain>) {
///     tokio::select! {
///         () = drain.draining() => { /* send a close frame */ }
///         () = std::future::pending::<()>() => { /* the connection's own work */ }
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Drain {
    // Shared: every request carries a clone, and cloning a receiver itself costs more (the
    // watch counts its receivers, which is how the worker knows when every `Drain` is gone).
    receiver: Arc<watch::Receiver<bool>>,
}

impl Drain {
    pub(crate) fn new(receiver: watch::Receiver<bool>) -> Self {
        Self {
            receiver: Arc::new(receiver),
        }
    }

    /// Whether the worker is draining.
    pub fn is_draining(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once the worker drains (at once if it is draining already).
    pub async fn draining(&self) {
        let mut receiver = watch::Receiver::clone(&self.receiver);
        let _ = receiver.wait_for(|draining| *draining).await;
    }
}
