//! [`ListenKey`], which names a listening address across the cluster, and [`ListenMode`],
//! how a worker gets its connections.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Names one listening address across the cluster: the address as the worker asked for it.
///
/// ```
/// use clustered_ipc::ListenKey;
/// let key = ListenKey::from("127.0.0.1:3000");
/// assert_eq!(key.as_str(), "127.0.0.1:3000");
/// ```
///
/// Cloning one is cheap (a shared string): the master copies the key into every handoff.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ListenKey(Arc<str>);

impl ListenKey {
    /// The address text this key stands for.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ListenKey {
    fn from(address: &str) -> Self {
        ListenKey(Arc::from(address))
    }
}

impl From<String> for ListenKey {
    fn from(address: String) -> Self {
        ListenKey(Arc::from(address))
    }
}

impl std::fmt::Display for ListenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a worker gets the connections of one listen key, as the master tells it in
/// [`crate::Message::ServerAck`]: the worker needs to know only this, not the master's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenMode {
    /// The master accepts and hands each connection over (`rr`, `sticky`, `least`).
    Delivered,
    /// The worker accepts on a copy of the master's listening socket (`shared`).
    Shared,
    /// The worker binds and listens on a socket of its own with `SO_REUSEPORT` (`reuseport`).
    Reuseport,
}
