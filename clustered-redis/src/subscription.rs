//! [`Subscription`]: what a member hears on one of its channels.

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// A stream of what the fleet sends this member on one channel. One that is not read keeps
/// the latest 4,096 items; older ones are dropped and counted by [`Subscription::missed`].
#[derive(Debug)]
pub struct Subscription<T> {
    receiver: broadcast::Receiver<T>,
    missed: u64,
}

impl<T: Clone> Subscription<T> {
    pub(crate) fn new(receiver: broadcast::Receiver<T>) -> Self {
        Self {
            receiver,
            missed: 0,
        }
    }

    /// The next item; `None` once the fleet connection is shut down.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            match self.receiver.recv().await {
                Ok(item) => return Some(item),
                Err(RecvError::Lagged(n)) => self.missed = self.missed.saturating_add(n),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// The next item if one is there already.
    pub fn try_recv(&mut self) -> Option<T> {
        loop {
            match self.receiver.try_recv() {
                Ok(item) => return Some(item),
                Err(TryRecvError::Lagged(n)) => self.missed = self.missed.saturating_add(n),
                Err(_) => return None,
            }
        }
    }

    /// How many items were dropped because this subscription was not read fast enough.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}
